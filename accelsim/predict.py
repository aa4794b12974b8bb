"""Steady-state serving predictions: throughput, latency, power and energy for an LLM or a
ranking model on N chips. Vectorised over chips x batches (see `llm_metrics`).

LLM serving (continuous batching with chunked prefill, as vLLM and TRT-LLM run it), per replica of
tp x pp chips holding B sequences of `input_len` prompt and `output_len` generated tokens:
    every step decodes one token of each of the B sequences, at average context input_len + output_len / 2,
    and carries the prompts admitted in it, in the same forward pass (one step, weights read once);
    at steady state B / output_len prompts arrive per step: Poisson-many per step, each step
    costed with its own prompts, while they fit the chunk (CHUNK_TOKENS); beyond, every step carries
    a full chunk and prefill-only steps carry the rest
    step wall time = chip time of the step (its operators + the sampler's, `graph.sampler_ops`) + the
    engine's host time (`host_step_s` of the stack: scheduling, input preparation, chip idle)
    throughput = B / mean step;  TPOT = mean step;  ITL = median step;  TTFT = prefill of one prompt + a step
    power = the chip's power at the step's utilisations and duty cycle: time in kernels doing work (the
    operators' compute- and memory-bound time) over wall time; kernel-launch gaps,
    collective waits and host time draw the chip's floor
Pipeline stages run micro-batches back to back, so a stage's busy time sets the step.
MoE with expert parallelism: the busiest rank (routing skew, `graph.moe_rank_load`) sets the time,
the mean rank's work sets the energy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np

from accelsim.errors import UserError
from accelsim.gather import gather_limit
from accelsim.graph import Parallel, Precision, llm_ops, ranking_ops, sampler_ops
from accelsim.memory import CHUNK_TOKENS, MemoryPlan
from accelsim.modes import PLAIN, Modes, decode_step, prefill_shape, vision_cost
from accelsim.ops import Op
from accelsim.perf import BOUNDS, Cost, Efficiency, Fidelity, HwVec, cost, engine_term
from accelsim.power import chip_power_w, energy_report
from accelsim.ranking import (
    HOT_ROW_SRAM_FRACTION,
    Placement,
    ShardPlan,
    candidate_plans,
    embedding_bytes_per_elem,
    parse_placement,
    queries_from_pairs,
)
from accelsim.spec.chip import Chip, ServingDtype
from accelsim.spec.model import LLM, Model, Ranking

MAX_BATCH = 2048  # max concurrent sequences a serving engine schedules (assumed engine limit)
RANKING_MAX_BATCH = 65536
RANKING_DEFAULT_LATENCY_S = 0.060  # MLPerf DLRM-v2 server latency bound (MLPerf Inference rules, DLRM-v2)
Kind = Literal["llm", "ranking"]


@dataclass(frozen=True)
class LLMMetrics:
    """Arrays broadcast over (chips x batches)."""

    batch: np.ndarray
    throughput_replica: np.ndarray  # output tokens/s of one replica
    ttft_s: np.ndarray
    tpot_s: np.ndarray  # mean time per output token (mean step)
    power_w: np.ndarray  # per chip, averaged over the steps
    decode: Cost  # a decode step without prompts (one micro-batch)
    prefill: Cost  # one prompt's prefill chunk
    cycle_s: np.ndarray  # a sequence's life: output_len mean steps
    itl_s: np.ndarray  # median inter-token latency (the median step)
    duty: np.ndarray  # time in working kernels / wall time of the mean step
    u_compute: np.ndarray  # fraction of peak FLOP/s while working (the mean rank's work)
    u_memory: np.ndarray  # fraction of peak bandwidth while busy


# Poisson arrival of prompts per step: a grid of 0..K prompts (K = lam + 9 sigma + 6) covers every
# probability above _POISSON_FLOOR, and smaller ones are dropped, so a cell's result does not depend
# on the other cells of a sweep (which set K).
_POISSON_SIGMAS = 9.0
_POISSON_FLOOR = 1e-14


def _poisson(lam: np.ndarray, k_max: int) -> np.ndarray:
    """pmf of Poisson(lam) at k = 0..k_max (leading axis), renormalised over the grid."""
    k = np.arange(k_max + 1, dtype=np.float64).reshape((-1,) + (1,) * lam.ndim)
    log_fact = np.cumsum(np.log(np.maximum(k, 1.0)), axis=0)
    with np.errstate(divide="ignore"):
        logp = k * np.log(np.maximum(lam, 1e-300)) - lam - log_fact
    p = np.where(lam > 0, np.exp(logp), (k == 0).astype(np.float64))
    p = np.where(p >= _POISSON_FLOOR, p, 0.0)
    return p / p.sum(axis=0)


def llm_metrics(hw: HwVec, model: LLM, par: Parallel, prec: Precision, input_len: int, output_len: int,
                batch: np.ndarray, eff: Efficiency, modes: Modes = PLAIN) -> LLMMetrics:
    """Steady state of B = `batch` running sequences (module docstring); every array broadcasts
    like `batch` against `hw`. `modes` (accelsim.modes): speculative decoding emits
    `step.tokens_per_seq` tokens per step (its draft and verify steps are costed apart from the
    prompts' chunk), prefix hits shorten each prompt's computed part, image tokens lengthen the
    prompt and run the vision encoder with it."""
    b = np.asarray(batch, dtype=np.float64)
    b = np.broadcast_to(b, np.broadcast_shapes(b.shape, np.shape(hw.mem_bw)))  # the k axis goes in front
    pp = par.pp
    prompt_len = modes.prompt_len(input_len)
    new, pre_ctx = prefill_shape(prompt_len, modes.prefix_hit)  # tokens computed per prompt, their context
    ctx = prompt_len + output_len / 2
    step = decode_step(hw, model, par, prec, b / pp, ctx, eff, modes)
    dec = step.cost
    n_steps = output_len / step.tokens_per_seq  # steps in a sequence's life
    host = engine_term(eff, "host_step_s")
    moe_lat = engine_term(eff, "moe_layer_latency_s") * model.num_moe_layers  # every stage's MoE layers, pp x
    smp = cost(sampler_ops(model, b, engine_term(eff, "sampler_bytes_per_logit")), hw, eff)
    room = np.maximum(CHUNK_TOKENS - b, 0.0)  # prefill tokens a step can carry beside its decodes
    lam = b / n_steps  # prompts admitted per step
    # Whole prompts that fit a step arrive Poisson(lam) per step; otherwise a step carries a full
    # chunk of prompt tokens with probability q (every step when prefill outruns the decode steps).
    # With fixed lengths started together (lockstep) the batch alternates: every prompt's prefill in
    # full chunks with no decodes, then n_steps decode steps carrying no prompts.
    poisson = (new <= room) & (lam * new <= room) & (not modes.fixed_lengths)
    k_max = max(1, int(np.ceil(np.max(np.where(poisson, lam + _POISSON_SIGMAS * np.sqrt(lam) + 6, 0)))))
    kk = np.arange(k_max + 1, dtype=np.float64).reshape((-1,) + (1,) * b.ndim)
    q = 0.0 if modes.fixed_lengths else np.minimum(lam * new / np.maximum(room, 1.0), 1.0)
    pk = np.where(poisson, _poisson(np.where(poisson, lam, 0.0), k_max), (kk == 0) * (1 - q) + (kk == 1) * q)
    chunk_k = np.where(poisson, np.minimum(kk * new, room), np.where(kk > 0, room, 0.0))
    prompts = chunk_k / max(new, 1.0)
    # prefill-only steps (per decode step) of `full_chunk` tokens: the prompt tokens the decode steps
    # cannot carry, or in lockstep all of them
    if modes.fixed_lengths:
        full_chunk = np.minimum(b * new, CHUNK_TOKENS)
        extra = b * new / full_chunk / n_steps
    else:
        full_chunk = np.full(b.shape, float(CHUNK_TOKENS))
        extra = np.maximum(lam * new - room, 0.0) / CHUNK_TOKENS

    def mixed(balanced: bool) -> Cost:  # one stage's cost of the steps with k prompts, per micro-batch
        if modes.spec is None:  # one forward pass: decodes and the chunk share every weight read
            return cost(llm_ops(model, par, prec, "prefill", chunk_k / pp, pre_ctx, prefill_sequences=prompts / pp,
                                decode_seqs=b / pp, decode_context=ctx, balanced=balanced), hw, eff)
        chunk = cost(llm_ops(model, par, prec, "prefill", chunk_k / pp, pre_ctx, prefill_sequences=prompts / pp,
                             balanced=balanced), hw, eff)
        return dec + chunk.scale(chunk_k > 0)

    def per_step(c: Cost, prompts_: np.ndarray) -> Cost:  # + the vision encoder of the step's prompts
        vis = vision_cost(hw, model, par, prec, prompts_, eff, modes)
        return c.scale(pp) if vis is None else c.scale(pp) + vis

    mix = per_step(mixed(False), prompts)
    work = per_step(mixed(True), prompts) if par.ep > 1 else mix
    gpu_k = np.broadcast_to(mix.total_s + moe_lat, np.broadcast_shapes(np.shape(mix.total_s), pk.shape))
    full = per_step(cost(llm_ops(model, par, prec, "prefill", full_chunk / pp, pre_ctx,
                                 prefill_sequences=full_chunk / max(new, 1.0) / pp), hw, eff),
                    full_chunk / max(new, 1.0))
    gpu_s = (pk * gpu_k).sum(axis=0) + extra * (full.total_s + moe_lat) + smp.total_s
    wall_s = gpu_s + host * (1 + extra)
    busy = np.maximum((pk * (work.compute_s + work.memory_s)).sum(axis=0) + extra * (full.compute_s + full.memory_s)
                      + smp.compute_s + smp.memory_s + moe_lat * (1 + extra), 1e-30)
    flops = (pk * work.flops).sum(axis=0) + extra * full.flops + smp.flops
    nbytes = (pk * work.bytes).sum(axis=0) + extra * full.bytes + smp.bytes
    u_c = np.clip(flops / (hw.peak[prec.gemm_dtype] * busy), 0, 1)
    u_m = np.clip(nbytes / (hw.mem_bw * busy), 0, 1)
    duty = np.minimum(busy / wall_s, 1.0)
    power = chip_power_w(hw.idle_w, hw.tdp_w, u_c, u_m, duty)

    # the median step: the median number of prompts in a step (none at small batch)
    k_med = np.argmax(np.cumsum(np.broadcast_to(pk, gpu_k.shape), axis=0) >= 0.5, axis=0)
    itl = (np.take_along_axis(gpu_k, k_med[None], axis=0)[0] + smp.total_s + host) / step.tokens_per_seq
    one = min(new, CHUNK_TOKENS)
    first = cost(llm_ops(model, par, prec, "prefill", np.asarray(float(one)), pre_ctx), hw, eff)
    vis1 = vision_cost(hw, model, par, prec, np.asarray(1.0), eff, modes)
    t_first = np.ceil(new / one) * pp * first.total_s + (0.0 if vis1 is None else vis1.total_s)
    tpot = wall_s / step.tokens_per_seq
    return LLMMetrics(b, b / tpot, t_first + wall_s, tpot, power, dec, first, n_steps * wall_s, itl, duty, u_c, u_m)


def batch_candidates(max_batch: int) -> np.ndarray:
    """Batches to try up to `max_batch`: powers of two, half-octave steps between them (a finer
    choice when an SLO binds), and `max_batch` itself."""
    pow2 = 2 ** np.arange(0, int(np.log2(max(max_batch, 1))) + 1)
    c = np.unique(np.concatenate([pow2, 3 * pow2[1:] // 2, [max_batch]]))
    return c[c <= max_batch].astype(np.float64)


@dataclass(frozen=True)
class RankingMetrics:
    """Arrays broadcast over (chips x batches). Rates count user-item pairs (accelsim.ranking)."""

    batch: np.ndarray
    latency_s: np.ndarray
    throughput_chip: np.ndarray  # pairs/s of one chip
    power_w: np.ndarray  # per chip
    step: Cost
    plans: tuple[ShardPlan, ...]  # the placements weighed
    plan_index: np.ndarray  # which of `plans` each (chip, batch) uses: the fastest
    gather_limit: np.ndarray  # what bounds its embedding gather ('bandwidth', 'concurrency', 'sram')
    gather_share: np.ndarray  # fraction of the step's time spent in the embedding gather


def ranking_hot_bytes(hw: HwVec) -> np.ndarray:
    """On-chip bytes a chip gives to hot embedding rows."""
    return hw.sram_bytes * HOT_ROW_SRAM_FRACTION


def ranking_metrics(hw: HwVec, model: Ranking, shards: int, prec: Precision, batch: np.ndarray,
                    eff: Efficiency, placement: Placement | None = None,
                    usable_bytes: np.ndarray | None = None) -> RankingMetrics:
    """One ranking batch step of `batch` pairs per chip, one copy of the tables over `shards` chips
    placed by `placement` (None: each (chip, batch) takes the fastest candidate placement whose
    largest table share plus the dense weights fits in `usable_bytes`, an array shaped like `hw`'s),
    broadcast over (chips x batches) like `llm_metrics`."""
    b = np.asarray(batch, dtype=np.float64)
    plans = candidate_plans(model, shards, embedding_bytes_per_elem(model, prec.weights), placement)
    hot = ranking_hot_bytes(hw)
    best: Cost | None = None
    best_t = idx = np.zeros(())
    limit = np.asarray("")
    for k, plan in enumerate(plans):
        ops = ranking_ops(model, shards, prec, b, plan=plan, hot_bytes=hot)
        c = cost(ops, hw, eff)
        t = c.total_s
        if usable_bytes is not None and placement is None:
            t = np.where(plan.held_bytes + model.dense_params * prec.w_bytes <= usable_bytes, t, np.inf)
        lim = ranking_gather_limit(ops[0], hw, eff)
        share = cost(ops[:1], hw, eff).total_s / c.total_s
        if best is None:
            best, best_t, idx, limit, g_share = c, t, np.zeros(np.shape(t)), lim, share
            continue
        faster = t < best_t
        best = Cost(*(np.where(faster, x, y) for x, y in zip(c._arrays(), best._arrays())), fidelity=c.fidelity)
        best_t, idx, limit = np.where(faster, t, best_t), np.where(faster, k, idx), np.where(faster, lim, limit)
        g_share = np.where(faster, share, g_share)
    assert best is not None
    u_c, u_m = best.utilisation(hw, prec.weights)
    return RankingMetrics(b, best.total_s, b / best.total_s, chip_power_w(hw.idle_w, hw.tdp_w, u_c, u_m), best,
                          plans, idx, limit, g_share)


def ranking_gather_limit(op: Op, hw: HwVec, eff: Efficiency) -> np.ndarray:
    """What bounds an embedding-bag op's gather on each chip (accelsim.gather.gather_limit)."""
    stack = getattr(eff, "base", eff)  # calibrated profiles measure no gathers: their base stack models them
    return gather_limit(op.gather_rows, op.gather_bytes, op.bytes - op.gather_rows * op.gather_bytes, op.sram_bytes,
                        bw=hw.mem_bw, eff=getattr(stack, "memory_eff", 1.0), latency_s=hw.gather_latency_s,
                        inflight=hw.gather_inflight, request_bytes=hw.gather_request_bytes,
                        granule_bytes=hw.gather_granule_bytes, sram_bw=hw.sram_bw,
                        activation_bytes=getattr(stack, "gather_overhead_bytes", 0.0))



# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankingLayout:
    """A ranking deployment unit: `shards` chips hold one copy of the embedding tables between them
    (model parallel); dense layers are replicated on each. `--chips N` serves N / shards such copies."""

    shards: int = 1
    placement: Placement | None = None  # None: the planner's choice (accelsim.ranking)

    @property
    def chips(self) -> int:
        return self.shards


Layout = Parallel | RankingLayout


def time_shares(c: Cost) -> dict[str, float]:
    """'<bound>_share' for each of `perf.BOUNDS`: the fraction of a (scalar) step's time in
    compute-bound and memory-bound operators, communication and overhead."""
    total = max(float(c.total_s), 1e-30)
    parts = dict(zip(BOUNDS, (c.compute_s, c.memory_s, c.comm_s, c.overhead_s)))
    return {f"{b}_share": float(t) / total for b, t in parts.items()}


@dataclass(frozen=True, eq=False)
class _Prediction(Mapping[str, Any]):
    """Shared part of a prediction. Read fields as attributes; `r[key]` reads the JSON of
    `accelsim predict --json` (`to_dict`), whose keys stay stable for scripts."""

    chip: Chip
    chips: int  # chips deployed: `replicas` copies of the layout
    precision: Precision
    batch: int  # sequences per replica (LLM) or samples per chip (ranking)
    rate_per_chip: float  # output tokens/s (LLM) or samples/s (ranking) per chip
    power_w: float  # average accelerator power per chip at this point
    fidelity: Fidelity

    @property
    def replicas(self) -> int:
        return self.chips // self.replica_chips

    @property
    def replica_chips(self) -> int:
        return self.layout.chips  # type: ignore[attr-defined]

    @property
    def throughput(self) -> float:
        """Output tokens/s (LLM) or samples/s (ranking) of all `chips`."""
        return self.rate_per_chip * self.chips

    @property
    def joules_per_unit(self) -> float:
        return self.power_w / self.rate_per_chip

    @property
    def dtype(self) -> str:
        return self.precision.weights

    @property
    def assumed_hw_values(self) -> list[str]:
        return self.chip.assumed_keys

    @property
    def what_if(self) -> dict[str, float]:
        return dict(self.chip.what_if)

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @cached_property
    def _json(self) -> dict[str, Any]:
        return self.to_dict()

    def __getitem__(self, key: str) -> Any:
        return self._json[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)


@dataclass(frozen=True, eq=False)
class LLMPrediction(_Prediction):
    """The chosen operating point of an LLM on `chips` chips: `replicas` copies of `layout`."""

    model: LLM
    layout: Parallel
    input_len: int
    output_len: int
    ttft_s: float
    tpot_s: float
    decode: Cost  # one decode step of the replica's busiest chip
    prefill: Cost  # one prefill chunk
    memory: MemoryPlan
    modes: Modes = PLAIN
    kind: ClassVar[Kind] = "llm"
    unit: ClassVar[str] = "tokens"

    @property
    def bound(self) -> str:
        """What bounds the decode step, which dominates the cycle."""
        return str(self.decode.bound)

    @property
    def prefill_bound(self) -> str:
        return str(self.prefill.bound)

    @property
    def shares(self) -> dict[str, float]:
        """Time shares of the decode step (`time_shares`)."""
        return time_shares(self.decode)

    @property
    def tp(self) -> int:
        return self.layout.tp

    @property
    def ep(self) -> int:
        return self.layout.ep

    @property
    def pp(self) -> int:
        return self.layout.pp

    def layout_kwargs(self) -> dict[str, Any]:
        """`predict` keywords that pin this layout (attention DP: dp = ep / tp)."""
        dp = {"attention_dp": True} if self.layout.dp > 1 else {}
        return {"tp": self.tp, "ep": self.ep, "pp": self.pp, **dp}

    def step_ops(self) -> dict[str, list[Op]]:
        """The operators behind `decode` and `prefill`, lowered as `llm_metrics` lowers them in plain
        serving: 'decode' (batch / pp sequences at the average context) and 'prefill' (one prompt's
        first chunk). Raises ValueError for a prediction with serving modes (their steps differ)."""
        if not self.modes.plain:
            raise ValueError("step_ops covers plain serving; speculative decoding, prefix hits and images "
                             "lower their steps in accelsim.modes")
        b, i, par = float(self.batch), self.input_len, self.layout
        return {"decode": llm_ops(self.model, par, self.precision, "decode", b / par.pp, i + self.output_len / 2),
                "prefill": llm_ops(self.model, par, self.precision, "prefill", float(min(i, CHUNK_TOKENS)), i / 2)}

    def to_dict(self) -> dict[str, Any]:
        total, chips = self.throughput, self.chips
        return {
            "hw": self.chip.name, "model": self.model.name, "chips": chips, "tp": self.tp, "ep": self.ep,
            "pp": self.pp, "dp": self.layout.dp, "replicas": self.replicas, "dtype": self.dtype,
            "kv_dtype": self.precision.kv,
            "compute_dtype": self.chip.compute_dtype(self.dtype),
            "input_len": self.input_len, "output_len": self.output_len,
            "batch": self.batch,
            "throughput_tokens_per_s": total,
            "per_chip_tokens_per_s": self.rate_per_chip,
            "ttft_s": self.ttft_s, "tpot_s": self.tpot_s,
            "power_w": self.power_w, "total_power_w": self.power_w * chips,
            "joules_per_token": self.joules_per_unit,
            "energy": energy_report([(self.chip, chips)], self.power_w * chips, total, str(self.fidelity)),
            "bound": self.bound,
            "prefill_bound": self.prefill_bound,
            "decode_time_shares": self.shares,
            "memory": self.memory.to_dict(),
            "modes": self.modes.to_dict(),
            "fidelity": str(self.fidelity),
            "assumed_hw_values": self.assumed_hw_values,
            "what_if": self.what_if,
        }


@dataclass(frozen=True, eq=False)
class RankingPrediction(_Prediction):
    """The chosen operating point of a ranking model on `chips` chips: `replicas` copies of the
    tables, each sharded over `layout.shards` chips."""

    model: Ranking
    layout: RankingLayout
    latency_s: float
    latency_slo_s: float
    step: Cost  # one batch step on one chip
    plan: ShardPlan | None = None  # where the tables live (placement); None only for hand-made results
    gather_limit: str = ""  # what bounds the embedding gather: 'bandwidth', 'concurrency' or 'sram'
    gather_share: float = 0.0  # fraction of the batch step spent in the embedding gather
    kind: ClassVar[Kind] = "ranking"
    unit: ClassVar[str] = "samples"  # user-item pairs; a query carries model.candidates_per_query

    @property
    def bound(self) -> str:
        return str(self.step.bound)

    @property
    def shards(self) -> int:
        return self.layout.shards

    @property
    def placement(self) -> str:
        return str(self.plan.placement) if self.plan else ""

    @property
    def queries_per_chip(self) -> float:
        """Ranking queries/s of one chip (MLPerf DLRM-v2's "samples/s"): pairs / candidates per query."""
        return float(queries_from_pairs(self.rate_per_chip, self.model.candidates_per_query))

    @property
    def shares(self) -> dict[str, float]:
        """Time shares of the batch step (`time_shares`)."""
        return time_shares(self.step)

    def layout_kwargs(self) -> dict[str, Any]:
        return {"shards": self.shards, "placement": self.placement}

    def step_ops(self) -> dict[str, list[Op]]:
        """The operators of the costed batch step on one chip."""
        hot = self.chip.sram_bytes * HOT_ROW_SRAM_FRACTION if self.chip.sram_bytes else 0.0
        return {"ranking": ranking_ops(self.model, self.shards, self.precision, float(self.batch), plan=self.plan,
                                       hot_bytes=hot)}

    def to_dict(self) -> dict[str, Any]:
        total, chips = self.throughput, self.chips
        return {
            "hw": self.chip.name, "model": self.model.name, "chips": chips, "shards": self.shards,
            "replicas": self.replicas, "dtype": self.dtype,
            "batch": self.batch, "latency_s": self.latency_s, "latency_slo_s": self.latency_slo_s,
            "placement": self.placement,
            "sample_unit": "user-item pair",
            "candidates_per_query": self.model.candidates_per_query,
            "throughput_samples_per_s": total,
            "per_chip_samples_per_s": self.rate_per_chip,
            "throughput_pairs_per_s": total,
            "per_chip_pairs_per_s": self.rate_per_chip,
            "throughput_queries_per_s": self.queries_per_chip * chips,
            "per_chip_queries_per_s": self.queries_per_chip,
            "power_w": self.power_w, "total_power_w": self.power_w * chips,
            "joules_per_sample": self.joules_per_unit,
            "joules_per_query": self.joules_per_unit * self.model.candidates_per_query,
            "bound": self.bound,
            "gather_limit": self.gather_limit,
            "gather_time_share": self.gather_share,
            "step_time_shares": self.shares,
            "fidelity": str(self.fidelity),
            "assumed_hw_values": self.assumed_hw_values,
            "what_if": self.what_if,
        }


Prediction = LLMPrediction | RankingPrediction


def predict(chip: Chip, model: Model, *, chips: int, eff: Efficiency, tp: int | None = None,
            ep: int | None = None, pp: int | None = None, shards: int | None = None, dtype: ServingDtype | None = None,
            kv_dtype: ServingDtype | None = None, input_len: int = 1000, output_len: int = 1000,
            batch: int | None = None, max_ttft: float | None = None, max_tpot: float | None = None,
            max_latency: float | None = None, modes: Modes = PLAIN, attention_dp: bool = False,
            placement: Placement | str | None = None) -> Prediction:
    """The best operating point of `model` on `chips` x `chip` (`accelsim predict`).
    `modes`: speculative decoding, prefix hits, image tokens; `attention_dp`: attention data parallel
    with wide EP (searched, or with tp/ep pinned: dp = ep / tp).

    LLM: with none of tp / ep / pp the replica layout is searched (`accelsim.search`: layouts whose
    chips divide `chips`); any of them pins it (tp defaults to chips / pp, ep and pp to 1).
    Ranking: `shards` pins how many chips share one copy of the tables; None applies the planner's
    rule (replicas when the tables fit, else the smallest group that holds them); `placement`
    ('replicated', 'table_wise', 'row_wise', 'column_wise'; None or 'auto': the planner's) pins
    how the tables are split (accelsim.ranking).
    `dtype` None: the model's default format (`search.default_dtype`: fp8 LLMs, bf16 ranking).
    The batch is searched under the SLOs unless given. Raises UserError for bad input, a model
    that does not fit, or SLOs no batch meets.
    """
    from accelsim.search import Query, best, default_dtype  # the search evaluates through this module's metrics

    if chips < 1:
        raise UserError(f"--chips must be >= 1, got {chips}")
    q = Query(model, eff, dtype or default_dtype(model), kv_dtype=kv_dtype, input_len=input_len,
              output_len=output_len, batch=batch,
              max_ttft=max_ttft, max_tpot=max_tpot, max_latency=max_latency, modes=modes,
              attention_dp=attention_dp,
              placement=parse_placement(placement) if isinstance(placement, str) or placement is None else placement)
    layout: Layout | None = None
    if isinstance(model, Ranking):
        layout = RankingLayout(shards, q.placement) if shards is not None else None
    elif (tp, ep, pp) != (None, None, None) and not (attention_dp and tp is None and (ep or 1) == 1):
        pp = pp or 1
        t = tp if tp is not None else (1 if attention_dp else max(chips // pp, 1))
        e = ep or (chips // pp if attention_dp else 1)
        layout = Parallel(tp=t, ep=e, pp=pp, dp=max(e // t, 1) if attention_dp else 1)
    return best(chip, q, total_chips=chips, layout=layout)
