"""SQLite results store: round trip, device separation, resume after SIGKILL, concurrent writers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tune_helpers import MIXTRAL_M1, Counting

from accelsim.errors import UserError
from accelsim.tune.core import Measurement, tune
from accelsim.tune.space import CONFIG_KEYS, DEVICE_LIMITS, Problem, as_tuple, prune, vllm_space
from accelsim.tune.store import ResultStore
from accelsim.tune.strategies import Exhaustive
from accelsim.tune.synthetic import SyntheticDevice

FP_A = {"device": "gpu-a", "kernel_hash": "k1"}
FP_B = {"device": "gpu-a", "kernel_hash": "k2"}  # same GPU, edited kernel: a different device
CFG = dict(zip(CONFIG_KEYS, (16, 64, 128, 1, 4, 3)))
REPO = Path(__file__).resolve().parents[2]


def test_round_trip_first_write_wins_and_fingerprints_separate(tmp_path) -> None:
    with ResultStore(tmp_path / "r.sqlite", FP_A) as store:
        store.put(MIXTRAL_M1, CFG, Measurement("ok", 2e-4, 1.9e-4, 2.1e-4, 20, 1e-3, "cuda_graph"))
        store.put(MIXTRAL_M1, CFG, Measurement("ok", 9e-4))  # a later write of the same key is ignored
        got = store.get(MIXTRAL_M1, CFG)
        assert got == Measurement("ok", 2e-4, 1.9e-4, 2.1e-4, 20, 1e-3, "cuda_graph")
        assert store.get(MIXTRAL_M1.with_m(2), CFG) is None
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.bind(FP_B)
        assert store.get(MIXTRAL_M1, CFG) is None and store.best(MIXTRAL_M1) is None
    with ResultStore(tmp_path / "r.sqlite", FP_A) as again:  # persisted
        assert again.best(MIXTRAL_M1)[0] == CFG


def test_not_a_database_is_a_user_error(tmp_path) -> None:
    bad = tmp_path / "junk.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="not a tuning database"):
        ResultStore(bad, FP_A)


_SLOW_RUN = textwrap.dedent("""
    import sys, time
    from accelsim.tune.core import tune
    from accelsim.tune.space import DEVICE_LIMITS, Problem, prune, vllm_space
    from accelsim.tune.store import ResultStore
    from accelsim.tune.strategies import Exhaustive
    from accelsim.tune.synthetic import SyntheticDevice

    class Slow(SyntheticDevice):
        def measure(self, problem, config):
            time.sleep(0.02)
            return super().measure(problem, config)

    problem = Problem(8, 4096, 7168, 2, "bf16", 1)
    candidates, _ = prune(vllm_space(), problem, DEVICE_LIMITS["h100-sxm"])
    device = Slow()
    with ResultStore(sys.argv[1], device.fingerprint) as store:
        tune(problem, Exhaustive(candidates), device, sink=store)
    print("finished")
""")


def test_killed_run_resumes_without_remeasuring(tmp_path) -> None:
    db = tmp_path / "kill.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_RUN, str(db)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=5) as peek:
                        stored = peek.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                except sqlite3.OperationalError:  # schema not created yet
                    continue
            if stored >= 30:
                break
        assert proc.poll() is None, f"run ended before it could be killed: {proc.communicate()}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    candidates, _ = prune(vllm_space(), MIXTRAL_M1, DEVICE_LIMITS["h100-sxm"])
    device = Counting(SyntheticDevice())
    with ResultStore(db, device.fingerprint) as store:
        assert store.integrity_ok()
        before = store.count()
        assert 30 <= before < len(candidates)
        resumed = tune(MIXTRAL_M1, Exhaustive(candidates), device, sink=store)
        assert store.count() == len(candidates)
    # only what the killed run had not stored was measured, and the answer is the uninterrupted one
    assert len(device.calls) == len(candidates) - before == resumed.measured
    assert resumed.from_store == before
    fresh = tune(MIXTRAL_M1, Exhaustive(candidates), SyntheticDevice())
    assert resumed.best_config == fresh.best_config and resumed.best_time_s == fresh.best_time_s


_WRITER = textwrap.dedent("""
    import os, sys, time
    from accelsim.tune.core import Measurement
    from accelsim.tune.space import Problem, vllm_space
    from accelsim.tune.store import ResultStore

    db, worker, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    configs = vllm_space()
    with ResultStore(db, {"device": "shared-gpu"}) as store:
        while not os.path.exists(go):  # start together, so the writes really interleave
            time.sleep(0.005)
        start = time.time()
        for i in range(n):
            # half the keys are shared by every writer, half are this writer's own
            m = 1 if i % 2 == 0 else 100 + worker
            store.put(Problem(8, 4096, 7168, 2, "bf16", m), configs[i], Measurement("ok", 1e-4 * (worker + 1)))
            time.sleep(0.001)
        print(start, time.time())
""")


def test_concurrent_writers_do_not_corrupt_the_store(tmp_path) -> None:
    db, go, writers, n = tmp_path / "shared.sqlite", tmp_path / "go", 4, 200
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(w), str(n), str(go)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for w in range(writers)]
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    spans = [tuple(map(float, out.split())) for out, _ in outs]
    assert max(s for s, _ in spans) < min(e for _, e in spans), f"writers did not overlap: {spans}"
    with ResultStore(db, {"device": "shared-gpu"}) as store:
        assert store.integrity_ok()
        shared = n // 2  # even i: the same (M=1, config) keys in every writer
        assert store.count() == shared + writers * (n - shared)
        results = store.results(Problem(8, 4096, 7168, 2, "bf16", 1))
        assert len(results) == shared
        assert {m.median_s for m in results.values()} <= {1e-4 * (w + 1) for w in range(writers)}
        assert len(store.results(Problem(8, 4096, 7168, 2, "bf16", 102))) == n - shared
    assert as_tuple(vllm_space()[0]) in results
