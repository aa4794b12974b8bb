"""The efficiency model a command asks for (roofline, a software stack, a calibration profile) and the
what-if factors that scale a chip: shared by every command, the study runner and the dashboard."""

from __future__ import annotations

from typing import Any

from accelsim.errors import UserError
from accelsim.spec.chip import WHAT_IF_KEYS


def parse_what_if(text: str | None) -> dict[str, float]:
    """`mem_bw=2,flops=0.5` → {'mem_bw': 2.0, 'flops': 0.5}; one-line errors otherwise."""
    out: dict[str, float] = {}
    for part in filter(None, (text or "").split(",")):
        key, sep, val = part.partition("=")
        if not sep or key.strip() not in WHAT_IF_KEYS:
            raise UserError(f"--what-if '{part}' must be KEY=FACTOR with KEY one of {', '.join(WHAT_IF_KEYS)}")
        try:
            out[key.strip()] = float(val)  # its range is checked where it is applied (Chip.scaled)
        except ValueError:
            raise UserError(f"--what-if '{part}': factor '{val}' is not a number") from None
    return out


# --fidelity choices and default of every command (predict, plan, compare, pareto, simulate, the
# study runner, the dashboard). Default: "calibrated", the shipped per-kernel profiles (calibrated on
# measured chips, projected with the measured leave-one-chip-out band elsewhere; kernels run sustained,
# at the clock the power limit allows); "analytical" is the software stack fitted end to end on
# published serving runs. Side by side (README, "Fidelity labels"), median |error|: 30 published H100
# TRT-LLM points 3.1% calibrated vs 3.7% stack (the stack fitted on them); 14 decoder stacks measured on
# our H200, 3.1% vs 2.9%; DLRM-v2 vs MLPerf, 11% vs 11%. `--stack vllm` keeps the stack (its
# shipped_profiles is false: on 243 vLLM H100 runs the stack is closer, 9.3% vs 16%).
FIDELITY_CHOICES = ("analytical", "calibrated", "roofline")
DEFAULT_FIDELITY = "calibrated"


def efficiency_from_args(fidelity: str = DEFAULT_FIDELITY, stack: str | None = None, calibration: str | None = None,
                         chip: Any = None, framework: str | None = None) -> Any:
    """The efficiency model a command asked for.

    calibration FILE: that profile (calibrated on its own chips, projected on others);
    "analytical": the software stack (`--stack`);
    fidelity "calibrated" (default): the shipped profile of `chip` (`accelsim.calibrate.shipped`):
      calibrated when the chip has its own measurements, projected (with the leave-one-chip-out band)
      otherwise; without `chip`, an efficiency that resolves each chip of a sweep that way;
    "roofline": datasheet peaks.
    Classes a profile did not measure fall back to the stack. The band of a calibrated or projected
    efficiency: `eff.band_for(op_class)` / `eff.band` (ln half-widths), and `eff.fidelity`.
    """
    from accelsim.perf import Fidelity, Roofline
    from accelsim.stacks import DEFAULT_STACK, load_stack

    if fidelity not in FIDELITY_CHOICES:
        raise UserError(f"--fidelity '{fidelity}' is not one of {', '.join(FIDELITY_CHOICES)}")
    base = load_stack(stack or DEFAULT_STACK)
    if calibration:
        try:
            from accelsim.calibrate.profile import CalibratedEfficiency, read_profile
        except ModuleNotFoundError:
            raise UserError("--calibration needs the calibrate module, which is not installed") from None
        profile = read_profile(calibration)
        own = chip is None or (chip.name in profile.own_chips and not getattr(chip, "what_if", None))
        return CalibratedEfficiency(profile, base, fidelity=Fidelity.CALIBRATED if own else Fidelity.PROJECTED)
    if fidelity == "roofline":
        return Roofline()
    if fidelity == "analytical":
        return base
    from accelsim.calibrate.shipped import DEFAULT_FRAMEWORK, FRAMEWORKS, ShippedEfficiency, for_chip

    # A stack fitted end to end with its own analytical curves (`shipped_profiles = false` in
    # stacks.toml) stays itself: a profile's kernels under its engine terms would mix two fits.
    # A stack named after a framework otherwise takes that framework's profiles.
    if not getattr(base, "shipped_profiles", True):
        return base
    fw = framework or (stack if stack in FRAMEWORKS else DEFAULT_FRAMEWORK)
    if chip is None:
        return ShippedEfficiency(base, fw)
    return for_chip(chip, base, fw) or base
