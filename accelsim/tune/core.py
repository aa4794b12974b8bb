"""The tuning loop: a strategy proposes configs, a device measures them, the store keeps them.

A `Device` turns (problem, config) into a `Measurement`; devices are the GPU harness
(bench.GpuDevice), a replay of a recorded CSV (replay.ReplayDevice) and the synthetic simulator
(synthetic.SyntheticDevice). A measurement that is not `ok` (wrong result, out of resources,
compile error, not recorded) is recorded like any other and can never become the best config.
Pure Python: importable on the GPU box.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from accelsim.errors import UserError
from accelsim.tune.space import Config, ConfigTuple, Problem, as_config, as_tuple

Status = Literal["ok", "wrong", "out_of_resources", "compile_error", "error", "not_recorded"]


@dataclass(frozen=True)
class Measurement:
    """One config's outcome. Times in seconds per fused-MoE call (median and 20th/80th percentiles
    over ``reps`` timed repetitions); ``rel_err`` is the correctness gate's ||out - ref|| / ||ref||
    (NaN when the gate did not run); ``message`` says why a non-ok status happened."""

    status: Status
    median_s: float = math.nan
    p20_s: float = math.nan
    p80_s: float = math.nan
    reps: int = 0
    rel_err: float = math.nan
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.median_s > 0

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


class Device(Protocol):
    """Something that measures configs. ``fingerprint`` identifies it for the results store;
    ``timed`` is False for a device that only checks correctness (no timings)."""

    fingerprint: Mapping[str, str]
    timed: bool

    def measure(self, problem: Problem, config: Config) -> Measurement: ...


class Strategy(Protocol):
    """Ask/tell search over a fixed candidate list. ``ask(n)`` returns up to n configs not yet
    told (an empty list means the strategy is done); ``tell`` reports each outcome."""

    name: str

    def ask(self, n: int) -> list[Config]: ...

    def tell(self, config: Config, measurement: Measurement) -> None: ...


@dataclass(frozen=True)
class Budget:
    """Stop after ``evaluations`` configs (measured now or found in the store) or ``seconds`` of wall
    time, whichever comes first; None = unlimited. Counting store hits keeps a resumed run on the
    same trajectory as an uninterrupted one."""

    evaluations: int | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Budget:
        """'200' -> 200 evaluations; '90s' / '5m' -> wall time; None -> unlimited."""
        if text is None:
            return cls()
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([sm]?)\s*", str(text))
        if not m or float(m.group(1)) <= 0 or (not m.group(2) and "." in m.group(1)):
            raise UserError(f"--budget must be a count of measurements (e.g. 200) or a time (90s, 5m), got '{text}'")
        value = float(m.group(1))
        if m.group(2) == "s":
            return cls(seconds=value)
        if m.group(2) == "m":
            return cls(seconds=60 * value)
        return cls(evaluations=int(value))

    def to_dict(self) -> dict[str, Any]:
        return {"evaluations": self.evaluations, "seconds": self.seconds}


@dataclass
class TuneResult:
    """Outcome of one (problem, batch size): the best ok config (None if none passed), its time in
    seconds, counts, wall time, and every (config, measurement, source) in evaluation order."""

    problem: Problem
    strategy: str
    best_config: Config | None = None
    best_time_s: float | None = None
    evaluated: int = 0
    measured: int = 0
    from_store: int = 0
    not_ok: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    history: list[tuple[Config, Measurement, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The per-batch-size JSON of `accelsim tune --json`."""
        return {
            "batch_size": self.problem.m,
            "best_config": self.best_config,
            "best_time_s": self.best_time_s,
            "best_time_us": None if self.best_time_s is None else round(self.best_time_s * 1e6, 3),
            "configs_evaluated": self.evaluated,
            "configs_measured": self.measured,
            "configs_from_store": self.from_store,
            "not_ok": dict(self.not_ok),
            "wall_s": round(self.wall_s, 3),
        }


class ResultSink(Protocol):
    def get(self, problem: Problem, config: Config) -> Measurement | None: ...

    def put(self, problem: Problem, config: Config, measurement: Measurement) -> None: ...


def tune(problem: Problem, strategy: Strategy, device: Device, *, budget: Budget = Budget(),
         sink: ResultSink | None = None, batch: int = 8,
         on_result: Callable[[Config, Measurement, str], None] | None = None,
         clock: Callable[[], float] = time.monotonic) -> TuneResult:
    """Run ``strategy`` against ``device`` for one problem until the strategy is done or the budget
    is spent. Each config is looked up in ``sink`` first (source "store": no re-measurement after a
    killed run) and otherwise measured and written to ``sink`` at once (source "measured").
    ``on_result`` is called after every evaluation (progress bars). Returns a TuneResult whose best
    config is the fastest ``ok`` measurement: a wrong or failed config is never the best."""
    start = clock()
    result = TuneResult(problem, strategy.name)
    seen: set[ConfigTuple] = set()

    def spent() -> bool:
        if budget.evaluations is not None and result.evaluated >= budget.evaluations:
            return True
        return budget.seconds is not None and clock() - start >= budget.seconds

    while not spent():
        want = batch if budget.evaluations is None else min(batch, budget.evaluations - result.evaluated)
        proposals = strategy.ask(want)
        if not proposals:
            break
        for config in proposals:
            if spent():
                break
            key = as_tuple(config)
            if key in seen:  # a strategy must not propose twice; guard so budgets stay honest
                raise RuntimeError(f"strategy {strategy.name} proposed {as_config(key)} twice")
            seen.add(key)
            cached = sink.get(problem, config) if sink is not None else None
            if cached is not None:
                measurement, source = cached, "store"
                result.from_store += 1
            else:
                measurement, source = device.measure(problem, config), "measured"
                result.measured += 1
                if sink is not None:
                    sink.put(problem, config, measurement)
            result.evaluated += 1
            result.history.append((as_config(key), measurement, source))
            if measurement.ok:
                if result.best_time_s is None or measurement.median_s < result.best_time_s:
                    result.best_config, result.best_time_s = as_config(key), measurement.median_s
            elif measurement.status != "ok":  # "ok" without a time: a gate-only device
                result.not_ok[measurement.status] = result.not_ok.get(measurement.status, 0) + 1
            strategy.tell(as_config(key), measurement)
            if on_result is not None:
                on_result(as_config(key), measurement, source)
    result.wall_s = clock() - start
    return result

