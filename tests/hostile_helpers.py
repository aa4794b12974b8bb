"""Run `accelsim` in-process on hostile input and judge the answer against the promise:
exit 2, exactly one line on stderr, no traceback, nothing written, and within a time limit.

Files a case needs are made by `hostile_files(tmp)`; a case names them as `{key}` in its argv.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from accelsim.cli import main

LONG = "n" * 300  # longer than any path component may be
TIME_LIMIT_S = 20


class _Hang(Exception):
    pass


@dataclass
class Verdict:
    code: int | None
    stdout: str
    stderr: str
    problem: str  # "" when the promise held

    @property
    def clean(self) -> bool:
        return not self.problem


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        for name in files + dirnames:
            p = Path(dirpath, name)
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns if p.is_file() else 0)
    return out


def attempt(argv: list[str], root: Path, limit_s: int = TIME_LIMIT_S) -> Verdict:
    """Run `accelsim argv` with cwd=root; judge it. `root` must hold only the hostile files."""
    before = _snapshot(root)
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    problem = ""

    def on_alarm(signum: int, frame: object) -> None:
        raise _Hang

    old_cwd = os.getcwd()
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit_s)
    try:
        os.chdir(root)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except _Hang:
        problem = f"hung (> {limit_s} s)"
    except BaseException as exc:
        problem = f"traceback: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(old_cwd)
    stderr = err.getvalue()
    if not problem:
        lines = stderr.splitlines()
        if code != 2:
            problem = f"exit {code} (accepted)" if code == 0 else f"exit {code}"
        elif "Traceback" in stderr:
            problem = "traceback on stderr"
        elif len(lines) != 1 or not stderr.endswith("\n"):
            problem = f"{len(lines)} lines on stderr: {stderr[:200]!r}"
    after = _snapshot(root)
    if not problem and after != before:
        changed = sorted(set(after.items()) ^ set(before.items()))
        problem = f"wrote {changed[:3]}"
    return Verdict(code, out.getvalue(), stderr, problem)


def hostile_files(root: Path) -> dict[str, str]:
    """Files and paths that hostile cases point at; returns {key: path}."""
    root.mkdir(parents=True, exist_ok=True)
    p: dict[str, Path] = {}

    def put(key: str, name: str, data: bytes | str) -> None:
        path = root / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        p[key] = path

    put("latin1_toml", "latin1.toml", b'name = "caf\xe9"\n')
    put("latin1_csv", "latin1.csv", b"arrival_s,input_len,output_len\n0,1,1\n\xff\xfe,2,2\n")
    put("latin1_json", "latin1.json", b'{"x": "\xff"}')
    put("file", "plain.txt", "just a file\n")
    (root / "adir.toml").mkdir()
    (root / "adir.csv").mkdir()
    p["dir_toml"], p["dir_csv"] = root / "adir.toml", root / "adir.csv"
    (root / "outdir").mkdir()
    (root / "blocked" / "requests.csv").mkdir(parents=True)  # an output file's name taken by a directory
    (root / "blocked" / "index.html").mkdir()
    p["blocked"] = root / "blocked"
    p["dir"] = root / "outdir"
    put("empty", "empty.csv", "")
    put("nan_json", "nan.json", '{"chip": "cpu", "a": NaN}')
    put("trace_trunc", "trunc.csv", "arrival_s,input_len,output_len\n0,100,100\n0.5,1")
    put("trace_neg", "neg.csv", "arrival_s,input_len,output_len\n0,100,100\n-1,100,100\n")
    put("trace_neglen", "neglen.csv", "arrival_s,input_len,output_len\n0,100,-5\n")
    put("trace_inf", "inf.csv", "arrival_s,input_len,output_len\n0,100,100\ninf,100,100\n")
    put("trace_huge", "huge.csv", "arrival_s,input_len,output_len\n0,100000000000000,100\n")
    put("bad_toml", "bad.toml", "name = [\n")
    put("big_field_csv", "bigfield.csv", "arrival_s,input_len,output_len\n" + "1" * 200_000 + ",1,1\n")
    put("deep_toml", "deep.toml", "a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    put("deep_json", "deep.json", "[" * 100_000 + "]" * 100_000)
    put("nan_toml", "nanval.toml", "name = nan\n")
    put("failures_nan", "failnan.toml", "[chip]\nrate_per_chip_hour = nan\nrepair_s = 60\n")
    put("cluster_latin1", "cluster.toml", b"[[llm]]\nhw = \"h\xe9\"\n")
    put("cluster_replicas", "replicas.toml", '[[llm]]\nhw = "h100-sxm"\nmodel = "llama3-8b"\nreplicas = 100000000\n')
    put("cluster_seqs", "seqs.toml", '[[llm]]\nhw = "h100-sxm"\nmodel = "llama3-8b"\nmax_seqs = 100000000000\n')
    put("bad_runner", "runner.toml", 'title = "x"\nrunner = "os:getcwd"\n')
    put("exec_runner", "exec.toml", 'title = "x"\nrunner = "accelsim.cli:main"\n')
    catalog = Path(__file__).parents[1] / "workloads" / "llama3-8b.toml"
    for sub, value in (("huge", "100000000000000000000000"), ("inf", "inf")):
        (root / sub).mkdir()
        text = re.sub(r"(?m)^hidden_size = .*$", f"hidden_size = {value}", catalog.read_text(encoding="utf-8"))
        (root / sub / "llama3-8b.toml").write_text(text, encoding="utf-8")
        p[f"model_{sub}"] = root / sub / "llama3-8b.toml"
    # SQLite files that are not tuner stores: another program's table, and a `results` table of another shape
    for key, name, table, row in (("foreign_db", "foreign.sqlite", "notes (x TEXT)", "('mine')"),
                                  ("foreign_results_db", "foreign_results.sqlite", "results (a INTEGER, b TEXT)",
                                   "(1, 'x')")):
        with sqlite3.connect(root / name) as db:
            db.execute(f"CREATE TABLE {table}")
            db.execute(f"INSERT INTO {table.split()[0]} VALUES {row}")
        db.close()
        p[key] = root / name
    out = {k: str(v) for k, v in p.items()}
    out["under_file"] = str(p["file"] / "out.csv")
    out["under_file_dir"] = str(p["file"] / "sub")
    out["long"] = str(root / LONG)
    out["tmp"] = str(root)
    return out


def measurement_csv(root: Path, name: str, **overrides: str) -> str:
    """A one-row measurement CSV (accelsim.measurements schema) with some values replaced."""
    from accelsim.measurements import FIELDS

    row = {"op": "gemm", "name": "matmul", "dtype": "bf16", "shape": '{"m": 64, "n": 64, "k": 64}',
           "config": "", "flops": "524288", "bytes": "24576", "median_s": "1e-5", "p20_s": "9e-6",
           "p80_s": "1.1e-5", "reps": "5", "device": "cpu:test", "device_kind": "cpu", "compute_capability": "",
           "driver": "", "torch_version": "", "triton_version": "", "git_commit": "", "date_utc": "",
           "tool": "test"} | overrides
    path = root / name
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerow(row)
    return str(path)


def add_fifo(root: Path) -> str:
    """A named pipe posing as a TOML file: a reader would block for ever (made per arena: copytree
    cannot copy one)."""
    path = root / "fifo.toml"
    os.mkfifo(path)
    return str(path)
