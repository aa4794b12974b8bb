"""(shape x batch size) jobs: inline, local processes and Ray local mode give the same answers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from accelsim.tune.core import Budget
from accelsim.tune.jobs import DeviceSpec, Job, run_jobs
from accelsim.tune.space import Problem
from accelsim.tune.store import ResultStore

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "accelsim" / "tune" / "data" / "synthetic-h100_mixtral-tp2.csv"


def _jobs(db: Path) -> list[Job]:
    spec = DeviceSpec("replay", str(DATA))
    return [Job(Problem(8, 4096, 7168, 2, "bf16", m), "model", spec, Budget(evaluations=20), 0, str(db))
            for m in (1, 128, 1024)]


@pytest.fixture(scope="module")
def inline(tmp_path_factory) -> list[dict]:
    return run_jobs(_jobs(tmp_path_factory.mktemp("inline") / "t.sqlite"))


def _key(summaries: list[dict]) -> list[tuple]:
    return [(s["batch_size"], tuple(s["best_config"].values()), s["best_time_s"]) for s in summaries]


def test_local_processes_match_inline_and_share_one_store(tmp_path, inline) -> None:
    db = tmp_path / "procs.sqlite"
    done: list[int] = []
    out = run_jobs(_jobs(db), workers=2, on_job=lambda i, s: done.append(i))
    assert _key(out) == _key(inline) and sorted(done) == [0, 1, 2]
    with ResultStore(db) as store:
        assert store.integrity_ok() and store.count() == 3 * 20


def test_ray_local_mode_matches_inline(tmp_path, inline) -> None:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        db = tmp_path / "ray.sqlite"
        out = run_jobs(_jobs(db), ray_address="local")
        assert _key(out) == _key(inline)
        with ResultStore(db) as store:
            assert store.count() == 3 * 20
    finally:
        ray.shutdown()


def test_gpu_script_cpu_smoke(tmp_path) -> None:
    out = tmp_path / "gpu"
    script = REPO / "benchmarks" / "gpu_tune_moe.py"
    # as on the GPU box: no rich, optuna, simpy or plotly
    code = ("import runpy, sys\n"
            "for m in ('rich', 'optuna', 'simpy', 'plotly', 'dash'): sys.modules[m] = None\n"
            f"sys.argv = ['gpu_tune_moe.py', '--cpu-smoke', '--out-dir', {str(out)!r}]\n"
            f"runpy.run_path({str(script)!r}, run_name='__main__')\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    from accelsim.measurements import read

    rows = read(out / "measurements.csv")
    assert len(rows) == 4 and {r["device_kind"] for r in rows} == {"cpu"}
    assert {r["tool"] for r in rows} == {"gpu_tune_moe --cpu-smoke"}
    for strategy in ("model", "exhaustive"):
        assert (out / "configs" / strategy / "E=4,N=64,device_name=cpu-interpreter.json").is_file()


def test_strategy_benchmark_runs(tmp_path) -> None:
    csv_path = tmp_path / "bench.csv"
    run = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_tune_strategies.py"), "--quick",
                          "--strategies", "exhaustive,model", "--out", str(csv_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "SYNTHETIC" in run.stdout and csv_path.is_file()
