"""Layers point one way (STYLE.md #13): catalog < core < engines < outputs < CLI. A module imports
(at module level or inside a function) only modules of its own layer or lower ones. A new module
must be placed in a layer below."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("catalog", ("accelsim.spec", "accelsim.errors", "accelsim.io", "accelsim.validate", "accelsim.data")),
    ("core", ("accelsim.ops", "accelsim.graph", "accelsim.perf", "accelsim.memory", "accelsim.power",
              "accelsim.predict", "accelsim.search", "accelsim.modes", "accelsim.ranking", "accelsim.gather",
              "accelsim.measurements", "accelsim.stacks", "accelsim.disagg")),
    # efficiency.py picks the efficiency model a command asks for, calibration profiles included
    ("engines", ("accelsim.serve", "accelsim.plan", "accelsim.calibrate", "accelsim.tune", "accelsim.efficiency",
                 "accelsim.gpudata")),
    ("outputs", ("accelsim.study", "accelsim.report", "accelsim.dashboard", "accelsim.pareto")),
    ("cli", ("accelsim.commands", "accelsim.cli", "accelsim.args", "accelsim.mode_args", "accelsim.__main__")),
]


def layer(module: str) -> int | None:
    """Index into LAYERS; `*.cli` / `*_cli` modules are CLI whatever their package."""
    if module.endswith((".cli", "_cli")):
        return len(LAYERS) - 1
    hits = [(len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
            if module == p or module.startswith(p + ".")]
    return max(hits)[1] if hits else None


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module, [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []


def test_imports_point_down():
    bad, unplaced = [], []
    for path in sorted((ROOT / "accelsim").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if module == "accelsim":
            continue
        mine = layer(module)
        if mine is None:
            unplaced.append(module)
            continue
        for line, target, names in _imports(path):
            # `from accelsim import x` names module x; take the most specific layer that applies
            levels = [lv for lv in (layer(n) for n in [target, *names]) if lv is not None] if target.startswith(
                "accelsim") else []
            if levels and max(levels) > mine:
                bad.append(f"{module} ({LAYERS[mine][0]}) line {line} imports {target} ({LAYERS[max(levels)][0]})")
    assert not unplaced, f"place these modules in a layer in tests/test_layers.py: {unplaced}"
    assert not bad, "\n".join(bad)


def test_the_check_sees_an_upward_import(tmp_path):
    """Positive control: a core module importing the planner inside a function is caught."""
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from accelsim.spec.deployment import value\n"
                 "    from accelsim.plan.planner import plan\n")
    levels = [layer(t) for _, t, _ in _imports(f)]
    assert levels == [0, 2] and max(levels) > layer("accelsim.power")
