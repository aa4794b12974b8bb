"""Study files: a title, a runner, parameters, and overrides for a reduced (CI-sized) run.

    title = "MTIA roadmap vs H100 and B200"
    description = "..."                       # optional, shown at the top of the report
    runner = "accelsim.study.roadmap:run"     # module:function
    [params]                                  # optional: passed to the runner as a dict
    chips = ["mtia-400", "h100-sxm"]
    [reduced]                                 # optional: overrides of [params] keys for --reduced
    chips = ["mtia-400"]

The runner is called as `function(params: dict, *, reduced: bool) -> Report`; a runner that also
accepts a keyword `executor` gets the sweep executor (local or Ray, `accelsim.study.sweep`).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelsim.errors import UserError
from accelsim.spec import Reader, read, resolve


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: Path
    title: str
    runner: str
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    reduced: dict[str, Any] = field(default_factory=dict)

    def resolved_params(self, reduced: bool, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """[params], then [reduced] when asked, then command-line overrides (which must name known keys)."""
        out = dict(self.params)
        if reduced:
            out.update(self.reduced)
        for key, value in (overrides or {}).items():
            if key not in self.params:
                known = ", ".join(sorted(self.params)) or "none"
                raise UserError(f"--set {key}: study '{self.name}' has no parameter '{key}' (known: {known})")
            out[key] = value
        return out

    def load_runner(self) -> Callable[..., Any]:
        """Import `module:function`; raises UserError naming the file when it cannot."""
        module_name, sep, func_name = self.runner.partition(":")
        where = f"{self.path.name}: key 'runner'"
        if not sep or not module_name or not func_name:
            raise UserError(f"{where} must be 'package.module:function', got '{self.runner}'")
        # A study file names code; it must not make us import (run) code that was not already part of
        # accelsim or loaded by the program that calls the runner (a library user's own runner).
        if not (module_name == "accelsim" or module_name.startswith("accelsim.")) and module_name not in sys.modules:
            raise UserError(f"{where}: module '{module_name}' is not part of accelsim; a study file may only "
                            "name a runner in accelsim (or one its caller has loaded)")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise UserError(f"{where}: cannot import module '{module_name}' ({exc})") from None
        func = getattr(module, func_name, None)
        if not callable(func):
            raise UserError(f"{where}: module '{module_name}' has no function '{func_name}'")
        if not is_study_runner(func):
            raise UserError(f"{where}: '{self.runner}' is not a study runner (expected a function "
                            "`run(params, *, reduced)` returning an accelsim.report.Report)")
        return func


def load_study(name_or_path: str) -> StudySpec:
    """A shipped study by name (`mtia_roadmap`) or any study TOML by path."""
    path = resolve("studies", "study", name_or_path)
    r = Reader(path.name, read(path))
    title = r.str("title")
    runner = r.str("runner")
    description = r.str("description", "")
    params = r.raw("params", {})
    reduced = r.raw("reduced", {})
    r.done()
    for key, table in (("params", params), ("reduced", reduced)):
        if not isinstance(table, dict):
            raise UserError(f"{path.name}: key '{key}' must be a table")
    unknown = sorted(set(reduced) - set(params))
    if unknown:
        raise UserError(f"{path.name}: key 'reduced.{unknown[0]}' overrides no key of [params]")
    return StudySpec(path.stem, path, title, runner, description, params, reduced)


def parse_override(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` with VALUE in TOML syntax (`n=3`, `chips=["mtia-450"]`, `mode="x"`); a bare word
    that is not valid TOML is taken as a string."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(f"--set '{text}' must be KEY=VALUE")
    try:
        return key, tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def is_study_runner(func: Callable[..., Any]) -> bool:
    """A Python function with one positional parameter (the params), a keyword-only `reduced`, maybe an
    `executor` (given by `run_study`), and defaults for anything else."""
    if not inspect.isfunction(func):
        return False
    params = list(inspect.signature(func).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    named = {p.name: p for p in params}
    return (len(positional) == 1 and "reduced" in named and named["reduced"].kind is inspect.Parameter.KEYWORD_ONLY
            and all(p.default is not p.empty for p in params[1:] if p.name not in ("reduced", "executor")))


def accepts_executor(func: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return False
    return "executor" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
