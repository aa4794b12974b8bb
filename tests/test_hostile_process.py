"""What only a real process shows: stdout closed early (`accelsim ... | head`) and an interrupt.
Both end quietly: no traceback, nothing left half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def test_stdout_closed_early_is_quiet() -> None:
    """The reader of stdout is gone before accelsim writes: exit 141 (as SIGPIPE would), empty stderr."""
    r, w = os.pipe()
    os.close(r)  # nobody will read
    try:
        p = subprocess.run([sys.executable, "-m", "accelsim", "workloads", "list", "--json"], stdout=w,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(w)
    assert p.returncode == 141 and p.stderr == ""


def test_piped_to_head_prints_no_traceback() -> None:
    p = subprocess.run(f"{sys.executable} -m accelsim hw list | head -1", shell=True, capture_output=True,
                       text=True, timeout=120)
    assert p.stdout.count("\n") == 1 and "Traceback" not in p.stderr and "Error" not in p.stderr


@pytest.mark.slow
def test_interrupt_leaves_no_partial_output(tmp_path: Path) -> None:
    """Ctrl-C during a simulation that writes --out: exit 130, one line, and no output file."""
    out = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "accelsim", "simulate", "--hw", "h100-sxm", "--model", "llama3-8b",
                          "--chips", "1", "--arrival-rate", "50", "--duration", "24h", "--out", str(out), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(4)  # imports done, simulating
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.strip() == "accelsim: interrupted"
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_ascii_terminal_gets_escapes_not_a_traceback(tmp_path: Path) -> None:
    """A chip named with non-ASCII letters, shown on a terminal whose encoding is ASCII."""
    src = (Path(__file__).parents[1] / "hwmodels" / "mtia-450.toml").read_text(encoding="utf-8")
    chip = tmp_path / "mtia-450.toml"
    chip.write_text(src.replace('display_name = "Meta MTIA 450"', 'display_name = "Méta MTIA ✓"'), encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "accelsim", "hw", "show", str(chip)], capture_output=True,
                       env=dict(os.environ, PYTHONIOENCODING="ascii"), timeout=120)
    assert p.returncode == 0 and p.stderr == b"" and p.stdout.startswith(b"M\\xe9ta MTIA \\u2713")
