"""A synchronous training job under failures: checkpoints, restarts, effective training time.

The job runs on `chips` chips; any failure of any of them interrupts it (rate Λ = chips x the
per-chip rate of the failure model; MTBF M = 1/Λ). It computes for `interval` seconds, then stalls
`checkpoint_s` writing a checkpoint, which commits the interval's work. A failure during either
loses everything since the last committed checkpoint; the job then spends `restart_s` (reschedule on
spares, reload the checkpoint) and resumes. Failures are not exposed during a restart.

What the simulation must match (renewal-reward): a segment needs a = interval + checkpoint_s of
uninterrupted running. With exposure X ~ Exp(Λ) per attempt, E[T] = E[min(X, a)] + P(X < a)(R + E[T]),
so the expected wall time per committed segment and the expected useful fraction are

    E[T] = (M + R) (exp(a / M) - 1),        useful fraction = interval / E[T]     (exact)

For C, R << M, expanding exp to second order and optimising gives Young's interval
sqrt(2 C M) and useful fraction 1 - sqrt(2 C / M) - R / M (first order; the neglected terms are
O(C / M)). Daly's higher-order interval is in `daly_interval`.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from accelsim.errors import UserError
from accelsim.serve.failures import FailureModel


@dataclass(frozen=True)
class TrainingJob:
    chips: int
    duration_s: float
    checkpoint_s: float = 30.0  # assumed: a checkpoint write that stalls training
    restart_s: float = 300.0  # assumed: detect, reschedule on spare nodes, reload a checkpoint
    interval_s: float | None = None  # compute between checkpoints; None: Young's sqrt(2 C M)

    def validate(self) -> None:
        if self.chips < 1:
            raise UserError(f"--chips must be >= 1, got {self.chips}")
        if not self.duration_s > 0:
            raise UserError(f"--duration must be > 0 s, got {self.duration_s}")
        for key, flag in (("checkpoint_s", "--checkpoint-cost"), ("restart_s", "--restart-cost")):
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise UserError(f"{flag} must be >= 0 s, got {v}")
        if self.interval_s is not None and not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise UserError(f"--checkpoint-interval must be > 0 s or 'auto', got {self.interval_s}")


def young_interval(checkpoint_s: float, mtbf_s: float) -> float:
    """Young's optimal compute time between checkpoints, sqrt(2 C M)."""
    return math.sqrt(2.0 * checkpoint_s * mtbf_s)


def daly_interval(checkpoint_s: float, mtbf_s: float) -> float:
    """Daly's higher-order optimum (2006): sqrt(2CM)[1 + sqrt(C/2M)/3 + C/(18M)] - C for C < 2M, else M."""
    c, m = checkpoint_s, mtbf_s
    if c >= 2 * m:
        return m
    x = math.sqrt(c / (2 * m))
    return math.sqrt(2 * c * m) * (1 + x / 3 + x * x / 9) - c


def expected_fraction(interval_s: float, checkpoint_s: float, restart_s: float, mtbf_s: float) -> float:
    """Exact expected useful fraction of wall time (module docstring)."""
    if math.isinf(mtbf_s):
        return interval_s / (interval_s + checkpoint_s)
    return interval_s / ((mtbf_s + restart_s) * math.expm1((interval_s + checkpoint_s) / mtbf_s))


def first_order_fraction(checkpoint_s: float, restart_s: float, mtbf_s: float) -> float:
    """Young/Daly first-order useful fraction at the optimal interval: 1 - sqrt(2C/M) - R/M."""
    return 1.0 - math.sqrt(2.0 * checkpoint_s / mtbf_s) - restart_s / mtbf_s


class _State:
    def __init__(self) -> None:
        self.useful_s = self.lost_s = self.restart_s = self.checkpoint_s = 0.0
        self.interruptions: dict[str, int] = {}
        self.times: list[float] = []
        self.resumed: Any = None


def _job(env: Any, job: TrainingJob, interval: float, st: _State) -> Generator[Any, Any, None]:
    while True:
        start = env.now
        try:
            yield env.timeout(interval + job.checkpoint_s)
            st.useful_s += interval
            st.checkpoint_s += job.checkpoint_s
        except simpy.Interrupt as intr:
            st.lost_s += env.now - start
            st.interruptions[intr.cause] = st.interruptions.get(intr.cause, 0) + 1
            st.times.append(env.now)
            yield env.timeout(job.restart_s)
            st.restart_s += job.restart_s
            st.resumed.succeed()


def _failures(env: Any, proc: Any, rate: float, model: FailureModel, rng: np.random.Generator,
              st: _State) -> Generator[Any, Any, None]:
    probs, n = model.probabilities, len(model.components)
    while True:
        yield env.timeout(rng.exponential(1.0 / rate))
        st.resumed = env.event()
        proc.interrupt(model.components[int(rng.choice(n, p=probs))].name)
        yield st.resumed  # the job is restarting: no exposure until it runs again


def simulate_training(job: TrainingJob, failures: FailureModel, seed: int = 0, force: bool = False) -> dict[str, Any]:
    """Run the job for `duration_s` of wall time; returns counts, time breakdown and the analytic
    expectations next to the simulated values (seconds, fractions of wall time). A job expected to
    need more events than `accelsim.serve.bounds.MAX_TRAINING_EVENTS` is a UserError unless `force`."""
    from accelsim.serve.bounds import check_training, expected_training

    job.validate()
    mtbf = failures.mtbf_s(job.chips)
    interval = job.interval_s
    if interval is None:
        if math.isinf(mtbf) or job.checkpoint_s == 0:
            raise UserError("--checkpoint-interval auto needs failures and a checkpoint cost > 0; give seconds")
        interval = young_interval(job.checkpoint_s, mtbf)
    check_training(expected_training(job.duration_s, interval, job.checkpoint_s, mtbf), force)
    env = simpy.Environment()
    st = _State()
    proc = env.process(_job(env, job, interval, st))
    if not math.isinf(mtbf):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
        env.process(_failures(env, proc, 1.0 / mtbf, failures, rng, st))
    env.run(until=job.duration_s)
    n = sum(st.interruptions.values())
    days = job.duration_s / 86400.0
    daily = np.bincount((np.asarray(st.times) // 86400).astype(int), minlength=math.ceil(days)).tolist()
    return {
        "chips": job.chips, "duration_s": job.duration_s, "failures": failures.source,
        "mtbf_s": mtbf if math.isfinite(mtbf) else None,
        "checkpoint_interval_s": interval, "checkpoint_s": job.checkpoint_s, "restart_s": job.restart_s,
        "interruptions": n, "interruptions_per_day": n / days,
        "expected_interruptions_per_day": 86400.0 / mtbf if math.isfinite(mtbf) else 0.0,
        "interruptions_by_component": dict(sorted(st.interruptions.items())),
        "interruptions_by_day": daily,
        "effective_fraction": st.useful_s / job.duration_s,
        "expected_fraction": expected_fraction(interval, job.checkpoint_s, job.restart_s, mtbf),
        "young_interval_s": young_interval(job.checkpoint_s, mtbf) if math.isfinite(mtbf) else None,
        "first_order_fraction": (first_order_fraction(job.checkpoint_s, job.restart_s, mtbf)
                                 if math.isfinite(mtbf) else None),
        "useful_s": st.useful_s, "checkpoint_overhead_s": st.checkpoint_s, "lost_work_s": st.lost_s,
        "restart_overhead_s": st.restart_s, "seed": seed,
    }
