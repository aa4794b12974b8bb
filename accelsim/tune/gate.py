"""Correctness gate: a candidate config's output must match the PyTorch reference before its time counts.

For each problem the gate draws fresh random inputs (its own seed, never the timing inputs),
computes the reference once (``kernels.moe.fused_moe(..., impl="reference")``), and compares each
candidate's Triton output with it by relative norm error ||out - ref|| / ||ref|| against the
relative bound of the dtype in the kernel's own table (``kernels.moe.reference.TOLERANCES``, which
the kernel tests use too). Non-finite outputs fail. On a CPU the Triton
kernel runs under the interpreter (TRITON_INTERPRET=1 set before triton is imported), which is
slow: use tiny shapes there. Imports torch lazily; otherwise stdlib + accelsim.tune only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from accelsim.tune.core import Measurement, Status
from accelsim.tune.space import Config, Problem

_TORCH_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16", "fp8": "bfloat16", "fp8_block": "bfloat16"}
FP8_MAX = 448.0  # largest finite float8_e4m3fn


@dataclass(frozen=True)
class GateResult:
    ok: bool
    rel_err: float
    tolerance: float
    status: Status
    message: str = ""


def classify(exc: BaseException) -> tuple[Status, str]:
    """Map a kernel failure to a status: resource limits, compile failures, anything else."""
    name = type(exc).__name__
    text = f"{name}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
    if name in ("OutOfResources", "OutOfMemoryError") or "out of resource" in str(exc).lower():
        return "out_of_resources", text
    if name in ("CompilationError", "CompileTimeAssertionFailure", "PTXASError", "MLIRCompilationError"):
        return "compile_error", text
    return "error", text


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:6], "little")


def make_inputs(problem: Problem, device: Any, seed: int, weights: dict[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of fused_moe for this problem, drawn on ``device``: x [M, H], w1 [E, 2I, H],
    w2 [E, H, I] scaled 1/sqrt(fan_in) so every stage is O(1), router_logits fp32 [M, E]; for fp8,
    per-tensor quantised weights with their [E] scales and quant="fp8_w8a8" (activations bf16); for
    fp8_block, 128 x 128 block-quantised weights and block_shape=(128, 128).
    ``weights``: reuse these weight entries (w1, w2 and scales) instead of drawing new ones, so a
    gate and a timer can share gigabytes of weights while drawing their own x and logits."""
    import torch

    dtype = getattr(torch, _TORCH_DTYPE[problem.dtype])
    gen = torch.Generator(device=device).manual_seed(seed)
    e, h, i, m = problem.experts, problem.hidden, problem.inter, problem.m
    randn = lambda *shape, dt=dtype: torch.randn(*shape, generator=gen, device=device, dtype=dt)
    out: dict[str, Any] = {"hidden_states": randn(m, h), "router_logits": randn(m, e, dt=torch.float32)}
    if weights is not None:
        out.update(weights)
        return out
    if problem.dtype == "fp8_block":
        from kernels.moe.reference import quantize_fp8_block_weight

        for name, shape, fan_in in (("w1", (e, 2 * i, h), h), ("w2", (e, h, i), i)):
            out[name], out[f"{name}_scale"] = quantize_fp8_block_weight(randn(*shape).mul_(fan_in**-0.5), FP8_BLOCK)
        out.update(quant="fp8_w8a8", block_shape=FP8_BLOCK)
    elif problem.dtype == "fp8":
        for name, shape, fan_in in (("w1", (e, 2 * i, h), h), ("w2", (e, h, i), i)):
            w = randn(*shape).mul_(fan_in**-0.5)
            scale = (w.abs().amax(dim=(1, 2)).float() / FP8_MAX).clamp(min=1e-12)
            out[name] = (w / scale[:, None, None].to(w.dtype)).to(torch.float8_e4m3fn)
            out[f"{name}_scale"] = scale
            del w
        out["quant"] = "fp8_w8a8"
    else:
        out["w1"] = randn(e, 2 * i, h).mul_(h**-0.5)
        out["w2"] = randn(e, h, i).mul_(i**-0.5)
    return out


WEIGHT_KEYS = ("w1", "w2", "w1_scale", "w2_scale", "quant", "block_shape")
FP8_BLOCK = (128, 128)  # accelsim's fp8_block: vLLM's block_shape=[128, 128]


class Gate:
    """Checks configs for problems on one torch device. ``kernel`` is the function under test
    (default ``kernels.moe.fused_moe``, looked up at call time); it is called with ``config=`` and
    ``impl="triton"``. ``weights(problem)`` may supply shared weights (see make_inputs); x and the
    router logits are always the gate's own. The reference always comes from
    ``kernels.moe.fused_moe(impl="reference")``, so a hook that breaks the kernel cannot break the
    oracle."""

    def __init__(self, device: Any = "cpu", seed: int = 1234, kernel: Callable[..., Any] | None = None,
                 weights: Callable[[Problem], dict[str, Any]] | None = None) -> None:
        self.device = device
        self.seed = seed
        self.kernel = kernel
        self.weights = weights
        self._cache: dict[Problem, tuple[dict[str, Any], Any]] = {}

    def clear(self) -> None:
        """Forget cached inputs and references (frees the device memory they hold)."""
        self._cache = {}

    def _reference(self, problem: Problem) -> tuple[dict[str, Any], Any]:
        if problem not in self._cache:
            from kernels.moe import fused_moe

            shared = self.weights(problem) if self.weights is not None else None
            inputs = make_inputs(problem, self.device, _seed("gate", self.seed, problem), shared)
            ref = fused_moe(top_k=problem.top_k, renormalize=True, impl="reference", **inputs)
            self._cache = {problem: (inputs, ref)}  # one problem at a time: weights can be GBs
        return self._cache[problem]

    def check(self, problem: Problem, config: Config) -> GateResult:
        from kernels.moe.reference import TOLERANCES, rel_err

        tol = TOLERANCES[problem.dtype].rel
        try:
            inputs, ref = self._reference(problem)
            if self.kernel is None:
                from kernels.moe import fused_moe as kernel
            else:
                kernel = self.kernel
            out = kernel(top_k=problem.top_k, renormalize=True, config=dict(config), impl="triton", **inputs)
        except Exception as exc:  # a failing candidate is a result, not a crash
            status, message = classify(exc)
            return GateResult(False, float("nan"), tol, status, message)
        if out.shape != ref.shape or not bool(out.isfinite().all()):
            return GateResult(False, float("inf"), tol, "wrong", "output has the wrong shape or non-finite values")
        rel = rel_err(out, ref)
        if rel > tol:
            return GateResult(False, rel, tol, "wrong", f"relative error {rel:.2e} > {tol:.0e} for {problem.dtype}")
        return GateResult(True, rel, tol, "ok")


class GatedDevice:
    """Gate first, then time with ``timer`` (any Device): a config that fails the gate is recorded
    with its status and relative error and is never timed."""

    def __init__(self, timer: Any, gate: Gate, gate_problem: Callable[[Problem], Problem] | None = None) -> None:
        self.timer = timer
        self.gate = gate
        self.gate_problem = gate_problem or (lambda p: p)
        self.timed = timer.timed
        self.fingerprint = timer.fingerprint

    def measure(self, problem: Problem, config: Config) -> Measurement:
        g = self.gate.check(self.gate_problem(problem), config)
        if not g.ok:
            return Measurement(g.status, rel_err=g.rel_err, message=g.message)
        m = self.timer.measure(problem, config)
        return Measurement(m.status, m.median_s, m.p20_s, m.p80_s, m.reps, g.rel_err, m.message)
