"""Request streams: arrival times and lengths, generated up front as NumPy arrays.

Arrivals: Poisson (exponential gaps), Gamma (gaps with a given coefficient of variation: shape
1/cv^2, so cv > 1 is burstier than Poisson), or a CSV trace. Lengths: lognormal around the means
with the given CV (0 = fixed), rounded, clipped to [1, 8 x mean] (see `config.Traffic`).
Arrays instead of objects keep a million-request run at tens of MB.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelsim.errors import UserError
from accelsim.serve.bounds import MAX_REQUESTS
from accelsim.serve.config import Traffic
from accelsim.validate import MAX_TOKENS

_CHUNK = 65536
TRACE_FIELDS = ("arrival_s", "input_len", "output_len")


@dataclass(frozen=True)
class Stream:
    """n requests: arrival times (s, non-decreasing) and token lengths (int64)."""

    arrival_s: np.ndarray
    input_len: np.ndarray
    output_len: np.ndarray
    prefix_id: np.ndarray | None = None  # shared prompt prefix of each request (serve.prefix_cache)

    def __len__(self) -> int:
        return len(self.arrival_s)


def arrival_times(kind: str, rate_per_s: float, cv: float, duration_s: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Arrival times in [0, duration_s) of a renewal process with mean gap 1/rate."""
    parts, t0 = [], 0.0
    while t0 < duration_s:
        if kind == "poisson":
            gaps = rng.exponential(1.0 / rate_per_s, _CHUNK)
        else:
            shape = 1.0 / (cv * cv)
            gaps = rng.gamma(shape, 1.0 / (rate_per_s * shape), _CHUNK)
        t = t0 + np.cumsum(gaps)
        parts.append(t[t < duration_s])
        t0 = float(t[-1])
    return np.concatenate(parts) if parts else np.zeros(0)


def lengths(mean: int, cv: float, n: int, rng: np.random.Generator) -> np.ndarray:
    if cv == 0:
        return np.full(n, mean, dtype=np.int64)
    s2 = math.log1p(cv * cv)
    x = rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2), n)
    return np.clip(np.rint(x), 1, 8 * mean).astype(np.int64)


def generate(traffic: Traffic, duration_s: float, rng_arrivals: np.random.Generator,
             rng_lengths: np.random.Generator) -> Stream:
    """The LLM request stream of one run (a trace is read and cut at `duration_s`)."""
    if traffic.arrival == "trace":
        assert traffic.trace is not None
        s = read_trace(traffic.trace)
        keep = s.arrival_s < duration_s
        return Stream(s.arrival_s[keep], s.input_len[keep], s.output_len[keep])
    t = arrival_times(traffic.arrival, traffic.rate_per_s, traffic.cv, duration_s, rng_arrivals)
    n = len(t)
    inp = lengths(traffic.input_len, traffic.length_cv, n, rng_lengths)
    out = lengths(traffic.output_len, traffic.length_cv, n, rng_lengths)
    if not traffic.prefix_pool:
        return Stream(t, inp, out)
    # the prefix is the prompt's first prefix_len tokens: prompts get at least one token after it
    from accelsim.serve.prefix_cache import zipf_popularity

    ids = rng_lengths.choice(traffic.prefix_pool, size=n, p=zipf_popularity(traffic.prefix_pool, traffic.prefix_zipf))
    return Stream(t, np.maximum(inp, traffic.prefix_len + 1), out, ids.astype(np.int64))


def read_trace(path: str) -> Stream:
    """A CSV trace with a header naming at least arrival_s, input_len, output_len (other columns
    are ignored). Arrivals in seconds, >= 0, non-decreasing; lengths integers >= 1."""
    p = Path(path)
    try:
        fh = p.open(newline="", encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--trace '{path}' does not exist") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [f for f in TRACE_FIELDS if f not in (reader.fieldnames or [])]
        if missing:
            raise UserError(f"--trace '{path}': header lacks {', '.join(missing)} "
                            f"(expected columns {', '.join(TRACE_FIELDS)})")
        arr: list[float] = []
        inp: list[int] = []
        out: list[int] = []
        last = 0.0
        for row in reader:
            line = reader.line_num
            try:
                a = float(row["arrival_s"])
                i, o = int(row["input_len"]), int(row["output_len"])
            except (TypeError, ValueError):
                raise UserError(f"--trace '{path}' line {line}: expected a number arrival_s and integer "
                                f"input_len, output_len, got {row['arrival_s']!r}, {row['input_len']!r}, "
                                f"{row['output_len']!r}") from None
            if not (math.isfinite(a) and a >= last):
                raise UserError(f"--trace '{path}' line {line}: arrival_s {a} must be finite, >= 0 and "
                                f"not before the previous row ({last})")
            if not (1 <= i <= MAX_TOKENS and 1 <= o <= MAX_TOKENS):
                raise UserError(f"--trace '{path}' line {line}: input_len and output_len must be >= 1 and <= "
                                f"{MAX_TOKENS:,}, got {i}, {o}")
            last = a
            if len(arr) >= MAX_REQUESTS:
                raise UserError(f"--trace '{path}' holds more than {MAX_REQUESTS:,} requests (accelsim.serve.bounds); "
                                "split it or sample it")
            arr.append(a)
            inp.append(i)
            out.append(o)
    if not arr:
        raise UserError(f"--trace '{path}' has no requests")
    return Stream(np.asarray(arr), np.asarray(inp, dtype=np.int64), np.asarray(out, dtype=np.int64))
