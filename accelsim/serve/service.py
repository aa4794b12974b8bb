"""Step times and energies from the spine, tabulated once per replica group.

An LLM step runs a decode batch of n sequences (mean context c_d) and a prefill chunk of p tokens
(token-weighted mean attended context c_p). Its time is composed as `predict.llm_metrics` composes a
serving cycle: prefill and decode are costed separately and added (not fused), and with pp stages a
decode batch runs as pp micro-batches of n/pp back to back while prefill chunks stream through the
pipeline:
    t(n, c_d, p, c_p) = pp * cost(llm_ops(decode, n/pp, c_d)).total_s + cost(llm_ops(prefill, p, c_p)).total_s
That is the replica's occupancy; a request whose prompt completes in the step sees its first token
(pp - 1) prefill stage times later (the chunk still has to leave the last stage; `fill_s`).
Energy per chip is chip_power_w(utilisation of each part) x its time, summed over the parts.

Both parts are evaluated on grids with one vectorised `perf.cost` call each: decode over every
integer n in [0, max_seqs] x a geometric grid of contexts (ratio `CTX_RATIO`); prefill over a grid
of chunk sizes (every integer up to 64, then geometric) x the same contexts. Between grid points
the simulator interpolates linearly; on grid points the value is the spine's exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from accelsim.graph import Parallel, Precision, llm_ops, sampler_ops
from accelsim.memory import kv_bytes_per_seq, plan_llm, ranking_capacity_check
from accelsim.modes import PLAIN, Modes, decode_step, vision_cost
from accelsim.ops import Op, OpKind
from accelsim.perf import Cost, Efficiency, HwVec, cost, engine_term
from accelsim.power import chip_power_w, working_power_w
from accelsim.predict import ranking_metrics
from accelsim.ranking import parse_placement
from accelsim.spec.chip import Chip
from accelsim.spec.model import LLM, Ranking

CTX_RATIO = 1.05  # context grid spacing: attention cost is linear in context between points
TOKENS_RATIO = 1.05
# Share of the ranking latency SLO a batch's service time may take; the rest is left to queueing
# (assumed: the batcher targets half the SLO).
RANKING_BATCH_SLO_FRACTION = 0.5
RANKING_MAX_SAMPLES = 1 << 20
_ATTENTION = (OpKind.ATTN_PREFILL, OpKind.ATTN_DECODE)


def _energy(c: Cost, hw: HwVec, dtype: str, time_s: np.ndarray, mean: Cost | None = None) -> np.ndarray:
    """Energy of the operators in `c` over `time_s`, as predict.llm_metrics charges it: the mean
    rank's (`mean`, for expert parallelism; else `c`) compute- and memory-bound time works at its
    utilisations; launch gaps, collective waits and waiting for the busiest rank draw the floor."""
    m = c if mean is None else mean
    return working_power_w(hw.idle_w, hw.tdp_w, hw.peak[dtype], hw.mem_bw, m.flops, m.bytes, m.compute_s + m.memory_s,
                           c.total_s) * time_s


def _bracket(grid: list[float], x: float) -> tuple[int, float]:
    """Index i and fraction f with x = grid[i] + f (grid[i+1] - grid[i]); extrapolates at the ends."""
    i = min(max(bisect_right(grid, x) - 1, 0), len(grid) - 2)
    return i, (x - grid[i]) / (grid[i + 1] - grid[i])


def _attention(ops: list[Op]) -> list[Op]:
    return [o for o in ops if o.kind in _ATTENTION]


def _not_attention(ops: list[Op]) -> list[Op]:
    return [o for o in ops if o.kind not in _ATTENTION]


def _bilinear(tab: list[list[float]], j: int, g: float, i: int, f: float) -> float:
    a, b = tab[j], tab[j + 1]
    lo = a[i] + f * (a[i + 1] - a[i])
    return lo + g * (b[i] + f * (b[i + 1] - b[i]) - lo)


@dataclass(frozen=True)
class KVBudget:
    blocks: int  # blocks per replica (every chip of the replica holds its shard of each block)
    bytes_per_token: float  # per chip
    free_bytes: float  # per chip, for KV


def kv_budget(chip: Chip, model: LLM, par: Parallel, prec: Precision, max_batched_tokens: int,
              block_size: int, extra_bytes_per_chip: float = 0.0) -> KVBudget:
    """KV blocks that fit per replica: capacity - reserve - weights - activations (the spine's
    memory plan) - `extra_bytes_per_chip` (e.g. co-located ranking tables), per chip.
    Every layer is counted at full context (local-attention layers that cap their window are
    over-counted for contexts beyond their chunk: conservative). Raises UserError if the weights
    do not fit."""
    plan = plan_llm(chip, model, par, prec, 1.0, chunk_tokens=max_batched_tokens)
    per_token = float(kv_bytes_per_seq(model, par, prec, 1.0))
    free = plan.free_for_kv_bytes - extra_bytes_per_chip
    return KVBudget(max(int(free // (per_token * block_size)), 0), per_token, free)


class LLMService:
    """Per-step time (s) and per-chip energy (J) of one replica; `step` is called once per step."""

    def __init__(self, chip: Chip, model: LLM, par: Parallel, prec: Precision, eff: Efficiency, *,
                 max_seqs: int, max_tokens: int, max_ctx: float, modes: Modes = PLAIN,
                 mean_prompt: float = 1000.0) -> None:
        """`modes`: speculative decoding makes a decode step the expected cost per emitted token,
        (verify + k drafts) / E (`accelsim.modes.decode_step`); image tokens add the vision encoder
        to prefill, spread over the `mean_prompt` tokens of a prompt."""
        self.pp = par.pp
        self.fidelity = str(eff.fidelity)
        hw = HwVec.from_chips([chip], shape=(1, 1))
        k = max(1, math.ceil(math.log(max(max_ctx, 2.0)) / math.log(CTX_RATIO)))
        ctx = CTX_RATIO ** np.arange(k + 1, dtype=np.float64)
        self._inv_log_r = 1.0 / math.log(CTX_RATIO)
        self._k = k

        n = np.arange(max_seqs + 1, dtype=np.float64)[:, None]
        st = decode_step(hw, model, par, prec, n / par.pp, ctx[None, :], eff, modes)
        dec = st.cost.scale(1.0 / st.tokens_per_seq)
        t = np.broadcast_to(par.pp * dec.total_s, (len(n), len(ctx))).copy()
        e = np.broadcast_to(_energy(dec, hw, prec.gemm_dtype, t), t.shape).copy()
        t[0] = e[0] = 0.0
        self._dec_t, self._dec_e = t.tolist(), e.tolist()

        # Prefill: the context enters only through attention, so the other operators are costed
        # exactly on every integer chunk size (their tile-quantised GEMMs are step functions of the
        # size) and attention, smooth in both, on a geometric grid of sizes x contexts. `cost` is a
        # sum over operators, so the two parts add up to the cost of the whole step.
        top = max(max_tokens, 2)
        toks = np.arange(1, top + 1, dtype=np.float64)
        rest = cost(_not_attention(llm_ops(model, par, prec, "prefill", toks, 1.0)), hw, eff)
        vis = vision_cost(hw, model, par, prec, toks / mean_prompt, eff, modes)
        rest = rest if vis is None else rest + vis
        rt = np.broadcast_to(rest.total_s, (1, len(toks)))
        self._rest_t = [0.0, *rt.ravel().tolist()]
        self._rest_e = [0.0, *np.broadcast_to(_energy(rest, hw, prec.gemm_dtype, rt), rt.shape).ravel().tolist()]
        grid = np.unique(np.concatenate([np.arange(1, 65), np.rint(np.geomspace(64, max(top, 65), num=max(
            2, math.ceil(math.log(max(top, 65) / 64) / math.log(TOKENS_RATIO)) + 1)))]))
        attn = cost(_attention(llm_ops(model, par, prec, "prefill", grid[:, None], ctx[None, :])), hw, eff)
        at = np.broadcast_to(attn.total_s, (len(grid), len(ctx))).copy()
        ae = np.broadcast_to(_energy(attn, hw, prec.gemm_dtype, at), at.shape).copy()
        self._tok_grid = grid.tolist()
        self._pre_t, self._pre_e = at.tolist(), ae.tolist()

        # pp = 1: a step's decodes and prefill chunk run as one forward pass (as predict.llm_metrics
        # costs it): token-wise operators over all n + p rows read their weights once, the LM head
        # over the n decode rows (+ 1 for a completing prompt), attention split by phase.
        # Speculative decoding and image prompts are costed by the separate tables above (the
        # verify + draft step per emitted token; the vision encoder with the prefill).
        self._fused = par.pp == 1 and modes.spec is None and not modes.image_tokens
        if self._fused:
            allt = np.arange(max_tokens + max_seqs + 1, dtype=np.float64)
            body = [o for o in _not_attention(llm_ops(model, par, prec, "decode", allt, 1.0)) if o.name != "lm_head"]
            mean = None if par.ep == 1 else [
                o for o in _not_attention(llm_ops(model, par, prec, "decode", allt, 1.0, balanced=True))
                if o.name != "lm_head"]
            self._body_t, self._body_e = self._table(body, hw, eff, prec, mean)
            rows = np.arange(max_seqs + 2.0)
            head = [o for o in llm_ops(model, par, prec, "decode", rows, 1.0) if o.name == "lm_head"]
            self._head_t, self._head_e = self._table(head, hw, eff, prec)
            da = cost(_attention(llm_ops(model, par, prec, "decode", n, ctx[None, :])), hw, eff)
            dt = np.broadcast_to(da.total_s, (len(n), len(ctx))).copy()
            de = np.broadcast_to(_energy(da, hw, prec.gemm_dtype, dt), dt.shape).copy()
            dt[0] = de[0] = 0.0
            self._dattn_t, self._dattn_e = dt.tolist(), de.tolist()
        # per step: the engine's host time (chip idle) and the fused-MoE layers' fixed time (kernels
        # running with little traffic), charged as predict.llm_metrics charges them
        self._host_s = engine_term(eff, "host_step_s")
        self._moe_s = engine_term(eff, "moe_layer_latency_s") * model.num_moe_layers
        self._floor_w = float(chip_power_w(chip.idle_w, chip.tdp_w, 0.0, 0.0, 0.0))
        self._running_w = float(chip_power_w(chip.idle_w, chip.tdp_w, 0.0, 0.0, 1.0))
        smp = sampler_ops(model, np.arange(max_seqs + 1.0), engine_term(eff, "sampler_bytes_per_logit"))
        self._smp_t, self._smp_e = self._table(smp, hw, eff, prec) if smp else ([0.0] * (max_seqs + 1),) * 2

    @staticmethod
    def _table(ops: list[Op], hw: HwVec, eff: Efficiency, prec: Precision,
               mean_ops: list[Op] | None = None) -> tuple[list[float], list[float]]:
        c = cost(ops, hw, eff)
        m = None if mean_ops is None else cost(mean_ops, hw, eff)
        t = np.ravel(c.total_s).copy()
        e = np.ravel(np.broadcast_to(_energy(c, hw, prec.gemm_dtype, c.total_s, m), np.shape(c.total_s))).copy()
        t[0] = e[0] = 0.0
        return t.tolist(), e.tolist()

    def _ctx_index(self, c: float) -> tuple[int, float]:
        x = math.log(c) * self._inv_log_r if c > 1.0 else 0.0
        i = min(int(x), self._k - 1)
        return i, x - i

    def step(self, n_dec: int, ctx_sum: float, p_tokens: int, p_ctx_sum: float) -> tuple[float, float]:
        """(seconds, joules per chip) of a step with `n_dec` decoding sequences holding `ctx_sum`
        context tokens in total and a prefill chunk of `p_tokens` tokens attending to `p_ctx_sum`
        positions in total (token-weighted)."""
        if not (n_dec or p_tokens):
            return 0.0, 0.0
        host_t = self._host_s + self._moe_s + self._smp_t[n_dec]  # host, MoE layers' fixed time, sampler
        host_e = self._host_s * self._floor_w + self._moe_s * self._running_w + self._smp_e[n_dec]
        if self._fused:
            t = self._body_t[n_dec + p_tokens] + self._head_t[n_dec + (1 if p_tokens else 0)] + host_t
            e = self._body_e[n_dec + p_tokens] + self._head_e[n_dec + (1 if p_tokens else 0)] + host_e
            if n_dec:
                i, f = self._ctx_index(ctx_sum / n_dec)
                rt, re = self._dattn_t[n_dec], self._dattn_e[n_dec]
                t += rt[i] + f * (rt[i + 1] - rt[i])
                e += re[i] + f * (re[i + 1] - re[i])
            if p_tokens:
                j, g = _bracket(self._tok_grid, p_tokens)
                i, f = self._ctx_index(p_ctx_sum / p_tokens)
                t += _bilinear(self._pre_t, j, g, i, f)
                e += _bilinear(self._pre_e, j, g, i, f)
            return t, e
        t, e = host_t, host_e
        if n_dec:
            c = ctx_sum / n_dec
            x = math.log(c) * self._inv_log_r if c > 1.0 else 0.0  # _ctx_index, inlined: the hot path
            i = int(x)
            if i >= self._k:
                i = self._k - 1
            f = x - i
            rt, re = self._dec_t[n_dec], self._dec_e[n_dec]
            t = rt[i] + f * (rt[i + 1] - rt[i])
            e = re[i] + f * (re[i + 1] - re[i])
        if p_tokens:
            j, g = _bracket(self._tok_grid, p_tokens)
            i, f = self._ctx_index(p_ctx_sum / p_tokens)
            t += self._rest_t[p_tokens] + _bilinear(self._pre_t, j, g, i, f)
            e += self._rest_e[p_tokens] + _bilinear(self._pre_e, j, g, i, f)
        return t, e

    def fill_s(self, p_tokens: int, p_ctx_sum: float) -> float:
        """Pipeline-fill latency of a prefill chunk: (pp - 1) more stage times before its last token
        leaves the last stage (0 without pipeline parallelism). See the module docstring."""
        if self.pp == 1 or not p_tokens:
            return 0.0
        j, g = _bracket(self._tok_grid, p_tokens)
        i, f = self._ctx_index(p_ctx_sum / p_tokens)
        return (self.pp - 1) * (self._rest_t[p_tokens] + _bilinear(self._pre_t, j, g, i, f))


class RankingService:
    """Time (s) and per-chip energy (J) of a ranking batch of k requests of `samples` items on one
    replica of `chips` chips (one copy of the tables over them, each chip running k x samples / chips
    pairs: `predict.ranking_metrics`, at the placement it picks, kept in `placement`), tabulated
    exactly for every k up to `RANKING_MAX_SAMPLES` items, and
    `per_batch`, the most requests whose batch time stays within `RANKING_BATCH_SLO_FRACTION` of
    the SLO (at least 1)."""

    def __init__(self, chip: Chip, model: Ranking, chips: int, prec: Precision, eff: Efficiency,
                 samples: int, slo_s: float, check_capacity: bool = True, placement: str | None = None) -> None:
        pinned = parse_placement(placement)
        if check_capacity:
            ranking_capacity_check(chip, model, chips, prec, pinned)
        hw = HwVec.from_chips([chip], shape=(1,))
        k = np.arange(1, max(RANKING_MAX_SAMPLES // samples, 1) + 1, dtype=np.float64)
        # pairs per chip, at the placement the planner picks (accelsim.ranking)
        m = ranking_metrics(hw, model, chips, prec, k * samples / chips, eff, pinned)
        c = m.step
        t = np.broadcast_to(c.total_s, k.shape).copy()
        e = np.broadcast_to(_energy(c, hw, prec.gemm_dtype, t), k.shape).copy()
        self._t, self._e = [0.0, *t.tolist()], [0.0, *e.tolist()]
        ok = np.nonzero(t <= RANKING_BATCH_SLO_FRACTION * slo_s)[0]
        self.per_batch = int(k[ok[-1]]) if len(ok) else 1
        self.placement = str(m.plans[int(np.broadcast_to(m.plan_index, k.shape)[self.per_batch - 1])].placement)
        self.samples = samples
        self.fidelity = str(eff.fidelity)

    def batch(self, requests: int) -> tuple[float, float]:
        """(seconds, joules per chip) of a batch of `requests` requests (<= per_batch)."""
        return self._t[requests], self._e[requests]


