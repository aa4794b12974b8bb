"""Replay device: a recorded measurements CSV stands in for a GPU (Kernel Tuner's simulation mode).

Rows with op "fused_moe" are indexed by (E, H, I, top_k, dtype, M, config); ``measure`` returns the
recorded median and spread instantly. A config without a row (it failed, or was never recorded)
comes back with status "not_recorded", never as a time. The fingerprint names the recorded device
and tool plus a hash of the file, so replayed results never mix with live ones in the store.
Recorded rows went through the correctness gate when they were measured; a replay does not re-run it.
Pure Python + accelsim.measurements: importable anywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from accelsim.errors import UserError
from accelsim.measurements import read
from accelsim.tune.core import Measurement
from accelsim.tune.fingerprint import file_hash
from accelsim.tune.space import Config, ConfigTuple, Problem, as_tuple

_ShapeKey = tuple[int, int, int, int, str]


def _shape_key(shape: Mapping[str, Any], dtype: str) -> _ShapeKey:
    return int(shape["E"]), int(shape["H"]), int(shape["I"]), int(shape["top_k"]), str(dtype)


class ReplayDevice:
    """Serve recorded fused-MoE timings. ``path``: a measurements CSV; ``rows``: rows in memory
    instead (as `accelsim.measurements.read` returns them, or as `row()` builds them). Raises UserError when the file
    is missing, malformed or holds no fused_moe rows."""

    timed = True

    def __init__(self, path: str | os.PathLike[str] | None = None,
                 rows: Iterable[Mapping[str, Any]] | None = None) -> None:
        if (path is None) == (rows is None):
            raise ValueError("ReplayDevice needs exactly one of path or rows")
        source = f"replay file '{path}'" if path is not None else "replay rows"
        rows = read(path) if path is not None else list(rows)  # type: ignore[arg-type]
        self._table: dict[_ShapeKey, dict[int, dict[ConfigTuple, Measurement]]] = {}
        first: Mapping[str, Any] | None = None
        for r in rows:
            if r.get("op") != "fused_moe":
                continue
            try:
                shape = json.loads(r["shape"]) if isinstance(r["shape"], str) else r["shape"]
                config = json.loads(r["config"]) if isinstance(r["config"], str) else r["config"]
                key = _shape_key(shape, r["dtype"])
                m, cfg = int(shape["M"]), as_tuple(config)
            except (KeyError, TypeError, ValueError, UserError) as exc:
                raise UserError(f"{source}: fused_moe row needs shape {{E,H,I,top_k,M}} and a config ({exc})") from None
            first = first or r
            recorded = self._table.setdefault(key, {}).setdefault(m, {})
            if cfg in recorded:  # two timings of one config: which one would the tuner see?
                raise UserError(f"{source}: two rows for E,H,I,top_k,dtype={key}, M={m}, config {config}")
            recorded[cfg] = Measurement(
                "ok", float(r["median_s"]), float(r["p20_s"] or r["median_s"]),
                float(r["p80_s"] or r["median_s"]), int(r.get("reps") or 0))
        if first is None:
            raise UserError(f"{source} has no rows with op=fused_moe")
        self.recorded_device = str(first.get("device", ""))
        self.tool = str(first.get("tool", ""))
        self.fingerprint = {
            "device": self.recorded_device,
            "compute_capability": str(first.get("compute_capability", "")),
            "driver": str(first.get("driver", "")),
            "torch": str(first.get("torch_version", "")),
            "triton": str(first.get("triton_version", "")),
            "tool": self.tool,
            "replay": file_hash(path) if path is not None else "rows",
        }
        self.synthetic = self.tool == "synthetic-replay" or str(first.get("device_kind")) == "synthetic"

    def shapes(self) -> list[_ShapeKey]:
        return sorted(self._table)

    def batch_sizes(self, problem: Problem) -> list[int]:
        return sorted(self._table.get(self._key(problem), {}))

    def configs(self, problem: Problem) -> dict[ConfigTuple, Measurement]:
        """Every recorded config of this problem (shape and batch size)."""
        return dict(self._table.get(self._key(problem), {}).get(problem.m, {}))

    @staticmethod
    def _key(problem: Problem) -> _ShapeKey:
        return problem.experts, problem.hidden, problem.inter, problem.top_k, problem.dtype

    def check(self, problem: Problem, batch_sizes: Iterable[int]) -> None:
        """UserError (one line) if the recording lacks this shape or any of these batch sizes."""
        table = self._table.get(self._key(problem))
        if table is None:
            have = "; ".join(f"E={e},H={h},I={i},top_k={k},dtype={d}" for e, h, i, k, d in self.shapes())
            raise UserError(f"replay has no rows for E={problem.experts},H={problem.hidden},I={problem.inter},"
                            f"top_k={problem.top_k},dtype={problem.dtype}; it holds: {have}")
        missing = sorted(set(batch_sizes) - set(table))
        if missing:
            raise UserError(f"replay has no rows for batch sizes {missing}; recorded: {sorted(table)}")

    def measure(self, problem: Problem, config: Config) -> Measurement:
        hit = self._table.get(self._key(problem), {}).get(problem.m, {}).get(as_tuple(config))
        if hit is None:
            return Measurement("not_recorded", message="no row in the replay file (failed or not measured)")
        return hit


def load(path: str | os.PathLike[str]) -> ReplayDevice:
    if not Path(path).is_file():
        raise UserError(f"--replay file '{path}' does not exist")
    return ReplayDevice(path)
