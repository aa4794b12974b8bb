"""Calibration profiles: the fitted curves, the chip they were fitted on, provenance and held-out
errors, in one JSON file; and the `Efficiency` a profile becomes (`load_profile`).

`CalibratedEfficiency` answers `compute(op, hw)` / `memory(op, hw)` for every operator class the
profile measured: it evaluates the class's curve (`accelsim.calibrate.fit`) at the op's roofline
terms on `hw` and returns the single efficiency e with max(t_c, t_m) / e + kernel_overhead = the
curve's time. Classes the profile did not measure (listed in the file as `fallback_classes`) and
every network term come from `base`, the analytical software stack, unchanged; the overhead
constant is `base`'s, so fallback operators keep their own. On a chip other than the measured one
efficiencies are capped at 1: no chip beats its own datasheet roofline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.calibrate.data import chip_from_dict
from accelsim.calibrate.fit import Curve, pick_curve
from accelsim.errors import UserError
from accelsim.io import write_json
from accelsim.ops import COLLECTIVES, F, Op, OpKind
from accelsim.perf import Efficiency, Fidelity, HwVec, link_bw
from accelsim.spec.chip import Chip

SCHEMA = "accelsim.calibration/1"
WORK_FLOOR = 0.05  # when the base overhead exceeds a curve's whole time, keep 5% of it as work


@dataclass(frozen=True)
class Profile:
    """A fitted calibration. `band_log[class]`: p90 |ln(predicted / measured)| on held-out shapes."""

    chip: Chip
    curves: Mapping[str, Curve]
    band_log: Mapping[str, float]
    held_out: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""
    chips: tuple[str, ...] = ()  # chips whose measurements were fitted (default: `chip` alone)

    @property
    def own_chips(self) -> tuple[str, ...]:
        return self.chips or (self.chip.name,)

    @property
    def measured_classes(self) -> list[str]:
        return sorted({k.split("|")[0] for k in self.curves})

    @property
    def fallback_classes(self) -> list[str]:
        return [k.value for k in OpKind if k.value not in self.curves]

    def band_for(self, op_class: str) -> float:
        return float(self.band_log.get(op_class, self.band_log.get("*", 0.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "chip": self.chip.to_dict(),
            "profile_chips": list(self.own_chips),
            "measured_classes": self.measured_classes,
            "fallback_classes": self.fallback_classes,
            "fallback_note": "classes without a curve use the base analytical stack given to load_profile "
                             "(accelsim predict: --stack, default trtllm-fp8); network terms always do",
            "validation_only_classes": [c for c in self.measured_classes if c not in OpKind._value2member_map_],
            "curves": {k: c.to_dict() for k, c in self.curves.items()},
            "band_log": dict(self.band_log),
            "held_out": dict(self.held_out),
            "provenance": dict(self.provenance),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], path: str = "") -> Profile:
        name = Path(path).name or "profile"
        if d.get("schema") != SCHEMA:
            raise UserError(f"{name}: not a calibration profile (schema '{d.get('schema')}', expected '{SCHEMA}')")
        try:
            curves = {k: Curve.from_dict(v) for k, v in d["curves"].items()}
            band = {k: float(v) for k, v in d.get("band_log", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"{name}: bad curve entry ({exc})") from None
        chip = chip_from_dict(d["chip"])
        return cls(chip, curves, band, d.get("held_out", {}), d.get("provenance", {}), path,
                   tuple(d.get("profile_chips", (chip.name,))))


def save_profile(profile: Profile, path: str | Path) -> None:
    """Write the profile JSON atomically (gzip-compressed, compact, when `path` ends in .gz)."""
    if str(path).endswith(".gz"):
        import gzip

        from accelsim.io import atomic_open

        data = json.dumps(profile.to_dict(), separators=(",", ":")).encode("utf-8")
        with atomic_open(path, "wb") as fh:
            fh.write(gzip.compress(data, mtime=0))
        return
    write_json(path, profile.to_dict())


def _gunzip(p: Path) -> str:
    import gzip

    return gzip.decompress(p.read_bytes()).decode("utf-8")


def read_profile(path: str | Path) -> Profile:
    """Read a profile file; a missing file or a file that is not a profile is a UserError."""
    from accelsim.io import check_input_file

    try:
        p = check_input_file(path, "calibration profile")
    except ValueError as exc:  # missing, a directory, not a regular file ...
        raise UserError(str(exc)) from None
    try:
        text = _gunzip(p) if p.suffix == ".gz" else p.read_text(encoding="utf-8")
        d = json.loads(text, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, OSError, EOFError) as exc:  # JSONDecodeError is a ValueError
        raise UserError(f"{p.name}: not valid JSON ({exc})") from None
    if not isinstance(d, dict) or "chip" not in d or "curves" not in d:
        raise UserError(f"{p.name}: not a calibration profile (needs 'schema', 'chip' and 'curves')")
    try:
        return Profile.from_dict(d, str(path))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{p.name}: not a calibration profile ({type(exc).__name__}: {exc})") from None


def _no_constant(name: str) -> float:
    """json's NaN / Infinity / -Infinity: not JSON, and no efficiency or band may be one."""
    raise ValueError(f"{name} is not a number a profile may hold")


@dataclass(frozen=True)
class CalibratedEfficiency:
    """`accelsim.perf.Efficiency` from a profile, falling back to `base` for unmeasured classes.

    log_shift: per-class ln-multiplier on the efficiency ("*" for all), used by projection bands;
    cap_other_chips: largest efficiency on a chip other than the profile's (1 = datasheet roofline).
    Collectives with a curve are calibrated on their network term (the curve gives the whole
    collective's time from fabric bytes / link bandwidth and the group size); within the scale-up
    domain only: a group on the scale-out network keeps `base`'s terms.
    fidelity: CALIBRATED on the profile's own chips, PROJECTED when carried to another chip, with
    `band_for(class)` the ln half-width measured for that use (held-out or leave-one-chip-out).
    sustained: op databases time each kernel in short bursts, at boost clocks; a serving engine runs
    them back to back for minutes, and a step that would draw more than TDP then runs at a lowered
    clock. True (serving predictions) asks `perf.cost` for that (`power.sustained_clock_fraction` of
    the step's utilisations); False (operator-level checks against the database) costs the kernels as
    the database timed them.
    """

    profile: Profile
    base: Efficiency
    log_shift: Mapping[str, float] = field(default_factory=dict)
    cap_other_chips: float = 1.0
    fidelity: Fidelity = Fidelity.CALIBRATED
    sustained: bool = False
    _last: list = field(default_factory=lambda: [None, None, None], init=False, repr=False, compare=False)

    @property
    def kernel_overhead_s(self) -> float:
        return float(self.base.kernel_overhead_s)

    @property
    def link_latency_s(self) -> float:
        # a collective curve includes the per-step latency; an unfitted collective gets base's latency
        # folded into its network efficiency instead (`network`), so one global value serves both
        fitted = any(str(k) in self.profile.measured_classes for k in COLLECTIVES)
        return 0.0 if fitted else float(self.base.link_latency_s)

    def band_for(self, op_class: str) -> float:
        """ln half-width of this efficiency's error for an operator class (0 if not measured)."""
        return self.profile.band_for(op_class) if op_class in self.profile.measured_classes else 0.0

    @property
    def band(self) -> dict[str, float]:
        """ln half-width per measured class, and '*' over all of them."""
        return {k: float(v) for k, v in self.profile.band_log.items()}

    def uses_curve(self, op: Op) -> bool:
        return pick_curve(self.profile.curves, str(op.kind), op.dtype) is not None

    def _eff(self, op: Op, hw: HwVec) -> F | None:
        # perf.op_times asks compute() then memory() for the same op on the same chips: one evaluation
        last_op, last_hw, last = self._last
        if op is last_op and hw is last_hw:
            return last
        eff = self._eff_of(op, hw)
        self._last[:] = [op, hw, eff]
        return eff

    def _eff_of(self, op: Op, hw: HwVec) -> F | None:
        if op.kind in COLLECTIVES:
            return None
        hit = pick_curve(self.profile.curves, str(op.kind), op.dtype)
        if hit is None:
            return None
        curve = hit[1]
        t_c = op.flops / hw.peak[op.dtype]
        t_m = op.bytes / hw.mem_bw
        t_pred = curve.time_s(t_c, t_m, op.rows, gather=op.gather_bytes, dims=op.dims)
        t_roof = np.maximum(t_c, t_m)
        work = np.maximum(t_pred - self.kernel_overhead_s, WORK_FLOOR * t_pred)
        shift = self.log_shift.get(str(op.kind), self.log_shift.get("*", 0.0))
        eff = np.where(t_roof > 0, t_roof / np.maximum(work, 1e-30), 1.0) * np.exp(shift)
        return np.clip(eff, 1e-6, self._cap(hw))

    def _cap(self, hw: HwVec) -> F:
        shape = np.shape(hw.mem_bw)
        if len(hw.names) != int(np.prod(shape)):  # names not aligned with the arrays: treat as other chips
            return np.asarray(self.cap_other_chips)
        own = np.asarray([n in self.profile.own_chips for n in hw.names]).reshape(shape)
        return np.where(own, np.inf, self.cap_other_chips)

    def compute(self, op: Op, hw: HwVec) -> F:
        eff = self._eff(op, hw)
        return self.base.compute(op, hw) if eff is None else eff

    def memory(self, op: Op, hw: HwVec) -> F:
        eff = self._eff(op, hw)
        return self.base.memory(op, hw) if eff is None else eff

    def network(self, op: Op, hw: HwVec) -> F:
        hit = pick_curve(self.profile.curves, str(op.kind), op.dtype) if op.kind in COLLECTIVES else None
        if op.group <= 1 or op.kind not in COLLECTIVES:
            return self.base.network(op, hw)
        link = link_bw(op, hw)
        t_net = op.comm_bytes / link
        # base's terms, with base's per-step latency carried in the efficiency (link_latency_s may be 0)
        lat = op.comm_steps * (float(self.base.link_latency_s) - self.link_latency_s)
        base_eff = t_net / np.maximum(t_net / self.base.network(op, hw) + lat, 1e-30)
        if hit is None:
            return self.base.network(op, hw) if self.link_latency_s == self.base.link_latency_s else base_eff
        t_pred = hit[1].time_s(np.zeros_like(t_net), t_net, np.full_like(t_net, float(op.group)), dims=op.dims)
        roof = np.maximum(op.flops / (hw.peak[op.dtype] * self.base.compute(op, hw)),
                          op.bytes / (hw.mem_bw * self.base.memory(op, hw)))
        work = np.maximum(t_pred - roof - self.kernel_overhead_s, WORK_FLOOR * t_pred)
        shift = self.log_shift.get(str(op.kind), self.log_shift.get("*", 0.0))
        eff = np.clip(t_net / np.maximum(work, 1e-30) * np.exp(shift), 1e-6, np.inf)
        return np.where(op.group <= hw.scale_up_domain, eff, base_eff)


def load_profile(path: str | Path, base: Efficiency) -> CalibratedEfficiency:
    """The profile at `path` as an Efficiency (fidelity "calibrated"); unmeasured classes use `base`."""
    return CalibratedEfficiency(read_profile(path), base)
