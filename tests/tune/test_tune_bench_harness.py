"""The GPU harness's control flow, exercised on CPU with its CUDA parts replaced: failures are
recorded statuses, a failed CUDA-graph capture falls back to do_bench, a sticky CUDA error stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from accelsim.tune.bench import CudaContextLost, GpuDevice
from accelsim.tune.gate import GateResult
from accelsim.tune.space import CONFIG_KEYS, Problem

PROBLEM = Problem(4, 64, 64, 2, "bf16", 8)
CFG = dict(zip(CONFIG_KEYS, (16, 64, 64, 1, 4, 3)))
REPO = Path(__file__).resolve().parents[2]


class OutOfResources(Exception):
    pass


def _device(graph=None, warmup=None, gate_ok: bool = True) -> GpuDevice:
    dev = object.__new__(GpuDevice)  # no CUDA here: wire the pieces the control flow touches
    dev.torch = SimpleNamespace(cuda=SimpleNamespace(synchronize=lambda d: None))
    dev.device, dev.timer = "cuda:0", "cuda_graph"
    dev.gate = SimpleNamespace(check=lambda p, c: GateResult(gate_ok, 1e-3 if gate_ok else 0.5, 2e-2,
                                                               "ok" if gate_ok else "wrong"))
    dev._problem_inputs = lambda p: ({}, [None])
    dev._call = warmup or (lambda *a: None)
    dev._time_graph = graph or (lambda *a: (2e-5, 1.9e-5, 2.2e-5, 20))
    dev._time_do_bench = lambda *a: (3e-5, 2.9e-5, 3.1e-5, 0)
    return dev


def _raise(exc: Exception):
    def f(*a):
        raise exc
    return f


def test_graph_timing_and_gate_rejection() -> None:
    m = _device().measure(PROBLEM, CFG)
    assert (m.status, m.median_s, m.reps, m.rel_err, m.message) == ("ok", 2e-5, 20, 1e-3, "cuda_graph")
    m = _device(gate_ok=False).measure(PROBLEM, CFG)
    assert m.status == "wrong" and m.rel_err == 0.5 and not m.ok


def test_failed_capture_falls_back_to_do_bench() -> None:
    m = _device(graph=_raise(RuntimeError("operation not permitted when stream is capturing"))).measure(PROBLEM, CFG)
    assert m.status == "ok" and m.median_s == 3e-5 and m.message.startswith("do_bench (CUDA-graph capture failed")


def test_compile_and_resource_failures_are_recorded() -> None:
    m = _device(warmup=_raise(OutOfResources("out of resource: shared memory"))).measure(PROBLEM, CFG)
    assert m.status == "out_of_resources" and "shared memory" in m.message
    m = _device(warmup=_raise(ValueError("bad launch"))).measure(PROBLEM, CFG)
    assert m.status == "error"


def test_sticky_cuda_error_stops_the_run() -> None:
    sticky = RuntimeError("CUDA error: an illegal memory access was encountered")
    with pytest.raises(CudaContextLost):
        _device(graph=_raise(sticky)).measure(PROBLEM, CFG)
    with pytest.raises(CudaContextLost):
        _device(warmup=_raise(sticky)).measure(PROBLEM, CFG)


def test_gpu_box_modules_import_without_rich_optuna_simpy_plotly() -> None:
    code = ("import sys\n"
            "for m in ('rich', 'optuna', 'simpy', 'plotly', 'dash'): sys.modules[m] = None\n"
            "import accelsim.tune.bench, accelsim.tune.jobs, accelsim.tune.store, accelsim.tune.replay\n"
            "import accelsim.tune.export, accelsim.tune.strategies, accelsim.tune.costmodel\n"
            "print('ok')")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_weights_are_drawn_once_per_shape_and_shared_with_the_gate() -> None:
    import torch

    from accelsim.tune.gate import Gate

    dev = object.__new__(GpuDevice)
    dev.torch, dev.device, dev.seed, dev.routing_pool = torch, torch.device("cpu"), 0, 3
    dev._inputs, dev._weights_shape, dev._shape_weights = {}, None, None
    dev.gate = Gate("cpu", weights=dev._weights)
    a, pool_a = dev._problem_inputs(PROBLEM)
    b, _ = dev._problem_inputs(PROBLEM.with_m(64))
    assert a["w1"] is b["w1"] and a["hidden_states"].shape == (8, 64) and b["hidden_states"].shape == (64, 64)
    assert len(pool_a) == 3 and pool_a[0].shape == (8, 4) and not torch.equal(pool_a[0], pool_a[1])
    gate_inputs, _ = dev.gate._reference(PROBLEM.with_m(64))
    assert gate_inputs["w1"] is b["w1"]  # the gate reuses the timing weights...
    assert not torch.equal(gate_inputs["hidden_states"], b["hidden_states"])  # ...with its own x
    other, _ = dev._problem_inputs(Problem(8, 64, 64, 2, "bf16", 8))
    assert other["w1"].shape == (8, 128, 64) and dev.gate._cache == {}  # new shape: gate's hold dropped
