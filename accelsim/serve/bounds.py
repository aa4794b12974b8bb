"""Resource bounds of a simulation, estimated before it starts.

A serving run holds a few NumPy values per request (arrival, lengths, first token, finish, replica,
preemptions: ~90 bytes each, measured by benchmarks/bench_sim_memory.py) and a few floats per
time-series bin; its wall time grows with requests and failure events. So the expected counts of
those, from the configuration alone, bound its memory and time. A run expected to exceed a limit
is refused with a one-line error unless forced (`--force`): the limits are far beyond the studies
this project runs (the largest shipped study simulates ~1e5 requests) and stop a typo such as
`--duration 1e30` or `--interval 1e-9` before it exhausts the machine.
"""

from __future__ import annotations

import math
from typing import Any

from accelsim.errors import UserError

MAX_REQUESTS = 10_000_000  # LLM + ranking requests: ~1 GB of per-request records, ~30 min of wall time
MAX_BINS = 1_000_000  # time-series bins (duration / --interval): ~130 MB
MAX_FAILURE_EVENTS = 1_000_000  # failures across the fleet over the run
MAX_TRAINING_EVENTS = 10_000_000  # checkpoint segments + failures of a training job
MAX_REPLICAS = 100_000  # simulated replicas (LLM + ranking): ~10 kB and a process each
MAX_SEQS = 16_384  # running sequences per replica: the step-time tables take ~56 kB per slot (~0.9 GB here)


def expected_serving(cfg: Any, drain_limit: float) -> dict[str, float]:
    """Expected requests, time-series bins and failure events of a `SimConfig` (no run needed)."""
    horizon = cfg.duration_s * (drain_limit if cfg.drain else 1.0)
    requests = 0.0
    t = cfg.traffic
    if t is not None and t.arrival != "trace":
        requests += t.rate_per_s * cfg.duration_s
    if cfg.ranking is not None:
        requests += cfg.ranking.rate_per_s * cfg.duration_s
    chips = sum(g.replicas * g.tp * g.pp for g in cfg.groups) + sum(g.replicas * g.chips for g in cfg.ranking_groups)
    return {"requests": requests, "bins": horizon / cfg.bin_s,
            "failure_events": cfg.failures.rate_per_s(chips) * horizon}


def check_serving(cfg: Any, drain_limit: float, force: bool = False) -> dict[str, float]:
    """Raise UserError if a serving run is expected to exceed a limit (unless `force`)."""
    replicas = sum(g.replicas for g in (*cfg.groups, *cfg.ranking_groups))
    _check(replicas, MAX_REPLICAS, "replicas", "simulate a slice of the fleet and scale the result", force)
    for g in cfg.groups:
        _check(g.max_seqs, MAX_SEQS, "running sequences per replica (max_seqs)", "lower max_seqs", force)
    est = expected_serving(cfg, drain_limit)
    for key, limit, hint in (("requests", MAX_REQUESTS, "lower --arrival-rate/--ranking-rate or --duration"),
                             ("bins", MAX_BINS, "raise --interval or lower --duration"),
                             ("failure_events", MAX_FAILURE_EVENTS, "lower --duration or the failure rates")):
        _check(est[key], limit, key.replace("_", " "), hint, force)
    return est


def expected_training(duration_s: float, interval_s: float, checkpoint_s: float, mtbf_s: float) -> float:
    """Expected events of a training job: checkpointed segments plus failures plus daily counters."""
    segments = duration_s / (interval_s + checkpoint_s)
    failures = 0.0 if math.isinf(mtbf_s) else duration_s / mtbf_s
    return segments + failures + duration_s / 86400.0


def check_training(events: float, force: bool = False) -> None:
    _check(events, MAX_TRAINING_EVENTS, "events", "lower --duration or raise --checkpoint-interval", force)


def _check(value: float, limit: float, what: str, hint: str, force: bool) -> None:
    if not math.isfinite(value):
        raise UserError(f"the run would need unbounded {what}; {hint}")
    if value > limit and not force:
        raise UserError(f"the run would need about {value:.3g} {what}, over the limit of {limit:.3g} "
                        f"(memory and time); {hint}, or pass --force")
