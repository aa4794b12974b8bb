"""Hardware and software failures: per-component rates per chip-hour, repair times, processes.

Default rates come from the Llama 3 405B pre-training snapshot ("The Llama 3 Herd of Models",
arXiv 2407.21783 §3.3.4, Table 5): 419 unexpected interruptions in 54 days (1,296 h) on
16,384 H100s. Assuming each interruption was caused by one chip's worth of hardware or software
and that the rate scales with the number of chips, the per-chip rate of a category is

    rate = count / (16,384 chips x 1,296 h)          (all categories: 1.973e-5 per chip-hour,
                                                      i.e. one per 50.7k chip-hours, job MTBI 3.09 h)

The table's 18 rows are grouped into five components by what fails (counts from the table; the
rows sum to 419. The table's "30.1%" for faulty GPUs does not match 148/419 = 35.3%; counts win):
    chip      faulty GPU 148, GPU SRAM 19, GPU system processor 17, silent data corruption 6,
              GPU thermal interface/sensor 6                                         = 196
    hbm       GPU HBM3 memory 72                                                     =  72
    host      unplanned host maintenance 32, NIC 7, SSD 3, power supply 3, chassis 2,
              IO expansion board 2, CPU 2, system memory 2                           =  53
    network   network switch/cable 35, NCCL watchdog timeouts 7                      =  42
    software  software bug 54, dependency 2                                          =  56
Repair times (how long a serving replica is out) are not published: they are assumptions.

A replica of c chips runs one failure process whose gaps are exponential with rate
c x sum(rates); each failure picks its component with probability rate_k / sum(rates). By the
superposition and thinning properties of Poisson processes this is the same in distribution as
independent per-chip, per-component processes, at one event per failure instead of one process per
chip and component. The clock is stopped while the replica is down (exponential gaps are memoryless,
so only up-time is exposed to failures).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from accelsim.errors import UserError
from accelsim.spec import Reader, read_user_file

LLAMA3_CHIPS = 16_384
LLAMA3_HOURS = 54 * 24
LLAMA3_UNEXPECTED = 419
LLAMA3_PLANNED = 47
# (component, interruptions in the Llama 3 snapshot, assumed repair/restart time of a serving replica)
LLAMA3_COUNTS: tuple[tuple[str, int, float], ...] = (
    ("chip", 196, 2 * 3600.0),  # assumed: drain the node, swap the GPU or node, reload weights
    ("hbm", 72, 2 * 3600.0),  # assumed: as chip
    ("host", 53, 1 * 3600.0),  # assumed: host reboot or maintenance
    ("network", 42, 1800.0),  # assumed: reroute around a switch/cable, reconnect
    ("software", 56, 600.0),  # assumed: process restart and weight reload
)


@dataclass(frozen=True)
class Component:
    name: str
    rate_per_chip_hour: float
    repair_s: float


@dataclass(frozen=True)
class FailureModel:
    """A set of independent failure components; rates are per chip-hour."""

    components: tuple[Component, ...] = ()
    source: str = "none"

    @classmethod
    def none(cls) -> FailureModel:
        return cls((), "none")

    @classmethod
    def default(cls) -> FailureModel:
        exposure = LLAMA3_CHIPS * LLAMA3_HOURS
        comps = tuple(Component(n, k / exposure, r) for n, k, r in LLAMA3_COUNTS)
        return cls(comps, "default (Llama 3 405B, 419 unexpected interruptions / 54 days / 16,384 H100)")

    @property
    def rate_per_chip_hour(self) -> float:
        return sum(c.rate_per_chip_hour for c in self.components)

    def rate_per_s(self, chips: int) -> float:
        """Failure rate of a group of `chips` chips, per second."""
        return chips * self.rate_per_chip_hour / 3600.0

    def mtbf_s(self, chips: int) -> float:
        r = self.rate_per_s(chips)
        return math.inf if r == 0 else 1.0 / r

    @property
    def probabilities(self) -> np.ndarray:
        r = np.array([c.rate_per_chip_hour for c in self.components])
        return r / r.sum()

    @property
    def mean_repair_s(self) -> float:
        """Expected repair time of one failure (components weighted by their rates)."""
        if not self.components:
            return 0.0
        return float(np.dot(self.probabilities, [c.repair_s for c in self.components]))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "components": {c.name: {"rate_per_chip_hour": c.rate_per_chip_hour,
                                                               "repair_s": c.repair_s} for c in self.components}}


def load_failures(spec: str) -> FailureModel:
    """`default`, `none`, or a TOML file with one table per component:

        [chip]
        rate_per_chip_hour = 1.2e-5   # failures per chip per hour, >= 0
        repair_s = 7200               # seconds the replica is out after one, >= 0
    """
    if spec == "default":
        return FailureModel.default()
    if spec == "none":
        return FailureModel.none()
    data = read_user_file(spec, "--failures file",
                          missing=f"--failures '{spec}' is neither default, none nor an existing TOML file")
    if not data:
        raise UserError(f"--failures file '{spec}' defines no component (expected tables like [chip])")
    r = Reader(f"--failures file '{spec}'", data)  # the catalogs' schema layer: typed keys, no unknown ones
    comps = []
    for name in list(data):
        t = r.table_(name)
        assert t is not None
        comps.append(Component(name, t.number("rate_per_chip_hour", lo=0.0), t.number("repair_s", lo=0.0)))
        t.done()
    r.done()
    return FailureModel(tuple(comps), f"file {spec}")


class Failable(Protocol):
    def fail(self, component: Component) -> None: ...

    def recover(self) -> None: ...


class ReplicaLife:
    """The up/down life of a replica under its failure processes, shared by every replica kind.

    A subclass sets `env`, `rec` (a Recorder) and `chips`, calls `_start_life()`, and says what
    each edge means in `_on_down(t)` and `_on_up()`. Its run loop yields `until_up()` while down and
    `until_kicked()` while idle; `epoch` changes at every failure, so a step can tell it was cut
    short at `failed_at`.
    """

    env: Any
    rec: Any
    chips: int

    def _start_life(self) -> None:
        self.up, self.epoch, self.failed_at = True, 0, 0.0
        self._wake: Any = None
        self._up_ev: Any = None

    def kick(self) -> None:
        """Wake the run loop if it idles (new work arrived)."""
        if self._wake is not None:
            self._wake.succeed()
            self._wake = None

    def until_kicked(self) -> Any:
        self._wake = self.env.event()
        return self._wake

    def until_up(self) -> Any:
        self._up_ev = self.env.event()
        return self._up_ev

    def fail(self, component: Component) -> None:
        t = self.env.now
        self.up = False
        self.epoch += 1
        self.failed_at = t
        self.rec.failure(t, component.name, self.chips)
        self._on_down(t)

    def recover(self) -> None:
        self.up = True
        self.rec.repaired(self.env.now, self.chips)
        if self._up_ev is not None:
            self._up_ev.succeed()
            self._up_ev = None
        self._on_up()

    def _on_down(self, t: float) -> None:
        raise NotImplementedError

    def _on_up(self) -> None:
        raise NotImplementedError


def failure_process(env: Any, target: Failable, chips: int, model: FailureModel,
                    rng: np.random.Generator) -> Generator[Any, Any, None]:
    """SimPy process: fail `target` at the superposed rate of its chips, repair, repeat."""
    rate = model.rate_per_s(chips)
    if rate <= 0:
        return
    probs = model.probabilities
    n = len(model.components)
    while True:
        yield env.timeout(rng.exponential(1.0 / rate))
        comp = model.components[int(rng.choice(n, p=probs))]
        target.fail(comp)
        yield env.timeout(comp.repair_s)
        target.recover()
