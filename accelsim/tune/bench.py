"""GPU timing harness for the fused-MoE kernel: the Device that measures real configs.

Runs on the GPU box (torch, triton, numpy; no rich/optuna/simpy): imports only those, the stdlib
and light accelsim modules (ops/spec/measurements and accelsim.tune's core, space, gate).

For each (problem, config):
  1. correctness gate (gate.Gate) on fresh inputs: a wrong config is recorded, never timed;
  2. one warm-up call (JIT compile; compile/resource failures are recorded, not fatal);
  3. timing of whole fused_moe calls (routing, alignment, both GEMMs, combine), each repetition
     with fresh router logits from a pool of ``routing_pool`` tensors:
       timer="cuda_graph" (default): ``graph_calls`` calls captured in one CUDA graph, replayed
         ``reps`` times, the 256 MB L2-flush buffer zeroed and fresh logits copied in before every
         replay (outside the timed events); per-call time = replay time / graph_calls. Avoids the
         Python launch overhead that would otherwise dominate small batch sizes.
       timer="do_bench": triton.testing.do_bench (clears L2 before every call), quantiles 0.5/0.2/0.8.
Reported: median and 20th/80th percentiles in seconds per call.
"""

from __future__ import annotations

import itertools
import statistics
import subprocess
from typing import Any, Literal

from accelsim.tune.core import Measurement
from accelsim.tune.fingerprint import kernel_source_hash
from accelsim.tune.gate import WEIGHT_KEYS, Gate, classify, make_inputs
from accelsim.tune.space import Config, Problem

Timer = Literal["cuda_graph", "do_bench"]
L2_FLUSH_BYTES = 256 * 1024 * 1024  # as triton.testing.do_bench (kernels_and_tuners.md §6)


class CudaContextLost(RuntimeError):
    """A sticky CUDA error: this process cannot launch anything else; rerun to resume from the store."""


def gpu_fingerprint(device: Any = "cuda") -> dict[str, str]:
    """Device name, compute capability, driver, CUDA runtime, torch/triton versions, kernel hash."""
    import torch
    import triton

    dev = torch.device(device)
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.split("\n")[0].strip()
    except (OSError, subprocess.SubprocessError):
        driver = ""
    return {
        "device": torch.cuda.get_device_name(dev),
        "compute_capability": "{}.{}".format(*torch.cuda.get_device_capability(dev)),
        "driver": driver or "unknown",
        "cuda": str(torch.version.cuda),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "kernel_hash": kernel_source_hash(),
    }


class GpuDevice:
    """Measures configs on one CUDA device (see module doc). Raises CudaContextLost on a sticky CUDA
    error (illegal address, launch failure), after which the process cannot measure anything else:
    the job stops and a rerun resumes from the store. Every other failure is a recorded status."""

    timed = True

    def __init__(self, device: Any = "cuda", *, timer: Timer = "cuda_graph", reps: int = 20,
                 graph_calls: int = 10, routing_pool: int = 8, seed: int = 0, gate: Gate | None = None,
                 kernel: Any = None) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.timer, self.reps, self.graph_calls, self.routing_pool = timer, reps, graph_calls, routing_pool
        self.seed = seed
        self.kernel = kernel
        self.gate = gate if gate is not None else Gate(self.device, seed=seed + 1, kernel=kernel,
                                                        weights=self._weights)
        self.fingerprint = gpu_fingerprint(self.device)
        self._inputs: dict[Problem, tuple[dict[str, Any], list[Any]]] = {}
        self._weights_shape: Problem | None = None
        self._shape_weights: dict[str, Any] | None = None
        self._flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device=self.device)

    def _problem_inputs(self, problem: Problem) -> tuple[dict[str, Any], list[Any]]:
        """Timing inputs: weights drawn once per shape (all batch sizes share them; DeepSeek-V3's are
        22.5 GB in bf16, so only one shape is resident), x and a pool of router logits per M."""
        if problem not in self._inputs:
            torch = self.torch
            shape = problem.with_m(1)
            if self._weights_shape != shape:
                self._inputs, self._shape_weights = {}, None
                self.gate.clear()  # drop the gate's hold on the previous shape's weights first
                weights = make_inputs(shape, self.device, self.seed)
                self._shape_weights = {k: v for k, v in weights.items() if k in WEIGHT_KEYS}
                self._weights_shape = shape
            inputs = make_inputs(problem, self.device, self.seed + problem.m, self._shape_weights)
            gen = torch.Generator(device=self.device).manual_seed(self.seed + 7)
            pool = [torch.randn(problem.m, problem.experts, generator=gen, device=self.device)
                    for _ in range(self.routing_pool)]
            self._inputs = {problem: (inputs, pool)}
        return self._inputs[problem]

    def _weights(self, problem: Problem) -> dict[str, Any]:
        self._problem_inputs(problem)
        return dict(self._shape_weights or {})

    def _call(self, problem: Problem, config: Config, inputs: dict[str, Any], logits: Any) -> Any:
        from kernels.moe import fused_moe

        kernel = self.kernel or fused_moe
        args = {k: v for k, v in inputs.items() if k != "router_logits"}
        return kernel(router_logits=logits, top_k=problem.top_k, renormalize=True, config=dict(config),
                      impl="triton", **args)

    def measure(self, problem: Problem, config: Config) -> Measurement:
        g = self.gate.check(problem, config)
        if not g.ok:
            self._raise_if_sticky(g.message)
            return Measurement(g.status, rel_err=g.rel_err, message=g.message)
        inputs, pool = self._problem_inputs(problem)
        note = self.timer
        try:
            self._call(problem, config, inputs, pool[0])  # warm-up: compile
            self.torch.cuda.synchronize(self.device)
            if self.timer == "cuda_graph":
                try:
                    median, p20, p80, reps = self._time_graph(problem, config, inputs, pool)
                except Exception as exc:  # the eager warm-up ran, so this is about capture, not the config
                    if classify(exc)[0] == "out_of_resources":
                        raise
                    self._raise_if_sticky(str(exc))
                    note = f"do_bench (CUDA-graph capture failed: {classify(exc)[1]})"
                    median, p20, p80, reps = self._time_do_bench(problem, config, inputs, pool)
            else:
                median, p20, p80, reps = self._time_do_bench(problem, config, inputs, pool)
        except CudaContextLost:
            raise
        except Exception as exc:  # recorded, not fatal
            status, message = classify(exc)
            self._raise_if_sticky(message)
            return Measurement(status, rel_err=g.rel_err, message=message)
        return Measurement("ok", median, p20, p80, reps, g.rel_err, note)

    def _time_do_bench(self, problem: Problem, config: Config, inputs: dict[str, Any],
                       pool: list[Any]) -> tuple[float, float, float, int]:
        import triton.testing

        it = itertools.cycle(pool)
        fn = lambda: self._call(problem, config, inputs, next(it))
        med, p20, p80 = triton.testing.do_bench(fn, warmup=25, rep=100, quantiles=[0.5, 0.2, 0.8])
        return med * 1e-3, p20 * 1e-3, p80 * 1e-3, 0  # reps: chosen by do_bench from its 100 ms budget

    def _time_graph(self, problem: Problem, config: Config, inputs: dict[str, Any],
                    pool: list[Any]) -> tuple[float, float, float, int]:
        torch = self.torch
        static_logits = pool[0].clone()
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):  # allocator warm-up off the default stream, as graph capture needs
            self._call(problem, config, inputs, static_logits)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for _ in range(self.graph_calls):
                self._call(problem, config, inputs, static_logits)
        for i in range(3):  # warm replays
            static_logits.copy_(pool[i % len(pool)])
            graph.replay()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        times = []
        for i in range(self.reps):
            static_logits.copy_(pool[i % len(pool)])  # fresh routing for this repetition
            self._flush.zero_()
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) * 1e-3 / self.graph_calls)
        del graph
        q = statistics.quantiles(times, n=10)  # deciles: q[1] = 20th, q[7] = 80th percentile
        return statistics.median(times), q[1], q[7], len(times)

    def _raise_if_sticky(self, message: str) -> None:
        sticky = ("illegal memory access", "unspecified launch failure", "misaligned address", "device-side assert")
        if any(s in message.lower() for s in sticky):
            raise CudaContextLost(f"CUDA context is unusable after: {message}; rerun to resume from the store")
