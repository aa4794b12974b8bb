"""A workload step lowered to operators, per chip of one pipeline stage.

LLM steps: `prefill` (a chunk of `tokens` prompt tokens attending on average to `context`
positions) and `decode` (a batch of `tokens` sequences, one new token each, at `context`).
Ranking steps: a batch of samples through embedding bags, bottom MLP, interaction and top MLP.

Sharding (per replica of tp x dp x pp chips): attention heads and dense FFNs split tp ways; with
attention data parallelism (dp > 1) the replica's tokens split dp ways over dp groups of tp chips,
each holding the attention and dense weights; experts split ep ways (ep divides tp x dp) and each
expert's FFN tp x dp / ep ways; layers split pp ways. TP ends attention and FFN with an all-reduce;
EP moves routed tokens with an all-to-all each way.
`tokens` and `context` may be arrays: the operators carry the broadcast shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from accelsim import ops as O
from accelsim.errors import UserError
from accelsim.spec.chip import DTYPE_BYTES
from accelsim.spec.model import LLM, Ranking

Phase = Literal["prefill", "decode"]


@dataclass(frozen=True)
class Parallel:
    tp: int = 1
    ep: int = 1
    pp: int = 1
    dp: int = 1  # attention data parallel: tp groups that each run attention on their own sequences

    @property
    def chips(self) -> int:
        return self.tp * self.dp * self.pp

    @property
    def moe_group(self) -> int:
        """Chips of one pipeline stage, over which the experts are spread (tp x dp)."""
        return self.tp * self.dp

    def validate(self, model: LLM) -> None:
        for key in ("tp", "ep", "pp", "dp"):
            if getattr(self, key) < 1:
                raise UserError(f"--{key} must be >= 1, got {getattr(self, key)}")
        if model.num_heads % self.tp:
            raise UserError(f"--tp {self.tp} does not divide the {model.num_heads} attention heads of {model.name}")
        kv = model.num_kv_heads
        if model.attention.kind == "gqa" and kv % self.tp and self.tp % kv:
            raise UserError(f"--tp {self.tp} and the {kv} KV heads of {model.name} must divide one another")
        if self.pp > model.num_layers:
            raise UserError(f"--pp {self.pp} exceeds the {model.num_layers} layers of {model.name}")
        if self.ep > 1:
            if model.moe is None:
                raise UserError(f"--ep {self.ep} needs an MoE model; {model.name} is dense")
            if self.dp > 1 and self.ep != self.moe_group:
                raise UserError(f"with --attention-dp, --ep {self.ep} must equal tp x dp = {self.moe_group} "
                                "(experts are spread over every chip of the stage)")
            if self.moe_group % self.ep:
                raise UserError(f"--ep {self.ep} must divide --tp {self.tp} (experts are spread over the TP group); "
                                "for wider EP add --attention-dp")
            if model.moe.num_experts % self.ep:
                raise UserError(f"--ep {self.ep} does not divide the {model.moe.num_experts} experts of {model.name}")


@dataclass(frozen=True)
class Precision:
    """Storage formats; matmuls compute in the weight format (w8a8 / w4a4 style, the chip's
    fallback applies), attention computes in the KV format or bf16, whichever is wider."""

    weights: str = "bf16"
    activations: str = "bf16"
    kv: str = "bf16"

    @property
    def w_bytes(self) -> float:
        return DTYPE_BYTES[self.weights]

    @property
    def a_bytes(self) -> float:
        return DTYPE_BYTES[self.activations]

    @property
    def kv_bytes(self) -> float:
        return DTYPE_BYTES[self.kv]

    @classmethod
    def for_serving(cls, dtype: str, kv_dtype: str | None = None) -> Precision:
        """The formats a `--dtype` flag means: weights in `dtype`, bf16 activations, and the KV cache
        in fp8 when the weights are fp8 or fp4 (as serving engines quantise it), unless `kv_dtype`."""
        return cls(weights=dtype, activations="bf16", kv=kv_dtype or ("fp8" if dtype in ("fp8", "fp4") else "bf16"))

    @property
    def attn_dtype(self) -> str:
        return "fp8" if self.kv in ("fp8", "fp4") else "bf16"


# Load-imbalance factor of routed tokens on the busiest EP rank (assumed: uniform routing with
# measured skew of real routers is typically 1.1-1.3x the mean; 1.0 when experts are not split).
MOE_IMBALANCE = 1.15


def llm_ops(model: LLM, par: Parallel, prec: Precision, phase: Phase, tokens: ArrayLike,
            context: ArrayLike, *, prefill_sequences: ArrayLike = 1.0) -> list[O.Op]:
    """Operators of one step on one chip of a pipeline stage (num_layers / pp layers), plus the LM
    head once per step (counted on every stage: the slowest stage sets the pace).
    prefill_sequences: prompts whose last token is in this prefill chunk (rows of the LM head)."""
    t = np.asarray(tokens, dtype=np.float64)
    ctx = np.asarray(context, dtype=np.float64)
    n_layers = model.num_layers / par.pp
    frac = n_layers / model.num_layers  # share of each layer type on this stage
    d, tp = model.hidden_size, par.tp
    a, w, gd = prec.a_bytes, prec.w_bytes, prec.weights
    g = dict(dtype=gd, a_bytes=a, w_bytes=w, out_bytes=a)
    out: list[O.Op] = [O.elementwise("norms_residual", t * d, dtype="bf16", bytes_per_elem=6 * a, calls=n_layers)]
    out += _attention(model, par, prec, phase, t, ctx, frac)
    if tp > 1:
        out.append(O.all_reduce("attn_allreduce", t * d * a, tp, dtype="bf16", calls=n_layers))

    n_dense = model.num_dense_layers * frac
    if n_dense:
        i = model.intermediate_size / tp
        out += [O.gemm("ffn_gate_up", t, 2 * i, d, **g, calls=n_dense),
                O.elementwise("ffn_act", t * i, dtype="bf16", bytes_per_elem=3 * a, calls=n_dense),
                O.gemm("ffn_down", t, d, i, **g, calls=n_dense)]
        if tp > 1:
            out.append(O.all_reduce("ffn_allreduce", t * d * a, tp, dtype="bf16", calls=n_dense))
    n_moe = model.num_moe_layers * frac
    if n_moe and model.moe is not None:
        out += _moe(model, par, prec, t, n_moe)
    rows = t if phase == "decode" else np.asarray(prefill_sequences, dtype=np.float64)
    out += [O.elementwise("embed_lookup", t * d, dtype="bf16", bytes_per_elem=2 * a),
            O.gemm("lm_head", rows, model.vocab_size / tp, d, **g)]
    return out


def _attention(model: LLM, par: Parallel, prec: Precision, phase: Phase, t: np.ndarray, ctx: np.ndarray,
               frac: float) -> list[O.Op]:
    d, tp, at = model.hidden_size, par.tp, model.attention
    a, g = prec.a_bytes, dict(dtype=prec.weights, a_bytes=prec.a_bytes, w_bytes=prec.w_bytes, out_bytes=prec.a_bytes)
    hc = model.num_heads / tp
    n_layers = model.num_layers * frac
    n_local = model.num_local_attention_layers * frac
    attn = O.attention_decode if phase == "decode" else O.attention_prefill
    # Decode attends to the whole context; a prefill token attends on average to half its prompt
    # (the caller passes the average context for prefill).
    spans = [(n_layers - n_local, ctx)]
    if n_local:
        spans.append((n_local, np.minimum(ctx, at.chunk_size)))
    kv = dict(dtype=prec.attn_dtype, act_bytes=a, kv_bytes=prec.kv_bytes)
    out: list[O.Op] = []
    if at.kind == "mla":
        qk = at.qk_nope_head_dim + at.qk_rope_head_dim
        latent = at.kv_lora_rank + at.qk_rope_head_dim
        out += [O.gemm("mla_down", t, at.q_lora_rank + latent, d, **g, calls=n_layers),
                O.gemm("mla_q_up", t, hc * qk, at.q_lora_rank or d, **g, calls=n_layers)]
        if phase == "decode":  # absorbed form: heads attend over the shared latent
            out.append(O.gemm("mla_absorb_k", t, hc * at.kv_lora_rank, at.qk_nope_head_dim, **g, calls=n_layers))
            out += [attn("attention", t, c, heads=hc, qk_dim=latent, v_dim=at.kv_lora_rank,
                         kv_elems_per_token=latent, **kv, calls=n) for n, c in spans if n]
            out.append(O.gemm("mla_absorb_v", t, hc * at.v_head_dim, at.kv_lora_rank, **g, calls=n_layers))
        else:  # prefill expands the latent to per-head keys and values for the new tokens
            out.append(O.gemm("mla_kv_up", t, hc * (at.qk_nope_head_dim + at.v_head_dim), at.kv_lora_rank,
                              **g, calls=n_layers))
            out += [attn("attention", t, c, heads=hc, qk_dim=qk, v_dim=at.v_head_dim,
                         kv_elems_per_token=latent, **kv, calls=n) for n, c in spans if n]
        out.append(O.gemm("o_proj", t, d, hc * at.v_head_dim, **g, calls=n_layers))
        return out
    kvh = max(1.0, model.num_kv_heads / tp)  # KV heads are replicated when tp exceeds them
    hd = model.head_dim
    out.append(O.gemm("qkv_proj", t, (hc + 2 * kvh) * hd, d, **g, calls=n_layers))
    out += [attn("attention", t, c, heads=hc, qk_dim=hd, v_dim=hd, kv_elems_per_token=2 * kvh * hd, **kv, calls=n)
            for n, c in spans if n]
    out.append(O.gemm("o_proj", t, d, hc * hd, **g, calls=n_layers))
    return out


def _moe(model: LLM, par: Parallel, prec: Precision, t: np.ndarray, n_moe: float) -> list[O.Op]:
    m = model.moe
    assert m is not None
    d, tp, ep = model.hidden_size, par.tp, par.ep
    a = prec.a_bytes
    tp_e = tp // ep  # each expert's FFN is split over the ranks that share it
    local_experts = m.num_experts / ep
    imbalance = MOE_IMBALANCE if ep > 1 else 1.0
    # Tokens routed to this rank's experts, and how many of them the batch touches.
    active = O.expected_experts_hit(t, m.num_experts, m.top_k) / ep
    tokens_here = t * imbalance / ep  # moe ops multiply by top_k
    out = [O.gemm("router", t, m.num_experts, d, dtype="bf16", a_bytes=a, w_bytes=2.0, out_bytes=4.0, calls=n_moe)]
    out += O.fused_moe_ops(tokens_here, d, m.expert_intermediate_size / tp_e, m.num_experts, m.top_k,
                           act_bytes=a, weight_bytes=prec.w_bytes, dtype=prec.weights,
                           experts_active=np.minimum(active, local_experts), calls=n_moe)
    if m.num_shared_experts:
        i = m.num_shared_experts * m.shared_intermediate_size / tp
        g = dict(dtype=prec.weights, a_bytes=a, w_bytes=prec.w_bytes, out_bytes=a)
        out += [O.gemm("shared_gate_up", t, 2 * i, d, **g, calls=n_moe),
                O.gemm("shared_down", t, d, i, **g, calls=n_moe)]
    if ep > 1:
        payload = t * m.top_k * d * a / tp  # each rank ships its share of the routed rows
        out += [O.all_to_all("moe_dispatch", payload, ep, dtype="bf16", calls=n_moe),
                O.all_to_all("moe_combine_a2a", payload, ep, dtype="bf16", calls=n_moe)]
    if tp > 1:
        out.append(O.all_reduce("moe_allreduce", t * d * a, tp, dtype="bf16", calls=n_moe))
    return out


def ranking_ops(model: Ranking, chips: int, prec: Precision, samples: ArrayLike) -> list[O.Op]:
    """One step on one chip: `samples` per chip, tables sharded over `chips` (model parallel),
    dense layers data parallel; pooled embeddings move with one all-to-all."""
    s = np.asarray(samples, dtype=np.float64)
    e, a = model.embedding_dim, prec.a_bytes
    # each chip looks up its shard of the tables for the whole global batch (s * chips samples)
    out = [O.embedding_bag("embedding_bags", s * chips, model.lookups_per_sample / chips, model.num_tables / chips,
                           e, dtype="bf16", row_bytes=prec.w_bytes, out_bytes=a)]
    if chips > 1:
        out.append(O.all_to_all("pooled_all_to_all", s * model.num_tables * e * a, chips, dtype="bf16"))
    g = dict(dtype=prec.weights, a_bytes=a, w_bytes=prec.w_bytes, out_bytes=a)
    out += [O.gemm(f"mlp_{i}", s, n_out, n_in, **g) for i, (n_in, n_out) in enumerate(model.mlp_layers())]
    n = model.num_tables + 1
    if model.interaction == "dot":  # pairwise dot products of the n vectors: a batched [n,e]x[e,n]
        out.append(O.gemm("dot_interaction", s * n, n, e, **g))
    out.append(O.elementwise("activations", s * sum(o for _, o in model.mlp_layers()), dtype="bf16",
                             bytes_per_elem=2 * a))
    return out
