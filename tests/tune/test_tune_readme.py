"""The README's `accelsim tune` examples run as written against the shipped replay data, and the dry
run prints a plan whose order and predictions are the model strategy's."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from accelsim.cli import main

REPO = Path(__file__).resolve().parents[2]


def _readme_tune_commands() -> list[list[str]]:
    """Every `accelsim tune ...` command of README.md (continuation lines joined, comments cut)."""
    lines = (REPO / "README.md").read_text().splitlines()
    out, buf = [], ""
    for line in lines:
        text = line.split("  #")[0].rstrip()
        if buf or text.startswith("accelsim tune "):
            buf += " " + text.rstrip("\\").strip()
            if not text.endswith("\\"):
                out.append(shlex.split(buf, comments=True)[1:])
                buf = ""
    return out


def test_readme_tune_replay_example_runs_as_written(tmp_path, monkeypatch, capsys) -> None:
    commands = [c for c in _readme_tune_commands() if "--replay" in c]
    assert commands, "README has no tune example with --replay"
    (tmp_path / "accelsim").symlink_to(REPO / "accelsim")  # relative paths resolve as in a checkout
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACCELSIM_TUNE_DB", str(tmp_path / "tune.sqlite"))
    for argv in commands:
        assert main([*argv, "--json"]) == 0, argv
        out = json.loads(capsys.readouterr().out)
        assert out["batch_sizes"] and all(s["best_config"] for s in out["batch_sizes"])


def test_readme_dry_run_example_prints_the_plan(capsys) -> None:
    commands = [c for c in _readme_tune_commands() if "--dry-run" in c]
    assert commands, "README has no tune --dry-run example"
    for argv in commands:
        assert main(argv) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["pruned_size"] <= out["space_size"] and out["plan"]
        assert all(step["predicted_s"] > 0 and len(step["config"]) == 6 for step in out["plan"])
