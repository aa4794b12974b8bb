"""What fits on a chip: weights + KV cache + activations + reserve → the largest batch.

KV is planned as paged engines (vLLM, TRT-LLM) hold it: blocks are allocated as tokens are written
and freed when a sequence ends, so a running batch holds its tokens in flight, not every sequence's
maximum. With continuous batching the B running sequences sit uniformly along their outputs, so
on average each holds `input_len + output_len / 2` tokens (`held_context`); when the blocks run out
the engine preempts the newest sequence and recomputes it later, which absorbs the fluctuation
around that mean. The rule: a batch B fits when B x KV(held_context) fits in what weights,
activations and the reserve leave (`MemoryPlan.max_batch_paged`: a pinned `--batch` is honoured up
to it); a layout is refused only when one sequence at its full context (`input_len + output_len`)
cannot fit at all. Batch searches propose at most `max_batch` (every sequence at full context):
requests of one fixed length started together (an offline benchmark) run in lockstep and reach
their full context at the same time, so beyond it they would preempt each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.ranking import Placement, candidate_plans, embedding_bytes_per_elem, table_bytes
from accelsim.spec.chip import Chip
from accelsim.spec.model import LLM, Ranking

# Max batched prefill tokens per iteration (vLLM/TRT-LLM-like default; assumed): the chunk whose
# activations memory reserves, and the chunk `predict` and the simulator's engine default to.
CHUNK_TOKENS = 8192
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
    kv_bytes_per_seq: float  # per chip, at the full context
    max_batch: int  # every sequence at its full context: no preemption even in lockstep
    max_batch_paged: int = 0  # KV at `held_context`: what a paged engine keeps running (module docstring)

    @property
    def free_for_kv_bytes(self) -> float:
        return self.capacity_bytes - self.reserve_bytes - self.weight_bytes - self.activation_bytes

    def to_dict(self) -> dict[str, float]:
        return {**self.__dict__, "free_for_kv_bytes": self.free_for_kv_bytes}


def llm_weight_bytes_per_chip(model: LLM, par: Parallel, prec: Precision) -> float:
    """Weights on one chip. Everything is split tp x pp ways (experts: ep x tp/ep = tp ways); with
    attention data parallelism each dp group holds the non-expert weights and the experts are split
    over all tp x dp chips of a stage."""
    experts = model.routed_expert_params  # in their own format (`Precision.expert_w_bytes`: MXFP4 for gpt-oss)
    return ((model.total_params - experts) * prec.w_bytes / par.tp
            + experts * prec.expert_w_bytes / par.moe_group) / par.pp


def kv_bytes_per_seq(model: LLM, par: Parallel, prec: Precision, context: ArrayLike) -> np.ndarray:
    """KV-cache bytes one sequence at `context` tokens holds on one chip."""
    per_layer = model.kv_elems_per_token_per_layer()
    if model.attention.kind == "gqa":  # heads split over tp, but never fewer than one per chip
        per_layer = 2 * max(1.0, model.num_kv_heads / par.tp) * model.head_dim
    return model.kv_tokens_held(context) / par.pp * per_layer * prec.kv_bytes


def held_context(context: float, output_len: float = 0.0) -> float:
    """Tokens a sequence of at most `context` tokens, `output_len` of them generated, holds on
    average while it runs in a paged engine (module docstring): context - output_len / 2."""
    return context - output_len / 2


def plan_llm(chip: Chip, model: LLM, par: Parallel, prec: Precision, context: float,
             chunk_tokens: int = CHUNK_TOKENS, *, output_len: float = 0.0,
             extra_weight_bytes: float = 0.0) -> MemoryPlan:
    """The largest batch of sequences of at most `context` tokens (`output_len` of them generated)
    that fits, with KV planned at `held_context` (module docstring; output_len = 0 plans every
    sequence at its full context). `extra_weight_bytes` per chip join the weights (a speculative
    decoding draft model). Raises UserError if one sequence at `context` cannot fit."""
    cap = chip.mem_capacity_bytes
    reserve = RESERVE_FRACTION * cap
    weights = llm_weight_bytes_per_chip(model, par, prec) + extra_weight_bytes
    act = chunk_tokens * model.hidden_size * ACTIVATION_HIDDEN_MULTIPLE * prec.a_bytes / par.tp
    kv = float(kv_bytes_per_seq(model, par, prec, context))
    kv_held = float(kv_bytes_per_seq(model, par, prec, held_context(context, output_len)))
    free = cap - reserve - weights - act
    # each attention-DP group holds its own sequences
    max_batch = par.dp * int(free // kv) if free > 0 else 0
    plan = MemoryPlan(cap, reserve, weights, act, kv, max_batch, par.dp * int(free // kv_held) if max_batch else 0)
    if max_batch < 1:
        gb = 1e9
        raise UserError(
            f"{model.name} does not fit on {par.chips} x {chip.name} (tp={par.tp}, pp={par.pp}): per chip "
            f"weights {weights / gb:.1f} GB + activations {act / gb:.1f} GB + reserve {reserve / gb:.1f} GB + one "
            f"sequence's KV {kv / gb:.2f} GB > capacity {cap / gb:.1f} GB; use more chips or a smaller --dtype"
        )
    return plan


def ranking_weight_bytes_per_chip(model: Ranking, chips: int, prec: Precision,
                                  placement: Placement | None = None) -> float:
    """Ranking weights one chip holds: the largest share of the tables any chip of a group of
    `chips` holds under `placement` (None: the placement that holds least) plus the replicated
    dense layers."""
    elem = embedding_bytes_per_elem(model, prec.weights)
    held = min(p.held_bytes for p in candidate_plans(model, chips, elem, placement))
    return held + model.dense_params * prec.w_bytes


def ranking_capacity_check(chip: Chip, model: Ranking, chips: int, prec: Precision,
                           placement: Placement | None = None) -> float:
    """Whether a group of `chips` holds the tables (sharded by `placement`; None: any scheme) and
    the replicated dense weights: returns the bytes left per chip, or raises naming the shortfall."""
    if not candidate_plans(model, chips, embedding_bytes_per_elem(model, prec.weights), placement):
        raise UserError(f"no placement of {model.name}'s {model.num_tables} tables over {chips} chips")
    per_chip = ranking_weight_bytes_per_chip(model, chips, prec, placement)
    usable = chip.mem_capacity_bytes * (1 - RESERVE_FRACTION)
    if per_chip > usable:
        tables = float(table_bytes(model, embedding_bytes_per_elem(model, prec.weights)).sum())
        need = int(np.ceil(tables / max(usable - model.dense_params * prec.w_bytes, 1.0)))
        raise UserError(
            f"{model.name} needs {per_chip / 1e9:.1f} GB per chip on {chips} x {chip.name} but {usable / 1e9:.1f} GB "
            f"is usable; use --chips {need} or more, or a smaller --dtype"
        )
    return usable - per_chip
