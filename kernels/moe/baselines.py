"""Peer implementations the Triton layer is benchmarked against (same contract as ``fused_moe_ref``).

- ``grouped_mm_moe``: PyTorch-native: sort the (token, k) pairs by expert, two ``torch._grouped_mm``
  calls with SiLU*up between, weight, un-permute, sum over k. No padding, no host sync.
- ``per_expert_loop_moe``: the eager loop of Hugging Face-style MoE blocks: one dense GEMM pair per
  expert that has tokens (one host sync to list them), results index-added into the output.

Both take routing already computed (``topk_route``) and compute in the input dtype with the
matmul's own fp32 accumulation, as production code would. Shape legend as in reference.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _shared(x_MH: torch.Tensor, w1s: torch.Tensor, w2s: torch.Tensor) -> torch.Tensor:
    inter = w1s.shape[0] // 2
    h = x_MH @ w1s.T
    return ((F.silu(h[:, :inter]) * h[:, inter:]) @ w2s.T).float()


def grouped_mm_moe(
    x_MH: torch.Tensor,
    w1_EnH: torch.Tensor,
    w2_EHI: torch.Tensor,
    topk_weights_MK: torch.Tensor,
    topk_ids_MK: torch.Tensor,
    shared_expert: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """MoE through ``torch._grouped_mm`` (torch >= 2.8 on Hopper; later also other GPUs and CPU).

    ``_grouped_mm(a [T, K], b [E, K, N], offs int32 [E])`` multiplies row group e (rows
    ``offs[e-1]:offs[e]``) by ``b[e]``; the weights are passed as transposed views of the [E, N, K]
    storage (column-major B, no copy). Needs every stride to be a multiple of 16 bytes, i.e. H and
    I multiples of 8 for 16-bit dtypes. Returns [M, H] in x's dtype.
    """
    m, hidden = x_MH.shape
    top_k = topk_ids_MK.shape[1]
    num_experts, inter = w1_EnH.shape[0], w2_EHI.shape[2]
    flat_ids_T = topk_ids_MK.reshape(-1).long()
    order_T = torch.sort(flat_ids_T, stable=True).indices  # pairs grouped by expert
    counts_E = torch.zeros(num_experts, dtype=torch.long, device=x_MH.device)
    counts_E.scatter_add_(0, flat_ids_T, torch.ones_like(flat_ids_T))  # bincount would sync on CUDA
    offs_E = torch.cumsum(counts_E, 0).to(torch.int32)

    x_sorted_TH = x_MH[order_T // top_k]
    h_Tn = torch._grouped_mm(x_sorted_TH, w1_EnH.transpose(1, 2), offs=offs_E)
    act_TI = F.silu(h_Tn[:, :inter]) * h_Tn[:, inter:]
    y_sorted_TH = torch._grouped_mm(act_TI, w2_EHI.transpose(1, 2), offs=offs_E)
    y_sorted_TH = y_sorted_TH.float() * topk_weights_MK.reshape(-1)[order_T, None].float()

    y_TH = torch.empty_like(y_sorted_TH)
    y_TH[order_T] = y_sorted_TH  # back to (token, k) order
    out_MH = y_TH.view(m, top_k, hidden).sum(dim=1)
    if shared_expert is not None:
        out_MH += _shared(x_MH, *shared_expert)
    return out_MH.to(x_MH.dtype)


def per_expert_loop_moe(
    x_MH: torch.Tensor,
    w1_EnH: torch.Tensor,
    w2_EHI: torch.Tensor,
    topk_weights_MK: torch.Tensor,
    topk_ids_MK: torch.Tensor,
    shared_expert: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Eager per-expert loop: for each expert hit, gather its tokens, two GEMMs, index_add.

    Returns [M, H] in x's dtype; the sum over experts is kept in fp32.
    """
    inter = w2_EHI.shape[2]
    out_MH = torch.zeros(x_MH.shape, dtype=torch.float32, device=x_MH.device)
    for e in torch.unique(topk_ids_MK).tolist():
        token_idx, k_idx = torch.where(topk_ids_MK == e)
        h = x_MH[token_idx] @ w1_EnH[e].T
        act = F.silu(h[:, :inter]) * h[:, inter:]
        y = (act @ w2_EHI[e].T).float() * topk_weights_MK[token_idx, k_idx, None].float()
        out_MH.index_add_(0, token_idx, y)
    if shared_expert is not None:
        out_MH += _shared(x_MH, *shared_expert)
    return out_MH.to(x_MH.dtype)
