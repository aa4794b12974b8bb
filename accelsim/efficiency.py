"""The efficiency model a command asks for (roofline, a software stack, a calibration profile) and the
what-if factors that scale a chip: shared by every command, the study runner and the dashboard."""

from __future__ import annotations

from typing import Any

from accelsim.errors import UserError
from accelsim.spec.chip import WHAT_IF_KEYS
from accelsim.validate import check_range

MAX_WHAT_IF = 1000.0  # a what-if scales a chip value by 1/1000 to 1000x (three orders of magnitude)


def parse_what_if(text: str | None) -> dict[str, float]:
    """`mem_bw=2,flops=0.5` → {'mem_bw': 2.0, 'flops': 0.5}; one-line errors otherwise."""
    out: dict[str, float] = {}
    for part in filter(None, (text or "").split(",")):
        key, sep, val = part.partition("=")
        if not sep or key.strip() not in WHAT_IF_KEYS:
            raise UserError(f"--what-if '{part}' must be KEY=FACTOR with KEY one of {', '.join(WHAT_IF_KEYS)}")
        try:
            factor = float(val)
        except ValueError:
            raise UserError(f"--what-if '{part}': factor '{val}' is not a number") from None
        check_range(factor, f"--what-if {key.strip()}", lo=1 / MAX_WHAT_IF, hi=MAX_WHAT_IF, exc=UserError)
        out[key.strip()] = factor
    return out


def efficiency_from_args(fidelity: str = "analytical", stack: str | None = None, calibration: str | None = None) -> Any:
    """The efficiency model a command asked for: roofline, a software stack, or a calibration profile."""
    from accelsim.perf import Roofline
    from accelsim.stacks import DEFAULT_STACK, load_stack

    if calibration:
        try:
            from accelsim.calibrate.profile import load_profile
        except ModuleNotFoundError:
            raise UserError("--calibration needs the calibrate module, which is not installed") from None
        return load_profile(calibration, base=load_stack(stack or DEFAULT_STACK))
    if fidelity == "roofline":
        return Roofline()
    return load_stack(stack or DEFAULT_STACK)
