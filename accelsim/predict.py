"""Steady-state serving predictions: throughput, latency, power and energy for an LLM or a
ranking model on N chips. Vectorised over chips x batches (see `llm_metrics`).

LLM serving (continuous batching, offline or under SLOs), per replica of tp x pp chips holding
B sequences of `input_len` prompt and `output_len` generated tokens:
    cycle    = prefill of B prompts (chunks of <= CHUNK_TOKENS) + output_len decode steps
    decode step at batch B, average context input_len + output_len / 2 (exact for the KV term)
    throughput = B * output_len / cycle;  TPOT = cycle / output_len (prefill interference included)
    TTFT = prefill of one prompt + one decode step it waits behind
Pipeline stages run micro-batches back to back, so a stage's busy time sets the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision, llm_ops, ranking_ops
from accelsim.memory import plan_llm, ranking_capacity_check
from accelsim.perf import Cost, Efficiency, HwVec, cost
from accelsim.power import chip_power_w
from accelsim.spec.chip import Chip
from accelsim.spec.model import LLM, Model, Ranking

CHUNK_TOKENS = 8192  # max batched prefill tokens per iteration (vLLM/TRT-LLM-like default; assumed)
MAX_BATCH = 2048  # max concurrent sequences a serving engine schedules (assumed engine limit)
RANKING_MAX_BATCH = 65536
RANKING_DEFAULT_LATENCY_S = 0.060  # MLPerf DLRM-v2 server latency bound (hardware_and_data.md §4.1)


@dataclass(frozen=True)
class LLMMetrics:
    """Arrays broadcast over (chips x batches)."""

    batch: np.ndarray
    throughput_replica: np.ndarray  # output tokens/s of one replica
    ttft_s: np.ndarray
    tpot_s: np.ndarray
    power_w: np.ndarray  # per chip, averaged over the cycle
    decode: Cost
    prefill: Cost
    cycle_s: np.ndarray


def llm_metrics(hw: HwVec, model: LLM, par: Parallel, prec: Precision, input_len: int, output_len: int,
                batch: np.ndarray, eff: Efficiency) -> LLMMetrics:
    b = np.asarray(batch, dtype=np.float64)
    pp = par.pp
    ctx = input_len + output_len / 2
    dec = cost(llm_ops(model, par, prec, "decode", b / pp, ctx), hw, eff)
    t_step = pp * dec.total_s
    chunk = np.minimum(b * input_len, CHUNK_TOKENS)
    pre = cost(llm_ops(model, par, prec, "prefill", chunk, input_len / 2, prefill_sequences=chunk / input_len),
               hw, eff)
    n_chunks = b * input_len / chunk
    t_prefill = n_chunks * pre.total_s
    cycle = t_prefill + output_len * t_step
    one = min(input_len, CHUNK_TOKENS)
    first = cost(llm_ops(model, par, prec, "prefill", np.asarray(float(one)), input_len / 2), hw, eff)
    ttft = np.ceil(input_len / one) * pp * first.total_s + t_step

    work = pre.scale(n_chunks) + dec.scale(pp * output_len)
    dtype = prec.weights
    u_c = np.clip(work.flops / pp / (hw.peak[dtype] * cycle), 0, 1)
    u_m = np.clip(work.bytes / pp / (hw.mem_bw * cycle), 0, 1)
    power = chip_power_w(hw.idle_w, hw.tdp_w, u_c, u_m)
    return LLMMetrics(b, b * output_len / cycle, ttft, cycle / output_len, power, dec, pre, cycle)


def batch_candidates(max_batch: int) -> np.ndarray:
    """Batches to try up to `max_batch`: powers of two, half-octave steps between them (a finer
    choice when an SLO binds), and `max_batch` itself."""
    pow2 = 2 ** np.arange(0, int(np.log2(max(max_batch, 1))) + 1)
    c = np.unique(np.concatenate([pow2, 3 * pow2[1:] // 2, [max_batch]]))
    return c[c <= max_batch].astype(np.float64)


def predict(chip: Chip, model: Model, *, chips: int, eff: Efficiency, tp: int | None = None, ep: int = 1,
            pp: int = 1, dtype: str = "bf16", kv_dtype: str | None = None, input_len: int = 1000,
            output_len: int = 1000, batch: int | None = None, max_ttft: float | None = None,
            max_tpot: float | None = None, max_latency: float | None = None) -> dict[str, Any]:
    """One prediction as the JSON object `accelsim predict --json` prints."""
    if chips < 1:
        raise UserError(f"--chips must be >= 1, got {chips}")
    if batch is not None and batch < 1:
        raise UserError(f"--batch must be >= 1, got {batch}")
    prec = Precision.for_serving(dtype, kv_dtype)
    chip.compute_dtype(dtype)  # raises if the chip cannot compute it at all
    if isinstance(model, Ranking):
        return _predict_ranking(chip, model, chips, prec, eff, batch, max_latency)
    for name, v in (("--input-len", input_len), ("--output-len", output_len)):
        if v < 1:
            raise UserError(f"{name} must be >= 1, got {v}")
    par = Parallel(tp=tp if tp is not None else chips // pp, ep=ep, pp=pp)
    par.validate(model)
    if chips % par.chips:
        raise UserError(f"--chips {chips} is not a multiple of tp x pp = {par.chips}")
    replicas = chips // par.chips
    mem = plan_llm(chip, model, par, prec, input_len + output_len)
    limit = min(mem.max_batch, MAX_BATCH)
    if batch is not None and batch > mem.max_batch:
        raise UserError(f"--batch {batch} does not fit: at context {input_len + output_len} at most "
                        f"{mem.max_batch} sequences fit per replica")
    cands = np.asarray([float(batch)]) if batch is not None else batch_candidates(limit)
    hw = HwVec.from_chips([chip], shape=(1,))
    m = llm_metrics(hw, model, par, prec, input_len, output_len, cands, eff)
    ok = np.ones(cands.shape, dtype=bool)
    if max_ttft is not None:
        ok &= m.ttft_s <= max_ttft
    if max_tpot is not None:
        ok &= m.tpot_s <= max_tpot
    if not ok.any():
        raise UserError(f"no batch meets the SLO (--max-ttft {max_ttft}, --max-tpot {max_tpot}): at batch "
                        f"{int(cands[0])} TTFT is {m.ttft_s[0]:.3g} s and TPOT {m.tpot_s[0]:.3g} s")
    i = int(np.argmax(np.where(ok, m.throughput_replica, -1.0)))
    total = float(m.throughput_replica[i]) * replicas
    power = float(m.power_w[i])
    d, p = m.decode, m.prefill
    return {
        "hw": chip.name, "model": model.name, "chips": chips, "tp": par.tp, "ep": par.ep, "pp": par.pp,
        "replicas": replicas, "dtype": dtype, "kv_dtype": prec.kv, "compute_dtype": chip.compute_dtype(dtype),
        "input_len": input_len, "output_len": output_len,
        "batch": int(cands[i]),
        "throughput_tokens_per_s": total,
        "per_chip_tokens_per_s": total / chips,
        "ttft_s": float(m.ttft_s[i]), "tpot_s": float(m.tpot_s[i]),
        "power_w": power, "total_power_w": power * chips,
        "joules_per_token": power * chips / total,
        "bound": str(d.bound[i]),  # what bounds the decode step, which dominates the cycle
        "prefill_bound": str(p.bound[i]),
        "memory": mem.to_dict(),
        "fidelity": str(eff.fidelity),
        "assumed_hw_values": chip.assumed_keys,
        "what_if": dict(chip.what_if),
    }


def _predict_ranking(chip: Chip, model: Ranking, chips: int, prec: Precision, eff: Efficiency,
                     batch: int | None, max_latency: float | None) -> dict[str, Any]:
    ranking_capacity_check(chip, model, chips, prec)
    slo = RANKING_DEFAULT_LATENCY_S if max_latency is None else max_latency
    cands = np.asarray([float(batch)]) if batch else batch_candidates(RANKING_MAX_BATCH)
    hw = HwVec.from_chips([chip], shape=(1,))
    c = cost(ranking_ops(model, chips, prec, cands), hw, eff)
    lat = np.broadcast_to(c.total_s, cands.shape)
    ok = lat <= slo if batch is None else np.ones(cands.shape, dtype=bool)
    if not ok.any():
        raise UserError(f"no batch meets --max-latency {slo} s: batch 1 takes {lat[0]:.3g} s")
    thr = chips * cands / lat
    i = int(np.argmax(np.where(ok, thr, -1)))
    u_c, u_m = c.utilisation(hw, prec.weights)
    power = float(np.broadcast_to(chip_power_w(hw.idle_w, hw.tdp_w, u_c, u_m), cands.shape)[i])
    return {
        "hw": chip.name, "model": model.name, "chips": chips, "dtype": prec.weights,
        "batch": int(cands[i]), "latency_s": float(lat[i]), "latency_slo_s": slo,
        "throughput_samples_per_s": float(thr[i]),
        "per_chip_samples_per_s": float(thr[i]) / chips,
        "power_w": power, "total_power_w": power * chips,
        "joules_per_sample": power * chips / float(thr[i]),
        "bound": str(np.broadcast_to(c.bound, cands.shape)[i]),
        "fidelity": str(eff.fidelity),
        "assumed_hw_values": chip.assumed_keys,
        "what_if": dict(chip.what_if),
    }
