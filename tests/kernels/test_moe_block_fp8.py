"""Block-wise fp8 (vLLM's block_shape=[128, 128], DeepSeek-V3 style) in the Triton kernel against the
PyTorch emulation ``reference.fused_moe_fp8_block_ref``, with NaN-poisoned workspaces.

Activations are fp16: the Triton interpreter multiplies bf16 dot operands as raw bits (the kernel
upcasts them only when interpreting); fp8 dots are exact in the interpreter. Sizes that are not
multiples of 128 exercise partial scale blocks, and a BLOCK_SIZE_N of 64 puts the gate and up
halves of GEMM 1 in different scale rows.
"""

from __future__ import annotations

import pytest
import torch
from moe_helpers import TRITON_DEVICE, assert_moe_close, rel_err, unit_inputs

from kernels.moe import reference, topk_route, triton_impl

DEV = TRITON_DEVICE
BLOCK = (128, 128)


def _fp8_runnable() -> bool:
    if triton_impl.INTERPRETED:
        return True
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


pytestmark = pytest.mark.skipif(not _fp8_runnable(), reason="fp8 needs the interpreter or compute capability >= 8.9")


def _case(m: int, hidden: int, inter: int, experts: int, top_k: int, seed: int):
    x, w1, w2, logits = unit_inputs(m, hidden, inter, experts, torch.float16, seed=seed, device=DEV)
    weights, ids = topk_route(logits, top_k, True, "softmax")
    w1_q, w1_s = reference.quantize_fp8_block_weight(w1, BLOCK)
    w2_q, w2_s = reference.quantize_fp8_block_weight(w2, BLOCK)
    return x, (w1, w2), (w1_q, w1_s, w2_q, w2_s), weights, ids


def _run(x, quantised, weights, ids, config):
    w1_q, w1_s, w2_q, w2_s = quantised
    t, hidden, inter = ids.numel(), x.shape[1], w2_q.shape[2]
    workspace = (torch.full((t, inter), float("nan"), dtype=x.dtype, device=x.device),
                 torch.full((t, hidden), float("nan"), dtype=x.dtype, device=x.device))
    return triton_impl.fused_moe_triton(x, w1_q, w2_q, weights, ids, config, w1_scale=w1_s, w2_scale=w2_s,
                                        workspace=workspace, block_shape=BLOCK)


CONFIGS = [  # BLOCK_SIZE_K 64: two K steps per scale block; 256 is clamped to the block's 128
    {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 1, "num_warps": 4, "num_stages": 3},
    {"BLOCK_SIZE_M": 32, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 256, "GROUP_SIZE_M": 4, "num_warps": 4, "num_stages": 2},
]


@pytest.mark.parametrize("config", CONFIGS, ids=["bk64", "bk256-clamped"])
@pytest.mark.parametrize("m,hidden,inter,experts,top_k", [(20, 256, 128, 4, 2), (9, 192, 160, 6, 3)])
def test_block_fp8_kernel_matches_emulation(config, m, hidden, inter, experts, top_k):
    x, full, quantised, weights, ids = _case(m, hidden, inter, experts, top_k, seed=m + hidden)
    out = _run(x, quantised, weights, ids, config)
    emulated = reference.fused_moe_fp8_block_ref(x, quantised[0], quantised[2], quantised[1], quantised[3],
                                                 weights, ids, BLOCK)
    assert_moe_close(out, emulated, torch.float8_e4m3fn, f"block fp8 {config}")
    # and the emulation is the layer, within fp8 rounding
    assert rel_err(out, reference.fused_moe_ref(x, full[0], full[1], weights, ids)) < 8e-2


def test_a_misplaced_scale_block_fails_the_check():
    """The check can fail: swapping two K-blocks of w1's scales moves the result out of tolerance."""
    x, _, (w1_q, w1_s, w2_q, w2_s), weights, ids = _case(20, 256, 128, 4, 2, seed=5)
    w1_s = w1_s * torch.linspace(0.5, 2.0, w1_s.shape[2], device=w1_s.device)[None, None, :]  # blocks differ
    swapped = w1_s.flip(2).contiguous()
    out = _run(x, (w1_q, swapped, w2_q, w2_s), weights, ids, CONFIGS[0])
    emulated = reference.fused_moe_fp8_block_ref(x, w1_q, w2_q, w1_s, w2_s, weights, ids, BLOCK)
    with pytest.raises(AssertionError, match="rel norm err"):
        assert_moe_close(out, emulated, torch.float8_e4m3fn, "swapped scale blocks")


def test_group_quantisation_round_trips_within_fp8_precision():
    x = torch.randn(5, 300, generator=torch.Generator().manual_seed(0))
    x_q, scale = reference.quantize_fp8_groups(x, 128)
    assert scale.shape == (5, 3) and x_q.dtype == reference.FP8_DTYPE
    back = reference.dequantize_fp8_groups(x_q, scale, 128)
    assert rel_err(back, x) < 0.05  # e4m3 keeps 3 mantissa bits: <= 6.25% per element, far less in norm
    w = torch.randn(2, 200, 130, generator=torch.Generator().manual_seed(1))
    w_q, w_s = reference.quantize_fp8_block_weight(w, (128, 128))
    assert w_s.shape == (2, 2, 2)
    assert rel_err(reference.dequantize_fp8_block_weight(w_q, w_s, (128, 128)), w) < 0.05
