"""Readable PyTorch reference for the fused MoE layer: the specification and the test oracle.

Every stage of the pipeline has a function here, written for clarity rather than speed, and all of
it runs on CPU. Arithmetic is fp32 internally; results are cast back to the input dtype at the end.

Shape legend (suffixes on names): M tokens, H hidden, I intermediate per expert, E experts,
K = top_k, T = M * top_k flattened (token, k) pairs, index ``t * top_k + k``.

Pipeline: ``topk_route`` -> ``moe_align_block_size`` (only the kernel needs it) ->
``gemm1_silu_mul_ref`` -> ``gemm2_weighted_ref`` -> ``combine_ref`` (+ ``shared_expert_ref``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

Scoring = Literal["softmax", "sigmoid"]

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = float(torch.finfo(FP8_DTYPE).max)  # 448.0


class Tolerance(NamedTuple):
    rel: float  # bound on ||out - ref|| / ||ref||
    abs: float  # bound on max |out - ref|, for outputs of O(1) scale (weights ~ N(0, 1/fan_in))


# How far an implementation may sit from this reference, keyed by the computation's dtype name
# ("fp8" = w8a8 against ``fused_moe_fp8_ref``). The one table: the kernel tests and the tuner's
# correctness gate both read it. Relative norm error is the primary check: at the small data scale
# of vLLM's tests (randn / 10) an absolute bound alone passes a gate/up swap. The bf16 bound also
# absorbs the interpreter rounding fp32 -> bf16 toward zero (GPUs round to nearest).
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(rel=1e-5, abs=1e-4),
    "fp16": Tolerance(rel=5e-3, abs=1e-2),
    "bf16": Tolerance(rel=2e-2, abs=6e-2),
    "fp8": Tolerance(rel=2e-2, abs=1.5e-1),
    "fp8_block": Tolerance(rel=2e-2, abs=1.5e-1),  # against fused_moe_fp8_block_ref
}


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """Relative norm error ||out - ref|| / ||ref||, computed in fp64 (a zero ref counts as 1e-30)."""
    ref64 = ref.double()
    return float((out.double() - ref64).norm() / ref64.norm().clamp_min(1e-30))


def topk_route(
    router_logits: torch.Tensor, top_k: int, renormalize: bool, scoring: Scoring = "softmax"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Score the router logits, pick the top-k experts per token.

    router_logits_ME [M, E] (any float dtype) -> (topk_weights fp32 [M, K], topk_ids int32 [M, K]).
    softmax scoring: softmax over E, then top-k. sigmoid scoring: element-wise sigmoid, then top-k
    (Llama 4 uses sigmoid top-1 without renormalisation). ``renormalize`` divides the k chosen
    scores by their sum. Ties are broken as ``torch.topk`` breaks them.
    """
    logits_ME = router_logits.float()
    scores_ME = torch.softmax(logits_ME, dim=-1) if scoring == "softmax" else torch.sigmoid(logits_ME)
    weights_MK, ids_MK = torch.topk(scores_ME, top_k, dim=-1)
    if renormalize:
        weights_MK = weights_MK / weights_MK.sum(dim=-1, keepdim=True)
    return weights_MK.contiguous(), ids_MK.to(torch.int32).contiguous()


def moe_align_block_size(
    topk_ids: torch.Tensor, block_size: int, num_experts: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group the flattened (token, k) pairs by expert and pad each expert's run to ``block_size``.

    topk_ids [M, K] int -> (sorted_token_ids int32 [P], expert_ids int32 [B], num_tokens_post_padded
    int32 [1]) with T = topk_ids.numel(), P = T + E * (block_size - 1) (the worst case: every expert
    wastes at most block_size - 1 slots) and B = ceil(P / block_size).

    - ``sorted_token_ids[:num_tokens_post_padded]``: flat indices grouped by ascending expert id,
      ascending index within an expert, each run padded to a multiple of block_size with the
      sentinel T. Everything after num_tokens_post_padded is also T.
    - ``expert_ids[b]``: the expert of block b for the used blocks
      (b < num_tokens_post_padded / block_size); -1 for every unused tail block.
    - Experts with zero tokens get no blocks.

    Pure tensor ops on the input's device, with no host synchronisation, so the result can stay on
    the GPU and be captured in a CUDA graph.
    """
    device = topk_ids.device
    flat_ids_T = topk_ids.reshape(-1).long()
    num_pairs = flat_ids_T.numel()
    max_padded = num_pairs + num_experts * (block_size - 1)
    max_blocks = -(-max_padded // block_size)

    # scatter_add instead of bincount: bincount on CUDA reads the max back to the host.
    counts_E = torch.zeros(num_experts, dtype=torch.long, device=device)
    counts_E.scatter_add_(0, flat_ids_T, torch.ones_like(flat_ids_T))
    padded_E = (counts_E + block_size - 1) // block_size * block_size
    padded_end_E = torch.cumsum(padded_E, 0)
    padded_start_E = padded_end_E - padded_E
    count_start_E = torch.cumsum(counts_E, 0) - counts_E

    order_T = torch.sort(flat_ids_T, stable=True).indices  # flat indices, grouped by expert
    expert_of_T = flat_ids_T[order_T]
    rank_T = torch.arange(num_pairs, device=device) - count_start_E[expert_of_T]
    sorted_token_ids = torch.full((max_padded,), num_pairs, dtype=torch.int32, device=device)
    sorted_token_ids[padded_start_E[expert_of_T] + rank_T] = order_T.to(torch.int32)

    num_post_padded = padded_end_E[-1:]
    block_start_B = torch.arange(max_blocks, device=device) * block_size
    expert_ids = torch.searchsorted(padded_end_E, block_start_B, right=True)
    expert_ids = torch.where(block_start_B < num_post_padded, expert_ids, -1)
    return sorted_token_ids, expert_ids.to(torch.int32), num_post_padded.to(torch.int32)


def gemm1_silu_mul_ref(
    x_MH: torch.Tensor, w1_EnH: torch.Tensor, topk_ids_MK: torch.Tensor
) -> torch.Tensor:
    """Grouped GEMM 1 with the SiLU-and-mul activation: returns act fp32 [T, I].

    For pair (t, k) routed to expert e: ``silu(x[t] @ gate[e].T) * (x[t] @ up[e].T)`` where
    gate = ``w1[e, :I]`` and up = ``w1[e, I:]``.
    """
    top_k = topk_ids_MK.shape[1]
    inter = w1_EnH.shape[1] // 2
    flat_ids_T = topk_ids_MK.reshape(-1).long()
    act_TI = torch.zeros(flat_ids_T.numel(), inter, dtype=torch.float32, device=x_MH.device)
    for e in torch.unique(flat_ids_T).tolist():
        pairs = (flat_ids_T == e).nonzero().squeeze(1)
        x_rows = x_MH[pairs // top_k].float()
        w1_e = w1_EnH[e].float()
        gate = x_rows @ w1_e[:inter].T
        up = x_rows @ w1_e[inter:].T
        act_TI[pairs] = F.silu(gate) * up
    return act_TI


def gemm2_weighted_ref(
    act_TI: torch.Tensor, w2_EHI: torch.Tensor, topk_weights_MK: torch.Tensor, topk_ids_MK: torch.Tensor
) -> torch.Tensor:
    """Grouped GEMM 2 with the routing weight applied: returns fp32 [T, H], row (t, k) =
    ``topk_weights[t, k] * (act[(t, k)] @ w2[e].T)``."""
    flat_ids_T = topk_ids_MK.reshape(-1).long()
    flat_w_T = topk_weights_MK.reshape(-1).float()
    out_TH = torch.zeros(flat_ids_T.numel(), w2_EHI.shape[1], dtype=torch.float32, device=act_TI.device)
    for e in torch.unique(flat_ids_T).tolist():
        pairs = (flat_ids_T == e).nonzero().squeeze(1)
        out_TH[pairs] = (act_TI[pairs].float() @ w2_EHI[e].float().T) * flat_w_T[pairs, None]
    return out_TH


def combine_ref(y_TH: torch.Tensor, top_k: int) -> torch.Tensor:
    """Sum the k weighted expert outputs of each token: [T, H] -> fp32 [M, H]."""
    return y_TH.float().reshape(-1, top_k, y_TH.shape[-1]).sum(dim=1)


def shared_expert_ref(x_MH: torch.Tensor, w1s_nH: torch.Tensor, w2s_HI: torch.Tensor) -> torch.Tensor:
    """Dense always-on expert (Llama 4): ``(silu(x @ gate.T) * (x @ up.T)) @ w2s.T`` -> fp32 [M, H]."""
    inter = w1s_nH.shape[0] // 2
    h = x_MH.float() @ w1s_nH.float().T
    return (F.silu(h[:, :inter]) * h[:, inter:]) @ w2s_HI.float().T


def fused_moe_ref(
    x_MH: torch.Tensor,
    w1_EnH: torch.Tensor,
    w2_EHI: torch.Tensor,
    topk_weights_MK: torch.Tensor,
    topk_ids_MK: torch.Tensor,
    shared_expert: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The whole layer after routing: [M, H] in x's dtype. Weights may be any float dtype."""
    act_TI = gemm1_silu_mul_ref(x_MH, w1_EnH, topk_ids_MK)
    y_TH = gemm2_weighted_ref(act_TI, w2_EHI, topk_weights_MK, topk_ids_MK)
    return _combine_shared(y_TH, x_MH, topk_ids_MK.shape[1], shared_expert)


def _combine_shared(y_TH: torch.Tensor, x_MH: torch.Tensor, top_k: int,
                    shared_expert: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """Sum each token's top_k rows, add the shared expert (if any), return in x's dtype."""
    out_MH = combine_ref(y_TH, top_k)
    if shared_expert is not None:
        out_MH = out_MH + shared_expert_ref(x_MH, *shared_expert)
    return out_MH.to(x_MH.dtype)


def _w8a8_ref(x_MH: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, topk_weights_MK: torch.Tensor,
              topk_ids_MK: torch.Tensor, fake_quant_x: Callable[[torch.Tensor], torch.Tensor],
              fake_quant_act: Callable[[torch.Tensor], torch.Tensor],
              shared_expert: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """The fp8 w8a8 layer with dequantised fp32 weights: x through `fake_quant_x` (quantise, then
    dequantise to fp32), act rounded to x's dtype and through `fake_quant_act` before GEMM 2."""
    act_TI = gemm1_silu_mul_ref(fake_quant_x(x_MH), w1, topk_ids_MK)
    y_TH = gemm2_weighted_ref(fake_quant_act(act_TI.to(x_MH.dtype)), w2, topk_weights_MK, topk_ids_MK)
    return _combine_shared(y_TH, x_MH, topk_ids_MK.shape[1], shared_expert)


# ----------------------------------------------------------------------------- fp8 w8a8 emulation


def quantize_fp8(x: torch.Tensor, scale: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor fp8 e4m3 quantisation: returns (x_q, scale fp32 [1]) with x ~= x_q * scale.

    With ``scale=None`` the scale is dynamic: amax(|x|) / 448 (floored so an all-zero x works).
    """
    if scale is None:
        scale = (x.abs().amax().float() / FP8_MAX).clamp(min=1e-12).reshape(1)
    scale = scale.float().reshape(1)
    x_q = (x.float() / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return x_q, scale


def dequantize_fp8_weight(w_q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """fp8 weight [E, N, K] with per-tensor scale [E] or per-channel scale [E, N] -> fp32 [E, N, K]."""
    s = scale.float().reshape(scale.shape[0], -1)  # [E, 1] or [E, N]
    return w_q.float() * s[:, :, None]


def fused_moe_fp8_ref(
    x_MH: torch.Tensor,
    w1_q: torch.Tensor,
    w2_q: torch.Tensor,
    w1_scale: torch.Tensor,
    w2_scale: torch.Tensor,
    topk_weights_MK: torch.Tensor,
    topk_ids_MK: torch.Tensor,
    a_scale: torch.Tensor | None = None,
    shared_expert: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Emulates the fp8 w8a8 kernel path: x quantised per tensor (static ``a_scale`` or dynamic),
    act rounded to x's dtype and then dynamically quantised per tensor before GEMM 2, weights
    dequantised with their per-tensor [E] or per-channel [E, N] scales. Runs on CPU."""
    def fake_quant(t: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        t_q, s = quantize_fp8(t, scale)
        return t_q.float() * s

    return _w8a8_ref(x_MH, dequantize_fp8_weight(w1_q, w1_scale), dequantize_fp8_weight(w2_q, w2_scale),
                     topk_weights_MK, topk_ids_MK, lambda t: fake_quant(t, a_scale), fake_quant, shared_expert)


# ------------------------------------------------------------------- block-wise fp8 (DeepSeek-V3)


def quantize_fp8_groups(x: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic fp8 quantisation per row and group of ``group`` columns: x [R, K] -> (x_q fp8 [R, K],
    scale fp32 [R, cdiv(K, group)]) with x ~= x_q * scale broadcast over each group."""
    rows, k = x.shape
    groups = -(-k // group)
    padded = torch.zeros(rows, groups * group, dtype=torch.float32, device=x.device)
    padded[:, :k] = x.float()
    scale = (padded.view(rows, groups, group).abs().amax(dim=2) / FP8_MAX).clamp(min=1e-12)
    x_q = (padded.view(rows, groups, group) / scale[:, :, None]).clamp(-FP8_MAX, FP8_MAX)
    return x_q.view(rows, -1)[:, :k].to(FP8_DTYPE).contiguous(), scale


def dequantize_fp8_groups(x_q: torch.Tensor, scale: torch.Tensor, group: int) -> torch.Tensor:
    """Inverse of ``quantize_fp8_groups``: fp32 [R, K]."""
    k = x_q.shape[1]
    return x_q.float() * scale.repeat_interleave(group, dim=1)[:, :k]


def dequantize_fp8_block_weight(w_q: torch.Tensor, scale: torch.Tensor, block_shape: tuple[int, int]) -> torch.Tensor:
    """fp8 weight [E, N, K] with one scale per (bn x bk) block, scale [E, cdiv(N, bn), cdiv(K, bk)]
    -> fp32 [E, N, K]."""
    bn, bk = block_shape
    _, n, k = w_q.shape
    full = scale.float().repeat_interleave(bn, dim=1).repeat_interleave(bk, dim=2)[:, :n, :k]
    return w_q.float() * full


def fused_moe_fp8_block_ref(
    x_MH: torch.Tensor,
    w1_q: torch.Tensor,
    w2_q: torch.Tensor,
    w1_scale: torch.Tensor,
    w2_scale: torch.Tensor,
    topk_weights_MK: torch.Tensor,
    topk_ids_MK: torch.Tensor,
    block_shape: tuple[int, int] = (128, 128),
    shared_expert: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Emulates the block-wise fp8 kernel path: x and act (rounded to x's dtype) quantised per
    token and group of bk columns, weights dequantised per (bn x bk) block. Runs on CPU."""
    bk = block_shape[1]

    def fake_quant(t: torch.Tensor) -> torch.Tensor:
        return dequantize_fp8_groups(*quantize_fp8_groups(t, bk), bk)

    return _w8a8_ref(x_MH, dequantize_fp8_block_weight(w1_q, w1_scale, block_shape),
                     dequantize_fp8_block_weight(w2_q, w2_scale, block_shape), topk_weights_MK, topk_ids_MK,
                     fake_quant, fake_quant, shared_expert)


def quantize_fp8_block_weight(w: torch.Tensor, block_shape: tuple[int, int] = (128, 128)
                              ) -> tuple[torch.Tensor, torch.Tensor]:
    """w [E, N, K] -> (w_q fp8 [E, N, K], scale fp32 [E, cdiv(N, bn), cdiv(K, bk)]), amax per block."""
    bn, bk = block_shape
    e, n, k = w.shape
    nb, kb = -(-n // bn), -(-k // bk)
    padded = torch.zeros(e, nb * bn, kb * bk, dtype=torch.float32, device=w.device)
    padded[:, :n, :k] = w.float()
    blocks = padded.view(e, nb, bn, kb, bk)
    scale = (blocks.abs().amax(dim=(2, 4)) / FP8_MAX).clamp(min=1e-12)
    w_q = (blocks / scale[:, :, None, :, None]).clamp(-FP8_MAX, FP8_MAX).view(e, nb * bn, kb * bk)
    return w_q[:, :n, :k].to(FP8_DTYPE).contiguous(), scale
