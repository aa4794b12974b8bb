"""What fits on a chip: weights + KV cache + activations + reserve → the largest batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.spec.chip import Chip
from accelsim.spec.model import LLM, Ranking

# Fraction of capacity kept free for the runtime, fragmentation and CUDA-graph pools
# (assumed: vLLM's default gpu_memory_utilization is 0.9).
RESERVE_FRACTION = 0.10
# Live activation bytes per token of a prefill chunk, in units of hidden_size elements
# (assumed: residual, norm output, QKV, attention output and the FFN intermediate alive at once).
ACTIVATION_HIDDEN_MULTIPLE = 16


@dataclass(frozen=True)
class MemoryPlan:
    capacity_bytes: float
    reserve_bytes: float
    weight_bytes: float  # per chip
    activation_bytes: float
    kv_bytes_per_seq: float  # per chip, at the planned context
    max_batch: int

    @property
    def free_for_kv_bytes(self) -> float:
        return self.capacity_bytes - self.reserve_bytes - self.weight_bytes - self.activation_bytes

    def to_dict(self) -> dict[str, float]:
        return {**self.__dict__, "free_for_kv_bytes": self.free_for_kv_bytes}


def llm_weight_bytes_per_chip(model: LLM, par: Parallel, prec: Precision) -> float:
    """Weights on one chip. Everything is split tp x pp ways (experts: ep x tp/ep = tp ways)."""
    return model.total_params * prec.w_bytes / (par.tp * par.pp)


def kv_bytes_per_seq(model: LLM, par: Parallel, prec: Precision, context: ArrayLike) -> np.ndarray:
    """KV-cache bytes one sequence at `context` tokens holds on one chip."""
    per_layer = model.kv_elems_per_token_per_layer()
    if model.attention.kind == "gqa":  # heads split over tp, but never fewer than one per chip
        per_layer = 2 * max(1.0, model.num_kv_heads / par.tp) * model.head_dim
    return model.kv_tokens_held(context) / par.pp * per_layer * prec.kv_bytes


def plan_llm(chip: Chip, model: LLM, par: Parallel, prec: Precision, context: float,
             chunk_tokens: int = 8192) -> MemoryPlan:
    """The largest batch of sequences at `context` tokens that fits; raises if none does."""
    cap = chip.mem_capacity_bytes
    reserve = RESERVE_FRACTION * cap
    weights = llm_weight_bytes_per_chip(model, par, prec)
    act = chunk_tokens * model.hidden_size * ACTIVATION_HIDDEN_MULTIPLE * prec.a_bytes / par.tp
    kv = float(kv_bytes_per_seq(model, par, prec, context))
    free = cap - reserve - weights - act
    max_batch = int(free // kv) if free > 0 else 0
    plan = MemoryPlan(cap, reserve, weights, act, kv, max_batch)
    if max_batch < 1:
        gb = 1e9
        raise UserError(
            f"{model.name} does not fit on {par.chips} x {chip.name} (tp={par.tp}, pp={par.pp}): per chip "
            f"weights {weights / gb:.1f} GB + activations {act / gb:.1f} GB + reserve {reserve / gb:.1f} GB + one "
            f"sequence's KV {kv / gb:.2f} GB > capacity {cap / gb:.1f} GB; use more chips or a smaller --dtype"
        )
    return plan


def ranking_weight_bytes_per_chip(model: Ranking, chips: int, prec: Precision) -> float:
    """Ranking weights one chip holds: its shard of the tables plus the replicated dense layers."""
    return model.embedding_params * prec.w_bytes / chips + model.dense_params * prec.w_bytes


def ranking_capacity_check(chip: Chip, model: Ranking, chips: int, prec: Precision) -> float:
    """Embedding tables are sharded over the chips, dense weights replicated; returns the bytes
    left per chip, or raises naming the shortfall."""
    per_chip = ranking_weight_bytes_per_chip(model, chips, prec)
    usable = chip.mem_capacity_bytes * (1 - RESERVE_FRACTION)
    if per_chip > usable:
        need = int(np.ceil(model.embedding_params * prec.w_bytes / (usable - model.dense_params * prec.w_bytes)))
        raise UserError(
            f"{model.name} needs {per_chip / 1e9:.1f} GB per chip on {chips} x {chip.name} but {usable / 1e9:.1f} GB "
            f"is usable; use --chips {need} or more, or a smaller --dtype"
        )
    return usable - per_chip
