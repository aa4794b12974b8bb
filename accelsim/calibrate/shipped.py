"""The calibrated profiles shipped in `hwmodels/calibrated/` and the efficiency a chip gets under
`--fidelity calibrated` (the default: `accelsim.efficiency.DEFAULT_FIDELITY`).

  <chip>_<framework>.json.gz   fitted on that chip's own measured kernels (held-out band):
                               fidelity `calibrated` on that chip
  projected_<framework>.json.gz fitted on every measured chip pooled, in chip-relative coordinates;
                               its band is the leave-one-chip-out error per operator class:
                               fidelity `projected` on any chip without its own profile (MTIA, TPU,
                               MI300X ...) and on what-if variants of measured chips
Operator classes a profile did not measure (embedding bags ...) and the network of chips outside
the measured fabrics use the analytical software stack (`base`).
`accelsim.calibrate.build` writes these files from the imported measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from accelsim.calibrate.profile import CalibratedEfficiency, Profile, read_profile
from accelsim.errors import UserError
from accelsim.ops import F, Op
from accelsim.perf import Efficiency, Fidelity, HwVec
from accelsim.spec import catalog_dir
from accelsim.spec.chip import Chip

FRAMEWORKS = ("trtllm", "vllm")
DEFAULT_FRAMEWORK = "trtllm"
PROJECTED = "projected"


def calibrated_dir() -> Path:
    return catalog_dir("hwmodels") / "calibrated"  # the catalog's own folder, not one a cwd shadows


def profile_path(name: str, framework: str = DEFAULT_FRAMEWORK) -> Path:
    """Path of a shipped profile: a chip name, or PROJECTED for the pooled projection profile."""
    return calibrated_dir() / f"{name}_{framework}.json.gz"


@cache
def _load(name: str, framework: str) -> Profile | None:
    path = profile_path(name, framework)
    return read_profile(path) if path.is_file() else None


def shipped_profile(name: str, framework: str = DEFAULT_FRAMEWORK) -> Profile | None:
    """The shipped profile of chip `name` (or PROJECTED), None when there is none."""
    if framework not in FRAMEWORKS:
        raise UserError(f"unknown serving framework '{framework}'; profiles ship for {', '.join(FRAMEWORKS)}")
    return _load(name, framework)


def for_chip(chip: Chip | str, base: Efficiency, framework: str = DEFAULT_FRAMEWORK) -> CalibratedEfficiency | None:
    """The calibrated efficiency of one chip: its own profile (calibrated) when it has one and is not a
    what-if variant; otherwise the projection profile (projected, with its leave-one-chip-out band).
    A what-if variant of a measured chip keeps its own curves but is labelled projected with the
    projection band. None when no profile ships at all. Serving predictions: the kernels run sustained
    (`CalibratedEfficiency.sustained`), not in the database's short bursts."""
    name = chip if isinstance(chip, str) else chip.name
    what_if = bool(getattr(chip, "what_if", None))
    own = shipped_profile(name, framework)
    proj = shipped_profile(PROJECTED, framework)
    if own is not None and not what_if:
        return CalibratedEfficiency(own, base, fidelity=Fidelity.CALIBRATED, sustained=True)
    if own is not None and proj is not None:
        banded = Profile(own.chip, own.curves, proj.band_log, own.held_out, own.provenance, own.path, own.chips)
        return CalibratedEfficiency(banded, base, fidelity=Fidelity.PROJECTED, sustained=True)
    if proj is not None:
        return CalibratedEfficiency(proj, base, fidelity=Fidelity.PROJECTED, sustained=True)
    return None


@dataclass(frozen=True)
class ShippedEfficiency:
    """The calibrated efficiency for arrays of chips (sweeps): each chip of `hw` gets `for_chip`'s
    efficiency (calibrated on measured chips, projected elsewhere); `fidelity` is the least grounded
    of the two (projected) unless resolved to one chip with `resolve`."""

    base: Efficiency
    framework: str = DEFAULT_FRAMEWORK
    fidelity: Fidelity = Fidelity.PROJECTED
    _cache: dict[str, Efficiency] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kernel_overhead_s(self) -> float:
        return float(self.base.kernel_overhead_s)

    @property
    def link_latency_s(self) -> float:
        # one value for all chips (accelsim.perf.op_times): the projection profile's, which fits
        # collectives with their latency included (0) when it ships
        return float(self.resolve("").link_latency_s)

    @property
    def sustained(self) -> bool:
        # every chip gets a shipped profile (its own or the projection), run sustained (`for_chip`)
        return bool(getattr(self.resolve(""), "sustained", False))

    def resolve(self, name: str) -> Efficiency:
        """The efficiency chip `name` gets (calibrated, projected, or `base` when nothing ships)."""
        if name not in self._cache:
            self._cache[name] = for_chip(name, self.base, self.framework) or self.base
        return self._cache[name]

    def _each(self, method: str, op: Op, hw: HwVec) -> F:
        shape = np.shape(hw.mem_bw)
        names = hw.names if len(hw.names) == int(np.prod(shape)) else ("",) * int(np.prod(shape))
        distinct = sorted(set(names))
        if len(distinct) == 1:
            return getattr(self.resolve(distinct[0]), method)(op, hw)
        grid = np.asarray(names).reshape(shape)
        out = None
        for n in distinct:
            val = np.asarray(getattr(self.resolve(n), method)(op, hw), dtype=np.float64)
            out = val if out is None else np.where(grid == n, val, out)
        return out

    def compute(self, op: Op, hw: HwVec) -> F:
        return self._each("compute", op, hw)

    def memory(self, op: Op, hw: HwVec) -> F:
        return self._each("memory", op, hw)

    def network(self, op: Op, hw: HwVec) -> F:
        return self._each("network", op, hw)
