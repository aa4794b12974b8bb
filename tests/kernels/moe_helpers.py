"""Shared test helpers: the one tolerance table, input factories, the closeness check."""

from __future__ import annotations

from typing import NamedTuple

import torch

from kernels.moe import triton_impl


class Tolerance(NamedTuple):
    rel: float  # bound on ||out - ref|| / ||ref||
    abs: float  # bound on max |out - ref|, for outputs of O(1) scale (unit_inputs)


# Keyed by the dtype of the computation. Relative norm error is the primary check: at the small
# data scale of vLLM's tests (randn / 10) an absolute bound alone passes a gate/up swap. The bf16
# bound also absorbs the interpreter rounding fp32 -> bf16 toward zero (GPUs round to nearest).
TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float32: Tolerance(rel=1e-5, abs=1e-4),
    torch.float16: Tolerance(rel=5e-3, abs=1e-2),
    torch.bfloat16: Tolerance(rel=2e-2, abs=6e-2),
    torch.float8_e4m3fn: Tolerance(rel=2e-2, abs=1.5e-1),  # Triton fp8 vs reference.fused_moe_fp8_ref
}

# Where Triton runs: interpreted kernels take CPU tensors, compiled ones CUDA tensors.
TRITON_DEVICE = torch.device("cpu" if triton_impl.INTERPRETED else "cuda")


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    ref = ref.double()
    return float((out.double() - ref).norm() / ref.norm().clamp_min(1e-30))


def assert_moe_close(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, what: str = "") -> None:
    """Both bounds of TOLERANCES[dtype]; NaN/inf (e.g. from a poisoned, unwritten element) fails."""
    tol = TOLERANCES[dtype]
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    assert torch.isfinite(out).all(), f"{what}: {int((~torch.isfinite(out)).sum())} non-finite elements"
    rel = rel_err(out, ref)
    max_abs = float((out.double() - ref.double()).abs().max()) if out.numel() else 0.0
    assert rel <= tol.rel and max_abs <= tol.abs, (
        f"{what}: rel norm err {rel:.3e} (bound {tol.rel:.0e}), max abs err {max_abs:.3e} (bound {tol.abs:.0e})")


def unit_inputs(m: int, hidden: int, inter: int, experts: int, dtype: torch.dtype, seed: int = 0,
                device: torch.device | str = "cpu", scale: str = "unit"):
    """(x [M, H], w1 [E, 2I, H], w2 [E, H, I], router_logits fp32 [M, E]).

    scale="unit": weights ~ N(0, 1/fan_in), so every stage and the output are O(1);
    scale="vllm": x and weights ~ randn / 10, the scale of vLLM's MoE tests (outputs ~1e-3).
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, hidden, generator=gen)
    w1 = torch.randn(experts, 2 * inter, hidden, generator=gen)
    w2 = torch.randn(experts, hidden, inter, generator=gen)
    logits = torch.randn(m, experts, generator=gen)
    if scale == "unit":
        w1, w2 = w1 / hidden**0.5, w2 / inter**0.5
    else:
        x, w1, w2 = x / 10, w1 / 10, w2 / 10
    x, w1, w2 = (t.to(device=device, dtype=dtype) for t in (x, w1, w2))
    return x, w1, w2, logits.to(device)
