"""Every benchmark script still imports and parses its arguments: the scripts are run by hand (or
on the GPU machine), so nothing else would notice an API they use being renamed."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 7


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_help(script):
    p = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "usage" in p.stdout.lower()
