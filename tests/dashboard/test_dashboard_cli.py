"""`accelsim dashboard`: light registration, bad ports as one-line errors, and a real server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from accelsim.cli import main


def test_registering_the_command_imports_neither_dash_nor_plotly():
    code = ("import sys, accelsim.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('dash', 'plotly', 'flask') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_bad_or_busy_port_is_exit_2_with_one_line(capsys):
    assert main(["dashboard", "--port", "0"]) == 2
    assert "--port must be from 1 to 65535" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot serve on 127.0.0.1:{port}" in err


def test_serves_the_app_on_localhost_by_default():
    pytest.importorskip("dash")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "accelsim", "dashboard", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                time.sleep(0.3)
        assert "<title>accelsim what-if</title>" in body
        layout = urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=10).read().decode()
        for control in ("mem_bw", "flops", "tdp", "capacity", "site_power_mw", "pue", "roofline", "generations"):
            assert f'"{control}"' in layout
    finally:
        proc.terminate()
        proc.wait(timeout=10)
