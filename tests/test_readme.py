"""The README's tour runs as written: every `accelsim ...` command in its bash blocks is extracted
and run (in-process, in a scratch directory) and must exit 0 with output.

Run as written, except (the cheap variant of the same command, and why):
- `accelsim measure --device cpu --out cpu.csv` runs with `--quick`: the default grid takes 20+
  minutes on a 2-core machine (the README says so); the quick grid times the same operators.
- `accelsim dashboard` starts, builds the app and reaches the point of serving, with the HTTP
  server replaced by one that returns at once (a test cannot wait on `serve_forever`).
The commands that need a file made by an earlier one (calibrate reads measure's CSV, predict
--calibration reads calibrate's profile) run in README order in one test.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from accelsim.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CHEAP = {"measure --device cpu": ["--quick"]}  # extra flags for the commands named in the docstring
SLOW = ("study ", "simulate ", "measure ", "calibrate ", "--calibration ", "tune ", "dashboard",
        "import aiconfigurator --system", "calibrate-gpu ", "validate ")  # import -> calibrate-gpu -> validate


def readme_commands() -> list[list[str]]:
    """argv of every `accelsim` command in the README's bash blocks (continuations joined, comments
    dropped); the main command's `pip install ... &&` prefix is skipped."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words and words[0] == "accelsim":
                    out.append(words[1:])
    return out


COMMANDS = readme_commands()


def _id(argv: list[str]) -> str:
    return " ".join(argv)[:60]


def _run(argv: list[str], capsys) -> str:
    extra = next((flags for key, flags in CHEAP.items() if key in " ".join(argv)), [])
    code = main([*argv, *extra])
    out, err = capsys.readouterr()
    assert code == 0, f"accelsim {' '.join(argv)} exited {code}: {err[-500:]}"
    assert out.strip() or err.strip(), f"accelsim {' '.join(argv)} printed nothing"
    return out


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """A scratch working directory in which the README's relative paths resolve (the shipped tune
    replay file lives under accelsim/)."""
    (tmp_path / "accelsim").symlink_to(ROOT / "accelsim")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ACCELSIM_TUNE_DB", str(tmp_path / "tune.sqlite"))
    return tmp_path


def test_the_readme_has_a_tour():
    names = {argv[0] for argv in COMMANDS}
    assert {"hw", "workloads", "predict", "compare", "plan", "study", "simulate", "simulate-training", "measure",
            "calibrate", "tune", "dashboard"} <= names
    assert all(not any(w in ("...", "REPLAY.csv") for w in argv) for argv in COMMANDS)  # no placeholders


@pytest.mark.parametrize("argv", [a for a in COMMANDS if not any(s in " ".join(a) + " " for s in SLOW)], ids=_id)
def test_quick_commands(argv, scratch, capsys):
    _run(argv, capsys)


@pytest.mark.slow
def test_slow_commands_in_order(scratch, capsys, monkeypatch):
    """study, simulate, measure -> calibrate -> predict --calibration, tune, dashboard."""
    pytest.importorskip("torch")
    import werkzeug.serving

    from accelsim.dashboard import cli as dashboard_cli

    class _Server:
        server_port = 8050

        def serve_forever(self):
            return None

        def server_close(self):
            return None

    monkeypatch.setattr(werkzeug.serving, "make_server", lambda *a, **k: _Server())
    monkeypatch.setattr(dashboard_cli, "_check_bindable", lambda host, port: None)
    slow = [a for a in COMMANDS if any(s in " ".join(a) + " " for s in SLOW)]
    assert len(slow) >= 7
    for argv in slow:
        out = _run(argv, capsys)
        if argv[0] == "dashboard":
            assert "http://127.0.0.1:8050/" in out
    assert (scratch / "cpu-profile.json").exists() and (scratch / "configs").is_dir()
