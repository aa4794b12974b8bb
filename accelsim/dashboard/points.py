"""Points for the roofline: the operators of a predicted step, and measured kernels.

Operator points use the same counts and times as the prediction (`accelsim.graph` lowers the
step, `accelsim.perf.op_times` times each operator): intensity = flops / bytes and achieved
FLOP/s = flops / time of one call. Collectives move no FLOPs and have no place on a roofline;
they are counted in `skipped`. Measured points come from measurement CSVs
(`accelsim.measurements`) whose device matches the chip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.errors import UserError
from accelsim.ops import COLLECTIVES
from accelsim.perf import Efficiency, HwVec, cost
from accelsim.predict import Prediction
from accelsim.spec import Chip, Model


@dataclass(frozen=True)
class OpPoint:
    """One operator of one step on one chip (per call)."""

    phase: str  # "decode", "prefill" or "ranking"
    name: str
    dtype: str  # the format it computes in (sets which roof applies)
    flops: float
    bytes: float
    time_s: float
    share: float  # fraction of the step's time spent in this operator (all its calls)
    bound: str  # the largest term of its time: "compute", "memory", "communication" or "overhead"
    collective: bool = False  # a collective: its time is mostly the fabric, not memory

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes

    @property
    def achieved_flops_per_s(self) -> float:
        return self.flops / self.time_s


def op_points(chip: Chip, model: Model, r: Prediction, eff: Efficiency) -> tuple[list[OpPoint], int]:
    """Operator points of the steps behind prediction `r` (on `chip`): exactly the operators it
    costed (`Prediction.step_ops`): LLM decode and one prefill chunk; ranking one batch step.
    Returns (points, number of operators skipped because they carry no FLOPs)."""
    hw = HwVec.from_chips([chip], shape=(1,))
    steps = list(r.step_ops().items())
    points: list[OpPoint] = []
    skipped = 0
    for phase, ops in steps:
        timed = []
        for op in ops:
            c = cost([op], hw, eff)  # the step's own time and bound rule, for this operator alone
            timed.append((op, _scalar(c.total_s) / op.calls, str(np.asarray(c.bound).reshape(-1)[0])))
        step_s = sum(op.calls * t for op, t, _ in timed)
        seen: dict[str, int] = {}
        for op, t, bound in timed:
            flops, nbytes = _scalar(op.flops), _scalar(op.bytes)
            if flops <= 0 or nbytes <= 0:
                skipped += 1
                continue
            seen[op.name] = seen.get(op.name, 0) + 1  # e.g. global and chunked-local attention
            name = op.name if seen[op.name] == 1 else f"{op.name} ({seen[op.name]})"
            points.append(OpPoint(phase, name, chip.compute_dtype(op.dtype), flops, nbytes, t,
                                  op.calls * t / step_s, bound, op.kind in COLLECTIVES))
    return points, skipped


def _scalar(x: Any) -> float:
    return float(np.asarray(x, dtype=np.float64).reshape(-1)[0])


@dataclass(frozen=True)
class MeasuredPoint:
    name: str
    op: str
    dtype: str
    device: str
    intensity: float
    achieved_flops_per_s: float
    file: str


def default_measured_dir() -> Path:
    from accelsim.spec import catalog_dir

    return catalog_dir("hwmodels") / "measured"


def device_matches(chip: Chip, device: str) -> bool:
    """Whether a measurement's device string names this chip (`accelsim.measurements.chip_for_device`)."""
    from accelsim.measurements import chip_for_device

    return chip_for_device(device) == chip.name


def measured_points(chip: Chip, directory: str | Path | None = None) -> tuple[list[MeasuredPoint], list[str]]:
    """Measured kernels on `chip` from every `*.csv` under `directory` (default hwmodels/measured/).

    Returns (points, notes); a file that is not a valid measurement file becomes a note, not an error.
    Rows without FLOPs or bytes cannot be placed and are left out.
    """
    root = Path(directory) if directory is not None else default_measured_dir()
    if not root.is_dir():
        return [], []
    from accelsim import measurements

    points: list[MeasuredPoint] = []
    notes: list[str] = []
    for path in sorted(root.rglob("*.csv")):
        try:
            rows = measurements.read(path)
        except UserError as exc:
            notes.append(f"skipped measurements: {exc}")
            continue
        for row in rows:
            if row["flops"] > 0 and row["bytes"] > 0 and device_matches(chip, row["device"]):
                points.append(MeasuredPoint(row["name"], row["op"], row["dtype"], row["device"],
                                            row["flops"] / row["bytes"], row["flops"] / row["median_s"],
                                            path.name))
    return points, notes
