"""Run one study: load its file, call its runner, write the report atomically."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelsim.errors import UserError
from accelsim.report import Report
from accelsim.study.spec import StudySpec, accepts_executor, load_study
from accelsim.study.sweep import Executor, make_executor


@dataclass(frozen=True)
class StudyResult:
    study: str
    title: str
    report: Path
    tables: list[Path]
    params: dict[str, Any]
    reduced: bool
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"study": self.study, "title": self.title, "report": str(self.report),
                "tables": [str(p) for p in self.tables], "params": self.params, "reduced": self.reduced,
                "wall_s": self.wall_s}


def run_study(name_or_path: str | StudySpec, out_dir: str | os.PathLike[str], *, reduced: bool = False,
              ray: str | None = None, overrides: dict[str, Any] | None = None,
              executor: Executor | None = None) -> StudyResult:
    """Run a study and write `out_dir/index.html` plus its CSVs.

    `ray`: None runs locally; "local" starts Ray on this machine; anything else is a Ray address.
    Raises UserError for a bad study file, bad parameters or a runner that returns no Report.
    """
    spec = name_or_path if isinstance(name_or_path, StudySpec) else load_study(name_or_path)
    params = spec.resolved_params(reduced, overrides)
    func = spec.load_runner()
    t0 = time.perf_counter()
    ex = executor or make_executor(ray)
    try:
        kwargs: dict[str, Any] = {"reduced": reduced}
        if accepts_executor(func):
            kwargs["executor"] = ex
        report = func(dict(params), **kwargs)
    finally:
        if executor is None:
            ex.close()
    if not isinstance(report, Report):
        raise UserError(f"{spec.path.name}: runner '{spec.runner}' returned {type(report).__name__}, "
                        f"expected accelsim.report.Report")
    if spec.description:  # the study file's own words open the report
        report.add_text(spec.description)
        report.blocks.insert(0, report.blocks.pop())
    index = report.write(out_dir)
    wall = time.perf_counter() - t0
    tables = [index.parent / f"{name}.csv" for name in report.tables]
    return StudyResult(spec.name, report.title, index, tables, params, reduced, wall)
