"""Shared test helpers: the tolerance table by torch dtype, input factories, the closeness check."""

from __future__ import annotations

import torch

from kernels.moe import reference, triton_impl
from kernels.moe.reference import Tolerance, rel_err

# The kernel's one tolerance table (kernels.moe.reference.TOLERANCES, also the tuner gate's),
# keyed here by the torch dtype of the computation.
TOLERANCES: dict[torch.dtype, Tolerance] = {
    torch.float32: reference.TOLERANCES["fp32"],
    torch.float16: reference.TOLERANCES["fp16"],
    torch.bfloat16: reference.TOLERANCES["bf16"],
    torch.float8_e4m3fn: reference.TOLERANCES["fp8"],  # Triton fp8 vs reference.fused_moe_fp8_ref
}

# Where Triton runs: interpreted kernels take CPU tensors, compiled ones CUDA tensors.
TRITON_DEVICE = torch.device("cpu" if triton_impl.INTERPRETED else "cuda")


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
