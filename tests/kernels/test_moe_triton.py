"""Triton path == reference on fresh random inputs (CPU via TRITON_INTERPRET=1, or a GPU with =0).

Kernel-written buffers (act [T, I], y [T, H]) are passed in filled with NaN, so an element the
kernels fail to write reaches the output as NaN and fails ``assert_moe_close``.
"""

from __future__ import annotations

import pytest
import torch
from moe_helpers import TRITON_DEVICE, assert_moe_close, rel_err, unit_inputs

from kernels.moe import default_config, fused_moe, reference, topk_route, triton_impl

DEV = TRITON_DEVICE


def run_triton_poisoned(x, w1, w2, logits, top_k, renormalize=True, scoring="softmax", config=None,
                        shared=None):
    """Triton layer with NaN-filled workspace; returns (out, reference out)."""
    m, hidden = x.shape
    inter = w2.shape[2]
    weights, ids = topk_route(logits, top_k, renormalize, scoring)
    config = config or default_config(m, w1.shape[0], inter, hidden, top_k, w1.dtype)
    workspace = (torch.full((m * top_k, inter), float("nan"), dtype=x.dtype, device=x.device),
                 torch.full((m * top_k, hidden), float("nan"), dtype=x.dtype, device=x.device))
    out = triton_impl.fused_moe_triton(x, w1, w2, weights, ids, config, shared_expert=shared,
                                       workspace=workspace)
    return out, reference.fused_moe_ref(x, w1, w2, weights, ids, shared_expert=shared)


GRID = [  # (M, H, I, E, top_k, renormalize, scoring, dtype)
    (1, 16, 16, 4, 1, True, "softmax", torch.float32),
    (7, 32, 48, 4, 2, True, "softmax", torch.float16),  # I not a power of two: N masks
    (17, 64, 32, 8, 2, False, "softmax", torch.float16),  # M not a multiple of BLOCK_SIZE_M
    (33, 48, 64, 8, 3, True, "sigmoid", torch.float32),  # H not a power of two: K masks
    (5, 32, 16, 16, 4, False, "sigmoid", torch.float16),
    (64, 16, 32, 4, 2, True, "softmax", torch.float16),  # 32 tokens/expert: BLOCK_SIZE_M 32
    (40, 64, 64, 2, 1, False, "sigmoid", torch.float32),  # Llama 4 routing, top-1
    (6, 16, 16, 3, 3, True, "softmax", torch.float16),  # top_k == E
    (7, 32, 48, 4, 2, True, "softmax", torch.bfloat16),  # bf16 through the interpreter upcast
    (33, 64, 32, 8, 2, False, "sigmoid", torch.bfloat16),
]


@pytest.mark.parametrize("m,hidden,inter,experts,top_k,renormalize,scoring,dtype", GRID)
def test_triton_matches_reference(m, hidden, inter, experts, top_k, renormalize, scoring, dtype):
    x, w1, w2, logits = unit_inputs(m, hidden, inter, experts, dtype, seed=m * 31 + hidden, device=DEV)
    out, ref = run_triton_poisoned(x, w1, w2, logits, top_k, renormalize, scoring)
    assert out.dtype == dtype and out.shape == (m, hidden)
    assert_moe_close(out, ref, dtype, "triton vs reference")


def test_public_api_dispatches_to_the_same_result():
    x, w1, w2, logits = unit_inputs(9, 32, 32, 4, torch.float16, seed=4, device=DEV)
    out, _ = run_triton_poisoned(x, w1, w2, logits, 2)
    assert torch.equal(fused_moe(x, w1, w2, logits, 2, impl="triton"), out)
    assert torch.equal(fused_moe(x, w1, w2, logits, 2), out)  # "auto": CUDA or TRITON_INTERPRET=1


CONFIGS = [
    {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 32, "BLOCK_SIZE_K": 16, "GROUP_SIZE_M": 1, "num_warps": 4, "num_stages": 2},
    {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 32, "GROUP_SIZE_M": 4, "num_warps": 4, "num_stages": 3},
    {"BLOCK_SIZE_M": 32, "BLOCK_SIZE_N": 32, "BLOCK_SIZE_K": 16, "GROUP_SIZE_M": 3, "num_warps": 4, "num_stages": 2},
    {"BLOCK_SIZE_M": 64, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 8, "num_warps": 8, "num_stages": 3},
    # shipped-winner values outside vLLM's tuning space: 8-row M tiles, 16-wide N tiles (8-wide halves)
    {"BLOCK_SIZE_M": 8, "BLOCK_SIZE_N": 16, "BLOCK_SIZE_K": 32, "GROUP_SIZE_M": 2, "num_warps": 2, "num_stages": 1},
]


def _config_id(c: dict) -> str:
    return "M{BLOCK_SIZE_M}N{BLOCK_SIZE_N}K{BLOCK_SIZE_K}G{GROUP_SIZE_M}".format(**c)


@pytest.mark.parametrize("config", CONFIGS, ids=_config_id)
def test_explicit_configs_cover_tiling_and_grouped_order(config):
    """Several N-tiles, partial M-groups and K tails: every config computes the same layer."""
    x, w1, w2, logits = unit_inputs(50, 48, 80, 4, torch.float16, seed=8, device=DEV)
    out, ref = run_triton_poisoned(x, w1, w2, logits, 2, config=config)
    assert_moe_close(out, ref, torch.float16, str(config))


def test_stage_kernels_write_every_row():
    """GEMM 1 (gate/up + SiLU) and GEMM 2 (routing weight) separately, outputs NaN-poisoned."""
    x, w1, w2, logits = unit_inputs(19, 32, 48, 6, torch.float16, seed=6, device=DEV)
    weights, ids = topk_route(logits, 2, True, "softmax")
    cfg = CONFIGS[0]
    sorted_ids, expert_ids, post = reference.moe_align_block_size(ids, cfg["BLOCK_SIZE_M"], 6)
    act = torch.full((38, 48), float("nan"), dtype=x.dtype, device=DEV)
    triton_impl.invoke_moe_gemm(x, w1, act, sorted_ids, expert_ids, post, cfg, top_k=2, fuse_silu_mul=True)
    assert_moe_close(act, reference.gemm1_silu_mul_ref(x, w1, ids), torch.float16, "GEMM 1")
    y = torch.full((38, 32), float("nan"), dtype=x.dtype, device=DEV)
    triton_impl.invoke_moe_gemm(act, w2, y, sorted_ids, expert_ids, post, cfg, top_k=1, fuse_silu_mul=False,
                                topk_weights=weights)
    assert_moe_close(y, reference.gemm2_weighted_ref(act, w2, weights, ids), torch.float16, "GEMM 2")


@pytest.mark.parametrize("scale", ["vllm", "unit"])
def test_gate_up_swap_fails_the_tolerance(scale):
    """The check can fail: a kernel computing silu(up) * gate is rejected at both data scales."""
    x, w1, w2, logits = unit_inputs(16, 32, 32, 4, torch.float16, seed=9, device=DEV, scale=scale)
    inter = w2.shape[2]
    swapped = torch.cat([w1[:, inter:], w1[:, :inter]], dim=1)
    weights, ids = topk_route(logits, 2, True, "softmax")
    ref = reference.fused_moe_ref(x, w1, w2, weights, ids)
    bad = fused_moe(x, swapped, w2, logits, 2, impl="triton")
    with pytest.raises(AssertionError, match="rel norm err"):
        assert_moe_close(bad, ref, torch.float16, "swapped")
    if scale == "vllm":  # an absolute bound alone (vLLM's atol 2e-2) would have let it through
        assert float((bad.float() - ref.float()).abs().max()) < 2e-2


def test_an_unwritten_element_fails_the_check():
    x, w1, w2, logits = unit_inputs(4, 16, 16, 2, torch.float16, seed=1, device=DEV)
    out, ref = run_triton_poisoned(x, w1, w2, logits, 1)
    out[2, 5] = float("nan")
    with pytest.raises(AssertionError, match="non-finite"):
        assert_moe_close(out, ref, torch.float16)


def test_strided_and_padded_inputs_match_contiguous():
    """Non-contiguous x (column slice, transposed), padded w1 rows/cols, w2 as a transposed view."""
    m, hidden, inter, experts = 11, 32, 24, 4
    x, w1, w2, logits = unit_inputs(m, hidden, inter, experts, torch.float16, seed=12, device=DEV)
    x_wide = torch.zeros(m, 2 * hidden, dtype=x.dtype, device=DEV)
    x_wide[:, ::2] = x
    x_t = x.T.contiguous().T  # stride (1, M)
    w1_pad = torch.zeros(experts, 2 * inter + 8, hidden + 16, dtype=x.dtype, device=DEV)
    w1_pad[:, : 2 * inter, :hidden] = w1
    w2_t = w2.transpose(1, 2).contiguous().transpose(1, 2)  # stride (I*H, 1, H)
    expect = fused_moe(x, w1, w2, logits, 2, impl="triton")
    for xs in (x_wide[:, ::2], x_t):
        ws1, ws2 = w1_pad[:, : 2 * inter, :hidden], w2_t
        assert not (xs.is_contiguous() or ws1.is_contiguous() or ws2.is_contiguous())
        out = fused_moe(xs, ws1, ws2, logits, 2, impl="triton")
        assert rel_err(out, expect) < 1e-3
        assert_moe_close(out, fused_moe(x, w1, w2, logits, 2, impl="reference"), torch.float16, "strided")


def test_single_token():
    x, w1, w2, logits = unit_inputs(1, 32, 32, 8, torch.float16, seed=13, device=DEV)
    out, ref = run_triton_poisoned(x, w1, w2, logits, 2)
    assert_moe_close(out, ref, torch.float16, "M=1")


def test_expert_with_zero_tokens():
    x, w1, w2, logits = unit_inputs(24, 16, 32, 6, torch.float16, seed=14, device=DEV)
    logits[:, 2] = -1e4  # expert 2 never chosen
    logits[:, 5] = -1e4
    _, ids = topk_route(logits, 2, True, "softmax")
    assert not ((ids == 2) | (ids == 5)).any()
    out, ref = run_triton_poisoned(x, w1, w2, logits, 2)
    assert_moe_close(out, ref, torch.float16, "empty experts")


def test_256_experts_top8_deepseek_layout():
    x, w1, w2, logits = unit_inputs(6, 16, 16, 256, torch.float16, seed=15, device=DEV)
    out, ref = run_triton_poisoned(x, w1, w2, logits, 8, True, "sigmoid")
    assert_moe_close(out, ref, torch.float16, "E=256 k=8")


@pytest.mark.parametrize("top_k,scoring,renormalize", [(1, "sigmoid", False), (2, "softmax", True)])
def test_shared_expert_added_unweighted(top_k, scoring, renormalize):
    x, w1, w2, logits = unit_inputs(10, 32, 16, 4, torch.float16, seed=16, device=DEV)
    gen = torch.Generator().manual_seed(0)
    shared = ((torch.randn(48, 32, generator=gen) / 32**0.5).to(x.dtype).to(DEV),
              (torch.randn(32, 24, generator=gen) / 24**0.5).to(x.dtype).to(DEV))
    out, ref = run_triton_poisoned(x, w1, w2, logits, top_k, renormalize, scoring, shared=shared)
    assert_moe_close(out, ref, torch.float16, "shared expert")
    without = fused_moe(x, w1, w2, logits, top_k, renormalize, scoring=scoring, impl="triton")
    assert rel_err(out - without, reference.shared_expert_ref(x, *shared)) < 1e-2


def test_small_m_with_large_block_and_empty_batch():
    x, w1, w2, logits = unit_inputs(3, 16, 16, 4, torch.float16, seed=17, device=DEV)
    out, ref = run_triton_poisoned(x, w1, w2, logits, 2, config=CONFIGS[3])  # BLOCK_SIZE_M 64 > M*k
    assert_moe_close(out, ref, torch.float16, "M < BLOCK_SIZE_M")
    empty = fused_moe(x[:0], w1, w2, logits[:0], 2, impl="triton")
    assert empty.shape == (0, 16)


def _fp8_runnable() -> bool:
    if triton_impl.INTERPRETED:
        return True  # the interpreter computes fp8 dots exactly
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


@pytest.mark.skipif(not _fp8_runnable(), reason="fp8 needs the interpreter or compute capability >= 8.9")
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("static_a_scale", [False, True])
def test_fp8_kernel_path_matches_emulation(per_channel, static_a_scale):
    """The fp8 w8a8 kernel path (scales in the epilogue, act re-quantised) against
    reference.fused_moe_fp8_ref, called below the API (which allows fp8 only on sm_89+ GPUs).
    fp16 activations: the interpreter rounds fp32 -> fp16 to nearest, as a GPU does."""
    x, w1, w2, logits = unit_inputs(20, 64, 48, 4, torch.float16, seed=21, device=DEV)
    weights, ids = topk_route(logits, 2, True, "softmax")
    quantised = []
    for w in (w1, w2):
        amax = w.float().abs().amax(dim=2) if per_channel else w.float().abs().amax(dim=(1, 2))
        scale = amax / reference.FP8_MAX
        quantised += [(w.float() / (scale[:, :, None] if per_channel else scale[:, None, None]))
                      .to(reference.FP8_DTYPE), scale]
    w1_q, w1_s, w2_q, w2_s = quantised
    a_scale = (1.5 * x.float().abs().amax() / reference.FP8_MAX).reshape(1) if static_a_scale else None
    cfg = default_config(20, 4, 48, 64, 2, reference.FP8_DTYPE)
    out = triton_impl.fused_moe_triton(x, w1_q, w2_q, weights, ids, cfg, w1_scale=w1_s, w2_scale=w2_s,
                                       a_scale=a_scale)
    emulated = reference.fused_moe_fp8_ref(x, w1_q, w2_q, w1_s, w2_s, weights, ids, a_scale=a_scale)
    assert_moe_close(out, emulated, reference.FP8_DTYPE, "fp8 kernel vs emulation")
    assert rel_err(out, reference.fused_moe_ref(x, w1, w2, weights, ids)) < 8e-2


@pytest.mark.skipif(DEV.type == "cuda", reason="CPU dispatch rule")
def test_auto_uses_reference_on_cpu_without_interpreter_env(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("triton path taken")

    monkeypatch.delenv("TRITON_INTERPRET")
    monkeypatch.setattr(triton_impl, "fused_moe_triton", refuse)
    x, w1, w2, logits = unit_inputs(5, 16, 16, 4, torch.float32, seed=2)
    weights, ids = topk_route(logits, 2, True, "softmax")
    assert torch.equal(fused_moe(x, w1, w2, logits, 2), reference.fused_moe_ref(x, w1, w2, weights, ids))
    with pytest.raises(AssertionError, match="triton path taken"):
        fused_moe(x, w1, w2, logits, 2, impl="triton")
