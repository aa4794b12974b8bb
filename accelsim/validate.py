"""Validation at the edge: argparse `type=` functions for numbers, names and paths, with stated limits.

Every command-line number goes through one of these, so a bad value fails before any work starts,
with one line (argparse prints ``accelsim <cmd>: error: argument --pp: ...`` and exits 2). The limits
are named constants below; each is far beyond any real deployment and exists so that a typo such as
``--chips 1e30`` or ``--reps 10**30`` is refused instead of running for hours or exhausting memory.

Stdlib only: every command module imports this at registration time.

    p.add_argument("--pp", type=V.count(hi=V.MAX_PARALLEL))      # whole number in [1, 4096]
    p.add_argument("--max-ttft", type=V.seconds())               # finite, in (0, ten years]
    p.add_argument("--out", type=V.output_file)                  # writable, checked before the work
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from pathlib import Path

# Stated limits (far beyond real systems; they catch typos and hostile input, not ambitious studies).
MAX_CHIPS = 10_000_000  # 10 M accelerators: ~10 GW of IT power
MAX_PARALLEL = 4096  # tp, ep, pp, replicas per group
MAX_TOKENS = 10_000_000  # prompt or output tokens per request (Llama 4 Scout's context is 10 M)
MAX_BATCH = 10_000_000  # sequences or samples per batch
MAX_SECONDS = 10 * 365 * 86400.0  # ten years: any duration, SLO or interval
MAX_RATE = 1e7  # requests (or samples, tokens) per second, per stream
MAX_POWER_W = 1e11  # 100 GW: any site, cap or per-chip figure
MAX_FACTOR = 1e6  # ratios given as flags
MAX_WHAT_IF = 1000.0  # a what-if scales a chip value by 1/1000 to 1000x (three orders of magnitude)
MAX_SEED = 2**63 - 1
MAX_NAME = 255  # bytes in one path component on Linux; also the longest accepted name

T = Callable[[str], float]


def _fail(message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message)


def parse_number(text: str, *, lo: float, hi: float, lo_open: bool = False, integer: bool = False) -> float | int:
    """`text` as a finite number in [lo, hi] (or (lo, hi] with lo_open); ArgumentTypeError otherwise.
    (argparse puts the flag's name in front of the message.)"""
    kind = "a whole number" if integer else "a number"
    if len(text) > 64:
        raise _fail(f"must be {kind}, got '{text[:20]}...' ({len(text)} characters)")
    try:
        value: float | int = int(text) if integer else float(text)
    except ValueError:
        raise _fail(f"must be {kind}, got '{_shown(text)}'") from None
    check_range(value, "", lo=lo, hi=hi, lo_open=lo_open, exc=argparse.ArgumentTypeError)
    return value


def _shown(text: str, n: int = 60) -> str:
    """`text` cut to n characters, control characters escaped: safe inside a one-line message."""
    return text[:n].encode("unicode_escape").decode("ascii") + ("..." if len(text) > n else "")


def check_range(value: float, what: str, *, lo: float, hi: float, lo_open: bool = False,
                exc: type[Exception] = ValueError) -> float:
    """Raise `exc` unless `value` is finite and within [lo, hi] ((lo, hi] when lo_open); return it."""
    bracket = "(" if lo_open else "["
    who = f"{what} " if what else ""
    if isinstance(value, float) and not math.isfinite(value):
        raise exc(f"{who}must be a finite number, got {value}")
    if value < lo or (lo_open and value == lo) or value > hi:
        raise exc(f"{who}must be in {bracket}{lo:g}, {hi:g}], got {value:g}")
    return value


def count(lo: int = 1, hi: int = MAX_CHIPS) -> Callable[[str], int]:
    """A whole number in [lo, hi] (default: at least 1)."""

    def parse(text: str) -> int:
        return int(parse_number(text, lo=lo, hi=hi, integer=True))

    parse.__name__ = "count"
    return parse


def number(lo: float = 0.0, hi: float = MAX_FACTOR, lo_open: bool = True) -> T:
    """A finite number in (lo, hi] (default: positive) or [lo, hi] with lo_open=False."""

    def parse(text: str) -> float:
        return float(parse_number(text, lo=lo, hi=hi, lo_open=lo_open))

    parse.__name__ = "number"
    return parse


def seconds(hi: float = MAX_SECONDS) -> T:
    """A positive, finite number of seconds, at most `hi`."""
    return number(0.0, hi)


def fraction(lo_open: bool = False, hi: float = 1.0) -> T:
    """A number in [0, hi] ((0, hi] with lo_open)."""
    return number(0.0, hi, lo_open=lo_open)


seed = count(lo=0, hi=MAX_SEED)


def name(text: str) -> str:
    """One line of printable text, at most MAX_NAME characters (chip, model, host names, labels)."""
    check_name(text, "", exc=argparse.ArgumentTypeError)
    return text


def check_name(text: str, what: str, exc: type[Exception] = ValueError) -> str:
    """Raise `exc` unless `text` is non-empty, printable (no newline) and at most MAX_NAME characters."""
    who = f"{what} " if what else ""
    if not text:
        raise exc(f"{who}must not be empty")
    if len(text) > MAX_NAME:
        raise exc(f"{who}'{_shown(text, 40)}' is longer than {MAX_NAME} characters")
    if not text.isprintable():
        raise exc(f"{who}'{_shown(text)}' holds a control character (newline, tab, ...)")
    return text


def input_file(text: str) -> str:
    """An existing, readable regular file (not a directory, not /proc or a device)."""
    from accelsim.io import check_input_file

    try:
        check_input_file(text)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return text


def input_dir(text: str) -> str:
    """An existing directory (not "", which would silently mean the current one)."""
    if not text or not text.isprintable():
        raise _fail(f"'{_shown(text)}' is not a directory name")
    if not Path(text).is_dir():
        raise _fail(f"'{_shown(text)}' is not an existing directory")
    return text


def output_file(text: str) -> str:
    """A path a file can be written to: checked before any work starts (see io.check_output_path)."""
    return _output(text, "file")


def output_dir(text: str) -> str:
    """A directory that exists or can be created, writable: checked before any work starts."""
    return _output(text, "dir")


def _output(text: str, kind: str) -> str:
    from accelsim.io import check_output_path

    try:
        check_output_path(text, kind)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return text


def ray_address(text: str) -> str:
    """`--ray` ADDR: "local", "auto", HOST:PORT or ray://HOST:PORT (form only; see `check_reachable`)."""
    if text in ("local", "auto") or re.fullmatch(r"(ray://)?[A-Za-z0-9.\-]{1,253}:[0-9]{1,5}", text):
        return text
    raise _fail(f"'{_shown(text)}' is not a Ray address (local, auto, HOST:PORT or ray://HOST:PORT)")


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Raise UserError unless a TCP connection to a HOST:PORT Ray address opens within `timeout_s`
    (Ray itself retries an unreachable address for minutes before failing)."""
    import socket

    from accelsim.errors import UserError

    if address in (None, "", "local", "auto"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except (OSError, ValueError, UnicodeError) as exc:
        raise UserError(f"--ray {address}: cannot reach it ({getattr(exc, 'strerror', None) or exc})") from None


__all__ = ["MAX_BATCH", "MAX_CHIPS", "MAX_FACTOR", "MAX_NAME", "MAX_PARALLEL", "MAX_POWER_W", "MAX_RATE",
           "MAX_SECONDS", "MAX_SEED", "MAX_TOKENS", "MAX_WHAT_IF", "check_name", "check_range", "check_reachable",
           "count", "fraction", "input_dir", "input_file", "name", "number", "output_dir", "output_file",
           "parse_number", "ray_address", "seconds", "seed"]
