"""A workload step lowered to operators, per chip of one pipeline stage.

LLM steps: `prefill` (a chunk of `tokens` prompt tokens attending on average to `context`
positions, optionally with `decode_seqs` sequences decoding in the same forward pass: chunked
prefill) and `decode` (a batch of `tokens` sequences, one new token each, at `context`).
Ranking steps: a batch of samples through embedding bags, bottom MLP, interaction and top MLP.

Sharding (per replica of tp x dp x pp chips): attention heads and dense FFNs split tp ways; with
attention data parallelism (dp > 1) the replica's tokens split dp ways over dp groups of tp chips,
each holding the attention and dense weights; experts split ep ways (ep divides tp x dp) and each
expert's FFN tp x dp / ep ways; layers split pp ways. TP ends attention and FFN with an all-reduce;
with attention DP, EP moves routed tokens with an all-to-all each way (within one TP group every chip
already holds every token). The busiest EP rank's load comes from the routing skew (`moe_rank_load`).
`tokens` and `context` may be arrays: the operators carry the broadcast shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from accelsim import ops as O
from accelsim import ranking as R
from accelsim.errors import UserError
from accelsim.ranking import ShardPlan
from accelsim.spec.chip import DTYPE_BYTES
from accelsim.spec.model import LLM, Ranking

F = O.F

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
    def gemm_dtype(self) -> str:
        """The format matmuls compute in: mxfp4 is weight-only (its expert GEMMs dequantise to bf16)."""
        return "bf16" if self.weights == "mxfp4" else self.weights

    @property
    def w_bytes(self) -> float:
        """Bytes per weight of every matmul but the routed experts' (mxfp4 keeps those in bf16)."""
        return DTYPE_BYTES[self.gemm_dtype]

    @property
    def expert_w_bytes(self) -> float:
        """Bytes per weight of the routed experts (MXFP4: 4 bits + one 8-bit scale per 32)."""
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


# Coefficient of variation of expert popularity over a serving batch (assumed: trained routers with a
# load-balancing loss still give some experts a few times the tokens of others; published per-expert
# load histograms of Mixtral/DeepSeek/Qwen MoE show a spread of about 0.3-0.5 of the mean).
ROUTING_SKEW_CV = 0.4


def busiest_rank_factor(mean: ArrayLike, rel_var: ArrayLike, ranks: int) -> F:
    """E[max over `ranks` ranks] / mean of a per-rank load with relative variance `rel_var`:
    1 + sqrt(2 ln ranks) * sqrt(rel_var) (the expected maximum of `ranks` normal draws), at most
    `ranks` (everything on one rank). 1 for one rank. `mean` only masks empty loads."""
    if ranks <= 1:
        return np.ones_like(np.asarray(mean, dtype=np.float64))
    f = 1.0 + np.sqrt(2 * np.log(ranks)) * np.sqrt(np.asarray(rel_var, dtype=np.float64))
    return np.where(np.asarray(mean) > 0, np.minimum(f, ranks), 1.0)


def moe_rank_load(tokens: ArrayLike, experts: int, top_k: int, ep: int, *,
                  skew_cv: float = ROUTING_SKEW_CV) -> tuple[F, F]:
    """(routed rows, distinct experts hit) on the busiest of `ep` expert-parallel ranks for a batch
    of `tokens` tokens. Rows: tokens x top_k spread multinomially over the ranks, plus the routing
    skew (a rank's popularity is the sum of E/ep experts' popularities of CV `skew_cv`):
        rel_var = (1 - 1/ep) / (tokens x top_k / ep) + skew_cv^2 / (E / ep)
    Experts hit: each of a rank's E/ep experts is hit with probability p = hit / E (binomial)."""
    t = np.asarray(tokens, dtype=np.float64)
    rows = t * top_k / ep
    local = experts / ep
    rows_var = (1 - 1 / ep) / np.maximum(rows, 1e-9) + skew_cv**2 / local
    hit = O.expected_experts_hit(t, experts, top_k)
    p = np.clip(hit / experts, 1e-9, 1.0)
    hit_here = hit / ep * busiest_rank_factor(hit, (1 - p) / (p * local), ep)
    return rows * busiest_rank_factor(rows, rows_var, ep), np.minimum(hit_here, local)


def llm_ops(model: LLM, par: Parallel, prec: Precision, phase: Phase, tokens: ArrayLike,
            context: ArrayLike, *, prefill_sequences: ArrayLike = 1.0, decode_seqs: ArrayLike = 0.0,
            decode_context: ArrayLike = 1.0, balanced: bool = False) -> list[O.Op]:
    """Operators of one step on one chip of a pipeline stage (num_layers / pp layers), plus the LM
    head once per step (counted on every stage: the slowest stage sets the pace).
    prefill_sequences: prompts whose last token is in this prefill chunk (rows of the LM head).
    decode_seqs, decode_context (prefill only): sequences decoding in the same step, at that context.
    A chunked-prefill engine runs them in one forward pass with the chunk: every matmul reads its
    weights once for all `tokens + decode_seqs` rows; only the attention core is split.
    balanced: MoE experts carry the mean rank's load, not the busiest rank's (`moe_rank_load`):
    the busiest rank sets the time, the mean rank the energy."""
    dp = par.dp  # tokens of one attention-DP group (all, when dp = 1)
    dseq = np.asarray(decode_seqs, dtype=np.float64) / dp if phase == "prefill" else np.zeros(())
    t_new = np.asarray(tokens, dtype=np.float64) / dp
    t = t_new + dseq  # rows of every token-wise operator
    ctx = np.asarray(context, dtype=np.float64)
    n_layers = model.num_layers / par.pp
    frac = n_layers / model.num_layers  # share of each layer type on this stage
    d, tp = model.hidden_size, par.tp
    a, w, gd = prec.a_bytes, prec.w_bytes, prec.gemm_dtype
    g = dict(dtype=gd, a_bytes=a, w_bytes=w, out_bytes=a)
    out: list[O.Op] = [O.elementwise("norms_residual", t * d, dtype="bf16", bytes_per_elem=6 * a, calls=n_layers)]
    # a step with no prompt tokens reads no prompt context
    cores = [(phase, t_new, np.where(t_new > 0, ctx, 0.0) if phase == "prefill" else ctx)]
    if np.any(dseq > 0):
        cores.append(("decode", dseq, np.asarray(decode_context, dtype=np.float64)))
    out += _attention(model, par, prec, t, cores, frac)
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
        out += _moe(model, par, prec, t, n_moe, balanced)
    rows = t if phase == "decode" else np.asarray(prefill_sequences, dtype=np.float64) / dp + dseq
    out += [O.elementwise("embed_lookup", t * d, dtype="bf16", bytes_per_elem=2 * a),
            O.gemm("lm_head", rows, model.vocab_size / tp, d, **g)]
    return out


def sampler_ops(model: LLM, rows: ArrayLike, bytes_per_logit: float) -> list[O.Op]:
    """The sampler of one step: `rows` sequences each draw a token from `vocab_size` logits, moving
    `bytes_per_logit` bytes per logit (softmax, top-k/top-p sort, cumulative sum, the draw; a
    software-stack property). Nothing when the stack fuses sampling into the LM head (0 bytes)."""
    if bytes_per_logit <= 0:
        return []
    r = np.asarray(rows, dtype=np.float64)
    return [O.elementwise("sampler", r * model.vocab_size, dtype="bf16", bytes_per_elem=bytes_per_logit)]


def _attention(model: LLM, par: Parallel, prec: Precision, t: np.ndarray,
               cores: list[tuple[Phase, np.ndarray, np.ndarray]], frac: float) -> list[O.Op]:
    """The attention block: projections over all `t` rows of the step, then one attention core per
    (phase, tokens, context) in `cores` (a mixed step has a prefill and a decode core)."""
    d, tp, at = model.hidden_size, par.tp, model.attention
    a, g = prec.a_bytes, dict(dtype=prec.gemm_dtype, a_bytes=prec.a_bytes, w_bytes=prec.w_bytes, out_bytes=prec.a_bytes)
    hc = model.num_heads / tp
    n_layers = model.num_layers * frac
    n_local = model.num_local_attention_layers * frac
    kv = dict(dtype=prec.attn_dtype, act_bytes=a, kv_bytes=prec.kv_bytes)

    def spans(ctx: np.ndarray) -> list[tuple[float, np.ndarray]]:
        # Decode attends to the whole context; a prefill token attends on average to half its
        # prompt (the caller passes the average context for prefill). Local layers cap it.
        out = [(n_layers - n_local, ctx)]
        if n_local:
            out.append((n_local, np.minimum(ctx, at.local_window)))
        return [(n, c) for n, c in out if n]

    out: list[O.Op] = []
    if at.kind == "mla":
        qk = at.qk_nope_head_dim + at.qk_rope_head_dim
        latent = at.kv_lora_rank + at.qk_rope_head_dim
        out += [O.gemm("mla_down", t, at.q_lora_rank + latent, d, **g, calls=n_layers),
                O.gemm("mla_q_up", t, hc * qk, at.q_lora_rank or d, **g, calls=n_layers)]
        for phase, tc, ctx in cores:
            if phase == "decode":  # absorbed form: heads attend over the shared latent
                out.append(O.gemm("mla_absorb_k", tc, hc * at.kv_lora_rank, at.qk_nope_head_dim, **g, calls=n_layers))
                out += [O.attention_decode("attention", tc, c, heads=hc, qk_dim=latent, v_dim=at.kv_lora_rank,
                                           kv_elems_per_token=latent, **kv, calls=n) for n, c in spans(ctx)]
                out.append(O.gemm("mla_absorb_v", tc, hc * at.v_head_dim, at.kv_lora_rank, **g, calls=n_layers))
            else:  # prefill expands the latent to per-head keys and values for the new tokens
                out.append(O.gemm("mla_kv_up", tc, hc * (at.qk_nope_head_dim + at.v_head_dim), at.kv_lora_rank,
                                  **g, calls=n_layers))
                out += [O.attention_prefill("attention", tc, c, heads=hc, qk_dim=qk, v_dim=at.v_head_dim,
                                            kv_elems_per_token=latent, **kv, calls=n) for n, c in spans(ctx)]
        out.append(O.gemm("o_proj", t, d, hc * at.v_head_dim, **g, calls=n_layers))
        return out
    kvh = max(1.0, model.num_kv_heads / tp)  # KV heads are replicated when tp exceeds them
    hd = model.head_dim
    out.append(O.gemm("qkv_proj", t, (hc + 2 * kvh) * hd, d, **g, calls=n_layers))
    for phase, tc, ctx in cores:
        attn = O.attention_decode if phase == "decode" else O.attention_prefill
        out += [attn("attention", tc, c, heads=hc, qk_dim=hd, v_dim=hd, kv_elems_per_token=2 * kvh * hd, **kv,
                     calls=n) for n, c in spans(ctx)]
    out.append(O.gemm("o_proj", t, d, hc * hd, **g, calls=n_layers))
    return out


def _moe(model: LLM, par: Parallel, prec: Precision, t: np.ndarray, n_moe: float, balanced: bool) -> list[O.Op]:
    m = model.moe
    assert m is not None
    d, tp, ep = model.hidden_size, par.tp, par.ep
    a = prec.a_bytes
    tp_e = par.moe_group // ep  # each expert's FFN is split over the ranks that share it
    # Rows routed to this rank's experts (from every attention-DP group: t is one group's) and the
    # experts they touch: the busiest rank's (it sets the step time), or the mean rank's (`balanced`).
    if balanced or ep == 1:
        rows = t * par.dp * m.top_k / ep
        active = np.minimum(O.expected_experts_hit(t * par.dp, m.num_experts, m.top_k) / ep, m.num_experts / ep)
    else:
        rows, active = moe_rank_load(t * par.dp, m.num_experts, m.top_k, ep)
    out = [O.gemm("router", t, m.num_experts, d, dtype="bf16", a_bytes=a, w_bytes=2.0, out_bytes=4.0, calls=n_moe)]
    out += O.fused_moe_ops(rows / m.top_k, d, m.expert_intermediate_size / tp_e, m.num_experts, m.top_k,
                           act_bytes=a, weight_bytes=prec.expert_w_bytes, dtype=prec.gemm_dtype,
                           experts_active=active, calls=n_moe)
    if m.num_shared_experts:
        i = m.num_shared_experts * m.shared_intermediate_size / tp
        g = dict(dtype=prec.gemm_dtype, a_bytes=a, w_bytes=prec.w_bytes, out_bytes=a)
        out += [O.gemm("shared_gate_up", t, 2 * i, d, **g, calls=n_moe),
                O.gemm("shared_down", t, d, i, **g, calls=n_moe)]
    # With dp = 1 every chip of the TP group already holds every token after attention, so EP
    # dispatch is a local selection and the combine is the all-reduce below (vLLM's TP+EP). With
    # attention DP the routed rows cross the fabric both ways, each with its latency.
    if ep > 1 and par.dp > 1:
        payload = t * m.top_k * d * a / tp  # each rank ships its share of the routed rows
        out += [O.all_to_all("moe_dispatch", payload, ep, dtype="bf16", calls=n_moe),
                O.all_to_all("moe_combine_a2a", payload, ep, dtype="bf16", calls=n_moe)]
    if tp > 1:
        out.append(O.all_reduce("moe_allreduce", t * d * a, tp, dtype="bf16", calls=n_moe))
    return out


def ranking_ops(model: Ranking, chips: int, prec: Precision, samples: ArrayLike, *,
                plan: ShardPlan | None = None, hot_bytes: ArrayLike = 0.0) -> list[O.Op]:
    """One step on one chip of a group of `chips` sharing one copy of the tables: `samples`
    user-item pairs per chip through the dense layers (data parallel), the busiest chip's share of
    the lookups of all `chips x samples` pairs (`plan`, default the planner's first candidate at
    `chips`; see accelsim.ranking), hot rows in `hot_bytes` of SRAM (may be an array over chips),
    and, when sharded, the ids' and pooled embeddings' all-to-alls."""
    s = np.asarray(samples, dtype=np.float64)
    e, a = model.embedding_dim, prec.a_bytes
    elem = R.embedding_bytes_per_elem(model, prec.weights)
    plan = plan or R.candidate_plans(model, chips, elem, None)[0]
    hit = R.hot_hit_fraction(plan.local_rows, plan.local_lookups, plan.dim * elem, hot_bytes,
                             model.access_zipf_alpha)
    g = s * plan.shards  # pairs of the whole group: a shard serves its tables' lookups for all of them
    out = [O.embedding_bag("embedding_bags", g, plan.lookups, plan.pooled, plan.dim, dtype="bf16",
                           row_bytes=elem, out_bytes=a, sram_hit=hit)]
    if plan.shards > 1:
        out += [O.all_to_all("sparse_ids_all_to_all", s * model.lookups_per_sample * R.INDEX_BYTES, plan.shards,
                             dtype="bf16"),
                O.all_to_all("pooled_all_to_all", g * plan.a2a_elems * a, plan.shards, dtype="bf16")]
    gd = dict(dtype=prec.gemm_dtype, a_bytes=a, w_bytes=prec.w_bytes, out_bytes=a)
    out += [O.gemm(f"mlp_{i}", s, n_out, n_in, **gd) for i, (n_in, n_out) in enumerate(model.mlp_layers())]
    n = model.num_tables + 1
    if model.interaction == "dot":  # pairwise dot products of the n vectors: a batched [n,e]x[e,n]
        out.append(O.gemm("dot_interaction", s * n, n, e, **gd))
    # Bias and ReLU run in the GEMM epilogues (their bytes are the GEMMs'); what remains streams:
    # gathering the n vectors into the interaction input, and DCN's x0 * (W x) + x per cross layer
    # (fused into the up-projection's epilogue: it reads x0 and x on top of the GEMM's own bytes).
    out.append(O.elementwise("interaction_concat", s * n * e, dtype="bf16", bytes_per_elem=2 * a))
    if model.interaction == "dcn":
        out.append(O.elementwise("dcn_cross", s * model.interaction_width, dtype="bf16", bytes_per_elem=2 * a,
                                 flops_per_elem=2.0, calls=model.dcn_num_layers))
    return out
