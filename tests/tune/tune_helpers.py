"""Shared test helpers: replay devices over hand-built surfaces, a counting wrapper."""

from __future__ import annotations

import itertools
import json

from accelsim.measurements import row
from accelsim.tune.core import Measurement
from accelsim.tune.replay import ReplayDevice
from accelsim.tune.space import CONFIG_KEYS, Config, Problem, as_tuple

# Small problem whose pruned space is easy to reason about (Mixtral-like, few tokens).
MIXTRAL_M1 = Problem(8, 4096, 7168, 2, "bf16", 1)


def surface_rows(problem: Problem, configs: list[Config], optimum: Config, base_s: float = 1e-4,
                 slope: float = 0.05) -> list[dict]:
    """An easy, separable surface: each key's distance (in positions of its value list) from the
    optimum's value costs `slope` of time, multiplicatively. The optimum is unique and every
    one-step neighbour is >= slope slower."""
    values = {k: sorted({c[k] for c in configs}) for k in CONFIG_KEYS}
    rows = []
    for c in configs:
        t = base_s
        for k in CONFIG_KEYS:
            t *= 1 + slope * abs(values[k].index(c[k]) - values[k].index(optimum[k]))
        rows.append(row(op="fused_moe", name="easy", dtype=problem.dtype,
                        shape={"E": problem.experts, "H": problem.hidden, "I": problem.inter,
                               "top_k": problem.top_k, "M": problem.m},
                        config=c, flops=1, bytes=1, median_s=t, p20_s=t, p80_s=t, reps=1,
                        device="test-surface", device_kind="synthetic", tool="test"))
    return rows


def replay_of(rows: list[dict]) -> ReplayDevice:
    return ReplayDevice(rows=rows)


def argmin_rows(rows: list[dict]) -> tuple[Config, float]:
    best = min(rows, key=lambda r: r["median_s"])
    cfg = json.loads(best["config"]) if isinstance(best["config"], str) else best["config"]
    return {k: cfg[k] for k in CONFIG_KEYS}, best["median_s"]


class Counting:
    """Wraps a device and counts (and optionally records) what it measures."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.timed = inner.timed
        self.fingerprint = inner.fingerprint
        self.calls: list[tuple] = []

    def measure(self, problem: Problem, config: Config) -> Measurement:
        self.calls.append((problem.m, as_tuple(config)))
        return self.inner.measure(problem, config)


def small_space() -> list[Config]:
    """48 configs: BM x BN x G x stages, fixed BK and warps."""
    return [dict(zip(CONFIG_KEYS, (bm, bn, 64, g, 4, s)))
            for bm, bn, g, s in itertools.product((16, 32, 64), (32, 64, 128, 256), (1, 16), (2, 3))]
