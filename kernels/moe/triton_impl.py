"""Triton fused-MoE kernels: one grouped GEMM kernel, used twice, plus host-side launch code.

Pipeline on the GPU (shape legend as in reference.py; T = M * top_k):
  1. ``moe_align_block_size`` (torch ops, no host sync) sorts the T (token, k) pairs by expert.
  2. GEMM 1: rows of x gathered by ``sorted_token_ids // top_k`` times ``w1[e]``; every program
     computes a gate tile and the matching up tile and writes ``silu(gate) * up`` -> act [T, I].
     Fusing the activation saves writing and re-reading a [T, 2I] buffer (1.5x the act traffic).
  3. GEMM 2: rows of act gathered by ``sorted_token_ids`` times ``w2[e]``, the routing weight
     multiplied in the epilogue -> y [T, H].
  4. Combine: ``y.view(M, K, H).sum(1)`` in torch. A sum over k <= 8 rows is a bandwidth-bound
     reduction torch already runs near peak bandwidth; a custom kernel would only add code. For
     top_k == 1 without a shared expert it is skipped (y is the output).

Arbitrary strides are honoured: every tensor's strides are passed to the kernel, so padded or
sliced weights and non-contiguous activations work without copies.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction

from kernels.moe.reference import FP8_DTYPE, moe_align_block_size, quantize_fp8, quantize_fp8_groups


@triton.jit
def _moe_gemm_kernel(
    a_ptr, b_ptr, c_ptr, a_scale_ptr, b_scale_ptr, topk_weights_ptr,
    sorted_token_ids_ptr, expert_ids_ptr, num_tokens_post_padded_ptr,
    N, K, EM, num_valid_tokens,
    stride_am, stride_ak, stride_be, stride_bn, stride_bk, stride_cm, stride_cn,
    stride_bse, stride_bsn, stride_bsk, stride_asm, stride_ask,
    A_ROW_DIV: tl.constexpr,  # top_k for GEMM 1 (row of x = pair // top_k), 1 for GEMM 2
    FUSE_SILU_MUL: tl.constexpr,  # GEMM 1: B rows [0, N) are gate, [N, 2N) are up
    MUL_ROUTED_WEIGHT: tl.constexpr,
    USE_FP8: tl.constexpr, PER_CHANNEL: tl.constexpr,
    BLOCK_QUANT: tl.constexpr, GROUP_N: tl.constexpr, GROUP_K: tl.constexpr,
    UPCAST_TO_FP32: tl.constexpr, DOT_PRECISION: tl.constexpr,
    BLOCK_SIZE_M: tl.constexpr, BLOCK_SIZE_N: tl.constexpr, BLOCK_SIZE_K: tl.constexpr,
    GROUP_SIZE_M: tl.constexpr,
):
    """C[pair, n] = sum_k A[row(pair), k] * B[expert(pair), n, k] for the pairs of one M-block.

    N is the number of output columns (I for GEMM 1, H for GEMM 2). With FUSE_SILU_MUL a program's
    BLOCK_SIZE_N counts columns of the stacked [gate; up] product, so each of its two accumulators
    is BLOCK_SIZE_N // 2 wide: registers and shared memory per tile then equal those of an unfused
    tile with the same config, which keeps tuned configs for the unfused layout meaningful.
    """
    OUT_N: tl.constexpr = BLOCK_SIZE_N // 2 if FUSE_SILU_MUL else BLOCK_SIZE_N
    pid = tl.program_id(axis=0)
    num_pid_m = tl.cdiv(EM, BLOCK_SIZE_M)
    num_pid_n = tl.cdiv(N, OUT_N)
    # Grouped ordering: consecutive programs walk GROUP_SIZE_M M-blocks down one column of N-tiles
    # before moving right, so the weight tile (same expert, same n) and the gathered rows stay in
    # L2 across the programs that are resident together, instead of streaming all of B per M-row.
    num_pid_in_group = GROUP_SIZE_M * num_pid_n
    group_id = pid // num_pid_in_group
    first_pid_m = group_id * GROUP_SIZE_M
    group_size_m = min(num_pid_m - first_pid_m, GROUP_SIZE_M)
    pid_m = first_pid_m + ((pid % num_pid_in_group) % group_size_m)
    pid_n = (pid % num_pid_in_group) // group_size_m

    # Blocks past the padded end hold only sentinels: nothing to compute, nothing to write.
    num_tokens_post_padded = tl.load(num_tokens_post_padded_ptr)
    if pid_m * BLOCK_SIZE_M >= num_tokens_post_padded:
        return
    off_expert = tl.load(expert_ids_ptr + pid_m).to(tl.int64)
    if off_expert < 0:
        return

    offs_pair = tl.load(sorted_token_ids_ptr + pid_m * BLOCK_SIZE_M + tl.arange(0, BLOCK_SIZE_M)).to(tl.int64)
    pair_mask = offs_pair < num_valid_tokens
    # int64 offsets: E * 2I * H exceeds 2**31 elements for DeepSeek-V3-sized weights.
    offs_n = (pid_n * OUT_N + tl.arange(0, OUT_N)).to(tl.int64)
    n_mask = offs_n < N
    offs_k = tl.arange(0, BLOCK_SIZE_K)

    a_ptrs = a_ptr + (offs_pair[:, None] // A_ROW_DIV) * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + off_expert * stride_be + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn
    acc = tl.zeros((BLOCK_SIZE_M, OUT_N), dtype=tl.float32)
    if FUSE_SILU_MUL:
        u_ptrs = b_ptrs + N * stride_bn
        acc_u = tl.zeros((BLOCK_SIZE_M, OUT_N), dtype=tl.float32)
    if BLOCK_QUANT:
        # Block-wise fp8 (DeepSeek-V3): one scale per GROUP_K columns of a row of A, one per
        # (GROUP_N x GROUP_K) block of B. BLOCK_SIZE_K divides GROUP_K (the host clamps it), so a K
        # step lies inside one scale block and its partial product is rescaled before it is added.
        as_ptrs = a_scale_ptr + (offs_pair // A_ROW_DIV) * stride_asm
        bs_ptrs = b_scale_ptr + off_expert * stride_bse + (offs_n // GROUP_N) * stride_bsn
        if FUSE_SILU_MUL:
            bsu_ptrs = b_scale_ptr + off_expert * stride_bse + ((offs_n + N) // GROUP_N) * stride_bsn

    for kk in range(0, tl.cdiv(K, BLOCK_SIZE_K)):
        k_mask = offs_k < K - kk * BLOCK_SIZE_K
        a = tl.load(a_ptrs, mask=pair_mask[:, None] & k_mask[None, :], other=0.0)
        b = tl.load(b_ptrs, mask=k_mask[:, None] & n_mask[None, :], other=0.0)
        # The interpreter's bf16 tl.dot multiplies raw uint16 bit patterns (triton issue #11584),
        # so under TRITON_INTERPRET=1 bf16 operands are upcast; on the GPU this flag is False.
        # (The interpreter also rounds fp32 -> bf16 toward zero on the final store; GPUs round to
        # nearest. That costs <= 1 ulp and is inside the bf16 test tolerance.)
        if UPCAST_TO_FP32:
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        if BLOCK_QUANT:
            ks = (kk * BLOCK_SIZE_K) // GROUP_K
            a_s = tl.load(as_ptrs + ks * stride_ask, mask=pair_mask, other=0.0)
            b_s = tl.load(bs_ptrs + ks * stride_bsk, mask=n_mask, other=0.0)
            acc += tl.dot(a, b, input_precision=DOT_PRECISION) * a_s[:, None] * b_s[None, :]
        else:
            acc = tl.dot(a, b, acc, input_precision=DOT_PRECISION)
        if FUSE_SILU_MUL:
            u = tl.load(u_ptrs, mask=k_mask[:, None] & n_mask[None, :], other=0.0)
            if UPCAST_TO_FP32:
                u = u.to(tl.float32)
            if BLOCK_QUANT:
                u_s = tl.load(bsu_ptrs + ks * stride_bsk, mask=n_mask, other=0.0)
                acc_u += tl.dot(a, u, input_precision=DOT_PRECISION) * a_s[:, None] * u_s[None, :]
            else:
                acc_u = tl.dot(a, u, acc_u, input_precision=DOT_PRECISION)
            u_ptrs += BLOCK_SIZE_K * stride_bk
        a_ptrs += BLOCK_SIZE_K * stride_ak
        b_ptrs += BLOCK_SIZE_K * stride_bk

    if USE_FP8 and not BLOCK_QUANT:
        # Dequantise once in the epilogue: scales are constant along K (per tensor / per channel).
        a_scale = tl.load(a_scale_ptr)
        if PER_CHANNEL:
            s_ptrs = b_scale_ptr + off_expert * stride_bse + offs_n * stride_bsn
            acc = acc * (a_scale * tl.load(s_ptrs, mask=n_mask, other=0.0))[None, :]
            if FUSE_SILU_MUL:
                s_u = tl.load(s_ptrs + N * stride_bsn, mask=n_mask, other=0.0)
                acc_u = acc_u * (a_scale * s_u)[None, :]
        else:
            b_scale = tl.load(b_scale_ptr + off_expert * stride_bse)
            acc = acc * (a_scale * b_scale)
            if FUSE_SILU_MUL:
                acc_u = acc_u * (a_scale * b_scale)
    if FUSE_SILU_MUL:
        acc = acc * tl.sigmoid(acc) * acc_u
    if MUL_ROUTED_WEIGHT:
        w = tl.load(topk_weights_ptr + offs_pair, mask=pair_mask, other=0.0)
        acc = acc * w[:, None]

    c_ptrs = c_ptr + offs_pair[:, None] * stride_cm + offs_n[None, :] * stride_cn
    tl.store(c_ptrs, acc.to(c_ptr.dtype.element_ty), mask=pair_mask[:, None] & n_mask[None, :])


# True when this module was imported with TRITON_INTERPRET=1 (triton decides at decoration time).
INTERPRETED: bool = isinstance(_moe_gemm_kernel, InterpretedFunction)


def invoke_moe_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    c: torch.Tensor,
    sorted_token_ids: torch.Tensor,
    expert_ids: torch.Tensor,
    num_tokens_post_padded: torch.Tensor,
    config: dict[str, int],
    *,
    top_k: int,
    fuse_silu_mul: bool,
    topk_weights: torch.Tensor | None = None,
    a_scale: torch.Tensor | None = None,
    b_scale: torch.Tensor | None = None,
    block_shape: tuple[int, int] | None = None,
) -> None:
    """Launch one grouped GEMM, writing ``c`` [T, N] in place (rows of padding are never written).

    a: [rows, K] (x [M, H] with top_k = k for GEMM 1; act [T, I] with top_k = 1 for GEMM 2);
    b: [E, N', K] with N' = 2N when ``fuse_silu_mul`` else N; ``topk_weights`` [M, k] fp32
    contiguous or None; fp8 mode when b is float8_e4m3fn: ``a_scale`` fp32 [1], ``b_scale``
    fp32 [E] (per tensor) or [E, N'] (per channel); with ``block_shape`` = (bn, bk), block-wise:
    ``a_scale`` fp32 [rows, cdiv(K, bk)] (per token group) and ``b_scale`` fp32
    [E, cdiv(N', bn), cdiv(K, bk)]. BLOCK_SIZE_K is then clamped to bk (as vLLM does).
    """
    num_pairs, n_out = c.shape
    k_dim = a.shape[1]
    use_fp8 = b.dtype == FP8_DTYPE
    block = use_fp8 and block_shape is not None
    per_channel = use_fp8 and not block and b_scale is not None and b_scale.dim() == 2
    bm, bn = config["BLOCK_SIZE_M"], config["BLOCK_SIZE_N"]
    bk = min(config["BLOCK_SIZE_K"], block_shape[1]) if block else config["BLOCK_SIZE_K"]
    if block and block_shape[1] % bk:
        raise ValueError(f"BLOCK_SIZE_K {bk} must divide the scale block's K size {block_shape[1]}")
    out_n = bn // 2 if fuse_silu_mul else bn
    # At most one block per pair is used (each used block holds >= 1 pair), so when M is small the
    # grid stops at T blocks instead of the E * (BLOCK_SIZE_M - 1) padding worst case.
    em = min(sorted_token_ids.numel(), num_pairs * bm)
    grid = (triton.cdiv(em, bm) * triton.cdiv(n_out, out_n),)
    dummy = c  # never dereferenced when the matching constexpr flag is off
    _moe_gemm_kernel[grid](
        a, b, c,
        a_scale if use_fp8 else dummy, b_scale if use_fp8 else dummy,
        topk_weights if topk_weights is not None else dummy,
        sorted_token_ids, expert_ids, num_tokens_post_padded,
        n_out, k_dim, em, num_pairs,
        a.stride(0), a.stride(1), b.stride(0), b.stride(1), b.stride(2), c.stride(0), c.stride(1),
        b_scale.stride(0) if use_fp8 else 0, b_scale.stride(1) if per_channel or block else 0,
        b_scale.stride(2) if block else 0, a_scale.stride(0) if block else 0, a_scale.stride(1) if block else 0,
        A_ROW_DIV=top_k, FUSE_SILU_MUL=fuse_silu_mul, MUL_ROUTED_WEIGHT=topk_weights is not None,
        USE_FP8=use_fp8, PER_CHANNEL=per_channel,
        BLOCK_QUANT=block, GROUP_N=block_shape[0] if block else 1, GROUP_K=block_shape[1] if block else 1,
        UPCAST_TO_FP32=INTERPRETED and a.dtype == torch.bfloat16,
        # fp32 inputs: IEEE fp32 products, not TF32, so fp32 means fp32 (and matches the interpreter).
        DOT_PRECISION="ieee" if a.dtype == torch.float32 else "tf32",
        BLOCK_SIZE_M=bm, BLOCK_SIZE_N=bn, BLOCK_SIZE_K=bk,
        GROUP_SIZE_M=config["GROUP_SIZE_M"],
        num_warps=config["num_warps"], num_stages=config["num_stages"],
    )


def fused_moe_triton(
    x: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    topk_weights: torch.Tensor,
    topk_ids: torch.Tensor,
    config: dict[str, int],
    *,
    shared_expert: tuple[torch.Tensor, torch.Tensor] | None = None,
    w1_scale: torch.Tensor | None = None,
    w2_scale: torch.Tensor | None = None,
    a_scale: torch.Tensor | None = None,
    workspace: tuple[torch.Tensor, torch.Tensor] | None = None,
    block_shape: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The layer after routing, inputs already validated by ``api.fused_moe``: returns [M, H].

    fp8 w8a8 when w1/w2 are float8_e4m3fn: x is quantised per tensor (static ``a_scale`` or
    dynamic), act is dynamically quantised per tensor before GEMM 2; outputs are in x's dtype.
    With ``block_shape`` = (bn, bk), block-wise fp8 (DeepSeek-V3): w1_scale [E, cdiv(2I, bn),
    cdiv(H, bk)], w2_scale [E, cdiv(H, bn), cdiv(I, bk)], x and act quantised dynamically per
    token and group of bk columns.
    ``workspace``: optional caller-owned (act [T, I], y [T, H]) buffers in x's dtype, e.g. to
    reuse memory across calls; their old contents never reach the output.
    """
    m, hidden = x.shape
    top_k = topk_ids.shape[1]
    num_pairs, inter, num_experts = m * top_k, w2.shape[2], w1.shape[0]
    if workspace is None:
        act = torch.empty(num_pairs, inter, dtype=x.dtype, device=x.device)
        y = torch.empty(num_pairs, hidden, dtype=x.dtype, device=x.device)
    else:
        act, y = workspace
    sorted_ids, expert_ids, num_post = moe_align_block_size(topk_ids, config["BLOCK_SIZE_M"], num_experts)
    topk_weights = topk_weights.float().contiguous()

    block = tuple(block_shape) if block_shape is not None and w1.dtype == FP8_DTYPE else None
    quant = (lambda t, s=None: quantize_fp8_groups(t, block[1])) if block else quantize_fp8
    scale = (lambda t: t.float().contiguous()) if block else _scale_2d
    a1, s_a1 = x, None
    if w1.dtype == FP8_DTYPE:
        a1, s_a1 = quant(x, a_scale)
    invoke_moe_gemm(a1, w1, act, sorted_ids, expert_ids, num_post, config, top_k=top_k,
                    fuse_silu_mul=True, a_scale=s_a1, b_scale=scale(w1_scale) if w1_scale is not None else None,
                    block_shape=block)
    a2, s_a2 = act, None
    if w2.dtype == FP8_DTYPE:
        a2, s_a2 = quant(act)
    invoke_moe_gemm(a2, w2, y, sorted_ids, expert_ids, num_post, config, top_k=1,
                    fuse_silu_mul=False, topk_weights=topk_weights, a_scale=s_a2,
                    b_scale=scale(w2_scale) if w2_scale is not None else None, block_shape=block)

    if top_k == 1 and shared_expert is None:
        return y
    out = y.view(m, top_k, hidden).sum(dim=1, dtype=torch.float32)
    if shared_expert is not None:
        out += _shared_expert(x, *shared_expert)
    return out.to(x.dtype)


def _scale_2d(scale: torch.Tensor | None) -> torch.Tensor | None:
    """[E], [E, 1], [E, 1, 1] -> [E] (per tensor); [E, N] or [E, N, 1] -> [E, N] (per channel)."""
    if scale is None:
        return None
    scale = scale.float().reshape(scale.shape[0], -1)
    return scale[:, 0].contiguous() if scale.shape[1] == 1 else scale.contiguous()


def _shared_expert(x: torch.Tensor, w1s: torch.Tensor, w2s: torch.Tensor) -> torch.Tensor:
    """Dense shared expert through cuBLAS (a plain GEMM needs no gather): fp32 [M, H]."""
    inter = w1s.shape[0] // 2
    h = x @ w1s.T
    act = torch.nn.functional.silu(h[:, :inter].float()) * h[:, inter:].float()
    return (act.to(x.dtype) @ w2s.T).float()
