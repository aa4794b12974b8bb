"""Disaggregated prefill/decode: a prefill pool and a decode pool, possibly of different chips,
with each prompt's KV cache moved from one to the other (Splitwise, DistServe, Dynamo).

Steady state, in requests/s (the pools run in tandem, so the slower stage sets the rate):
    prefill pool  r_p = replicas_p x (C / L_new) / t_chunk     full chunks of C = CHUNK_TOKENS tokens
    decode pool   r_d = replicas_d x B x E / (t_step (O - 1))  B sequences, E tokens per step (1, or
                                                               speculative), O - 1 tokens after the first
    KV link       r_x = link_bytes_per_s / KV(L)               KV(L): the whole prompt's cache
    throughput    min(r_p, r_d, r_x) x O output tokens/s
The prefill emits the first token (TTFT = the prompt's prefill alone, as `predict.llm_metrics`
costs it); the KV transfer then delays the second. The faster pools idle for the rest of the
time: their power is idle + (busy - idle) x duty, duty = throughput / own rate.

The link: when both pools are chips of one family whose scale-up domains can hold both pools
(MTIA 400 and 450 share Meta's rack and network; H100 and H200 share NVLink 4), the KV crosses
the scale-up fabric; otherwise the scale-out network. Every prefill chip sends its shard and every
decode chip receives one, so the link moves min(N_p x bw_p, N_d x bw_d) x network efficiency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from accelsim import ops as O
from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision, llm_ops, sampler_ops
from accelsim.memory import kv_bytes_per_seq, plan_llm
from accelsim.modes import PLAIN, Modes, decode_step, draft_weight_bytes_per_chip, prefill_shape, vision_cost
from accelsim.perf import Cost, Efficiency, HwVec, cost, engine_term, fidelity_on
from accelsim.power import chip_power_w, working_power_w
from accelsim.predict import CHUNK_TOKENS, MAX_BATCH, batch_candidates
from accelsim.spec.chip import Chip
from accelsim.spec.model import LLM

Fabric = Literal["scale-up", "scale-out"]
Bottleneck = Literal["prefill", "decode", "kv_transfer"]


def parse_disagg(text: str) -> tuple[tuple[str, int | None], tuple[str, int | None]]:
    """`PREFILL_CHIP:N,DECODE_CHIP:M`, or `PREFILL_CHIP,DECODE_CHIP` (search the split of --chips)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise UserError(f"--disagg '{text}': expected PREFILL_CHIP:N,DECODE_CHIP:M (e.g. mtia-400:16,mtia-450:32)")
    out = []
    for p in parts:
        name, sep, n = p.partition(":")
        if not sep:
            out.append((name, None))
            continue
        if not n.isdigit() or int(n) < 1:
            raise UserError(f"--disagg '{text}': chip count '{n}' must be an integer >= 1")
        out.append((name, int(n)))
    if (out[0][1] is None) != (out[1][1] is None):
        raise UserError(f"--disagg '{text}': give both pool sizes, or neither (then --chips splits)")
    return out[0], out[1]


@dataclass(frozen=True)
class Stage:
    """One replica layout of one pool, at its best batch: rates in requests/s of one replica."""

    layout: Parallel
    rate_req_s: float
    batch: int  # decode: sequences per replica; prefill: prompts per chunk (may be fractional: rounded)
    latency_s: float  # prefill: the prompt's prefill alone (TTFT); decode: TPOT
    busy_power_w: float  # per chip while busy
    bound: str


@dataclass(frozen=True)
class Pool:
    chip: Chip
    chips: int
    stage: Stage
    replicas: int

    @property
    def rate_req_s(self) -> float:
        return self.replicas * self.stage.rate_req_s

    def power_w(self, duty: float) -> float:
        """Average power per chip when busy a `duty` share of the time; a waiting chip (and one left
        over by the layout) draws the serving floor (`power.chip_power_w` at zero duty)."""
        c = self.chip
        floor = float(chip_power_w(c.idle_w, c.tdp_w, 0.0, 0.0, 0.0))
        used = self.replicas * self.stage.layout.chips
        return (used * (floor + (self.stage.busy_power_w - floor) * duty) + (self.chips - used) * floor) / self.chips


@dataclass(frozen=True)
class KVLink:
    fabric: Fabric
    bytes_per_request: float
    bytes_per_s: float  # what the link moves between the pools, all chips together
    latency_s: float  # one request's transfer (its prefill replica's chips send in parallel)

    @property
    def rate_req_s(self) -> float:
        return self.bytes_per_s / self.bytes_per_request


@dataclass(frozen=True)
class DisaggPrediction:
    model: LLM
    prefill: Pool
    decode: Pool
    link: KVLink
    input_len: int
    output_len: int
    modes: Modes
    fidelity: str

    @property
    def chips(self) -> int:
        return self.prefill.chips + self.decode.chips

    @property
    def rate_req_s(self) -> float:
        return min(self.prefill.rate_req_s, self.decode.rate_req_s, self.link.rate_req_s)

    @property
    def throughput(self) -> float:
        """Output tokens/s of both pools together."""
        return self.rate_req_s * self.output_len

    @property
    def rate_per_chip(self) -> float:
        return self.throughput / self.chips

    @property
    def bottleneck(self) -> Bottleneck:
        rates = {"prefill": self.prefill.rate_req_s, "decode": self.decode.rate_req_s,
                 "kv_transfer": self.link.rate_req_s}
        return min(rates, key=rates.__getitem__)  # type: ignore[return-value]

    @property
    def total_power_w(self) -> float:
        r = self.rate_req_s
        return (self.prefill.chips * self.prefill.power_w(r / self.prefill.rate_req_s)
                + self.decode.chips * self.decode.power_w(r / self.decode.rate_req_s))

    def to_dict(self) -> dict[str, Any]:
        def pool(p: Pool) -> dict[str, Any]:
            s = p.stage
            return {"hw": p.chip.name, "chips": p.chips, "tp": s.layout.tp, "ep": s.layout.ep, "pp": s.layout.pp,
                    "dp": s.layout.dp, "replicas": p.replicas, "batch": s.batch, "requests_per_s": p.rate_req_s,
                    "utilisation": self.rate_req_s / p.rate_req_s, "bound": s.bound,
                    "assumed_hw_values": p.chip.assumed_keys}

        power = self.total_power_w
        return {
            "mode": "disaggregated", "model": self.model.name, "chips": self.chips,
            "input_len": self.input_len, "output_len": self.output_len, "modes": self.modes.to_dict(),
            "prefill": pool(self.prefill), "decode": pool(self.decode),
            "kv_transfer": {"fabric": self.link.fabric, "bytes_per_request": self.link.bytes_per_request,
                            "bytes_per_s": self.link.bytes_per_s, "requests_per_s": self.link.rate_req_s,
                            "latency_s": self.link.latency_s},
            "bottleneck": self.bottleneck,
            "requests_per_s": self.rate_req_s,
            "throughput_tokens_per_s": self.throughput,
            "per_chip_tokens_per_s": self.rate_per_chip,
            "ttft_s": self.prefill.stage.latency_s, "tpot_s": self.decode.stage.latency_s,
            "e2e_latency_s": self.prefill.stage.latency_s + self.link.latency_s
            + (self.output_len - 1) * self.decode.stage.latency_s,
            "total_power_w": power, "joules_per_token": power / self.throughput,
            "fidelity": self.fidelity,
        }


# ---- the stages -------------------------------------------------------------------------------------
def _power(c: Cost, hw: HwVec, dtype: str, wall_s: Any = None) -> np.ndarray:
    """Power while a stage runs back to back, by predict.llm_metrics' rule: utilisations over the
    kernels' working time (compute- and memory-bound), duty = that time / the step's wall time."""
    return working_power_w(hw.idle_w, hw.tdp_w, hw.peak[dtype], hw.mem_bw, c.flops, c.bytes, c.compute_s + c.memory_s,
                           c.total_s if wall_s is None else wall_s)


def _default_dtype(model: LLM) -> str:
    from accelsim.search import default_dtype  # the format every command serves a model in by default

    return default_dtype(model)


def _layouts(chip: Chip, model: LLM, prec: Precision, context: int, chips: int | None,
             attention_dp: bool) -> list[Parallel]:
    from accelsim.search import llm_candidates  # the one layout enumeration

    lays = llm_candidates(chip, model, prec, context, chips, attention_dp=attention_dp)
    return [p for p in lays if isinstance(p, Parallel)]


def prefill_stages(chip: Chip, model: LLM, prec: Precision, eff: Efficiency, input_len: int, modes: Modes,
                   chips: int | None = None, max_ttft: float | None = None,
                   attention_dp: bool = False) -> list[Stage]:
    """Each fitting layout's prefill-only replica: full chunks back to back (pipeline stages
    stream them), TTFT = one prompt's prefill alone (within `max_ttft`)."""
    hw = HwVec.from_chips([chip])
    prompt = modes.prompt_len(input_len)
    new, ctx = prefill_shape(prompt, modes.prefix_hit)
    chunk = float(CHUNK_TOKENS)  # chunked prefill: prompts split across chunks, every chunk full
    host = engine_term(eff, "host_step_s") + engine_term(eff, "moe_layer_latency_s") * model.num_moe_layers
    out = []
    for par in _layouts(chip, model, prec, prompt + 1, chips, attention_dp):
        c = cost(llm_ops(model, par, prec, "prefill", chunk, ctx, prefill_sequences=chunk / new), hw, eff)
        vis = vision_cost(hw, model, par, prec, chunk / new, eff, modes)
        c = c if vis is None else c + vis
        one = min(new, CHUNK_TOKENS)
        f = cost(llm_ops(model, par, prec, "prefill", one, ctx), hw, eff)
        fv = vision_cost(hw, model, par, prec, one / new, eff, modes)
        f = f if fv is None else f + fv
        ttft = math.ceil(new / one) * par.pp * float(np.ravel(f.total_s)[0])
        if max_ttft is not None and ttft > max_ttft:
            continue
        t_chunk = float(np.ravel(c.total_s)[0]) + host  # the engine's host time per step (stack)
        out.append(Stage(par, chunk / new / t_chunk, max(round(chunk / new), 1), ttft,
                         float(np.ravel(_power(c, hw, prec.gemm_dtype, t_chunk))[0]), str(np.ravel(c.bound)[0])))
    return out


def decode_stages(chip: Chip, model: LLM, prec: Precision, eff: Efficiency, input_len: int, output_len: int,
                  modes: Modes, chips: int | None = None, max_tpot: float | None = None,
                  attention_dp: bool = False) -> list[Stage]:
    """Each fitting layout's decode-only replica at its best batch under `max_tpot`."""
    hw = HwVec.from_chips([chip], shape=(1,))
    prompt = modes.prompt_len(input_len)
    ctx = prompt + output_len / 2
    steps_out = max(output_len - 1, 1)
    host = engine_term(eff, "host_step_s") + engine_term(eff, "moe_layer_latency_s") * model.num_moe_layers
    smp_bytes = engine_term(eff, "sampler_bytes_per_logit")
    out = []
    for par in _layouts(chip, model, prec, prompt + output_len, chips, attention_dp):
        mem = plan_llm(chip, model, par, prec, prompt + output_len, output_len=output_len,
                       extra_weight_bytes=draft_weight_bytes_per_chip(modes.spec, par, prec))
        b = batch_candidates(min(mem.max_batch, MAX_BATCH * par.dp))
        st = decode_step(hw, model, par, prec, b / par.pp, ctx, eff, modes)
        # + the engine's host time per step and the sampler (stack), as predict.llm_metrics
        smp = cost(sampler_ops(model, b, smp_bytes), hw, eff).total_s
        t_step = par.pp * np.broadcast_to(st.cost.total_s, b.shape) + host + smp
        tpot = t_step / st.tokens_per_seq
        rate = b * st.tokens_per_seq / t_step / steps_out
        ok = np.ones(b.shape, bool) if max_tpot is None else tpot <= max_tpot
        if not ok.any():
            continue
        i = int(np.argmax(np.where(ok, rate, -1.0)))
        pw = np.broadcast_to(_power(st.cost.scale(par.pp), hw, prec.gemm_dtype, t_step), b.shape)
        out.append(Stage(par, float(rate[i]), int(b[i]), float(tpot[i]), float(pw[i]),
                         str(np.broadcast_to(st.cost.bound, b.shape)[i])))
    return out


def best_pool(chip: Chip, chips: int, stages: Sequence[Stage]) -> Pool | None:
    """The layout whose replicas that fit in `chips` serve the most requests/s (chips left over idle)."""
    pools = [Pool(chip, chips, s, chips // s.layout.chips) for s in stages if s.layout.chips <= chips]
    return max(pools, key=lambda p: p.rate_req_s, default=None)


def fabric(a: Chip, n_a: int, b: Chip, n_b: int, eff: Efficiency) -> tuple[Fabric, float, float]:
    """(fabric, usable bytes/s per chip of pool a, of pool b) for KV moving from n_a x a to n_b x b:
    one direction of the link, times the stack's network efficiency (module doc). A calibrated
    efficiency wraps the stack as `base`: its collective curves are per message size (a 1-byte probe
    would read as a near-zero bandwidth), so the bulk KV stream takes the stack's factor."""
    shared = a.family == b.family and n_a + n_b <= min(a.scale_up_domain_size, b.scale_up_domain_size)
    hw = HwVec.from_chips([a, b])
    bw = hw.scale_up_bw if shared else hw.scale_out_bw  # per direction, as the collectives use it
    stack = eff
    while getattr(stack, "base", None) is not None:
        stack = stack.base
    net = float(np.ravel(stack.network(O.all_to_all("kv_transfer", 1.0, 2, dtype="bf16"), hw))[0])
    return ("scale-up" if shared else "scale-out"), float(bw[0]) * net, float(bw[1]) * net


def kv_request_bytes(model: LLM, prec: Precision, prompt_tokens: float) -> float:
    """The whole KV cache of one prompt (every layer and head): what crosses between the pools."""
    return float(kv_bytes_per_seq(model, Parallel(), prec, prompt_tokens))


def kv_link(prefill: Pool, decode: Pool, model: LLM, prec: Precision, prompt_tokens: float,
            eff: Efficiency) -> KVLink:
    """The KV cache of one prompt and the fabric it crosses between the pools (module doc)."""
    kind, bw_p, bw_d = fabric(prefill.chip, prefill.chips, decode.chip, decode.chips, eff)
    kv = kv_request_bytes(model, prec, prompt_tokens)
    moved = min(prefill.chips * bw_p, decode.chips * bw_d)
    return KVLink(kind, kv, moved, kv / (prefill.stage.layout.chips * bw_p) + eff.link_latency_s)


def predict_disagg(prefill_chip: Chip, prefill_chips: int, decode_chip: Chip, decode_chips: int, model: LLM, *,
                   eff: Efficiency, dtype: str | None = None, kv_dtype: str | None = None, input_len: int = 1000,
                   output_len: int = 1000, max_ttft: float | None = None, max_tpot: float | None = None,
                   modes: Modes = PLAIN, attention_dp: bool = False) -> DisaggPrediction:
    """Throughput, latency and power of a prefill pool of `prefill_chips` x `prefill_chip` feeding a
    decode pool of `decode_chips` x `decode_chip` (module doc). Raises UserError when a pool
    cannot hold the model or meet its SLO."""
    if not isinstance(model, LLM):
        raise UserError(f"--disagg serves LLMs; {model.name} is a ranking model")
    for name, n in (("prefill", prefill_chips), ("decode", decode_chips)):
        if n < 1:
            raise UserError(f"--disagg: the {name} pool needs >= 1 chip, got {n}")
    modes.validate(model)
    dtype = dtype or _default_dtype(model)
    prec = Precision.for_serving(dtype, kv_dtype)
    for chip in (prefill_chip, decode_chip):
        chip.compute_dtype(dtype)
    p_st = prefill_stages(prefill_chip, model, prec, eff, input_len, modes, prefill_chips, max_ttft, attention_dp)
    d_st = decode_stages(decode_chip, model, prec, eff, input_len, output_len, modes, decode_chips, max_tpot,
                         attention_dp)
    p, d = best_pool(prefill_chip, prefill_chips, p_st), best_pool(decode_chip, decode_chips, d_st)
    if p is None:
        raise UserError(f"no layout of {model.name} on {prefill_chips} x {prefill_chip.name} prefills within "
                        f"--max-ttft {max_ttft}")
    if d is None:
        raise UserError(f"no layout of {model.name} on {decode_chips} x {decode_chip.name} decodes within "
                        f"--max-tpot {max_tpot}")
    link = kv_link(p, d, model, prec, modes.prompt_len(input_len), eff)
    return DisaggPrediction(model, p, d, link, input_len, output_len, modes,
                            str(fidelity_on(eff, [prefill_chip, decode_chip])))


def best_split(prefill_chip: Chip, decode_chip: Chip, total_chips: int, model: LLM, *, eff: Efficiency,
               dtype: str | None = None, kv_dtype: str | None = None, input_len: int = 1000,
               output_len: int = 1000, max_ttft: float | None = None, max_tpot: float | None = None,
               modes: Modes = PLAIN, attention_dp: bool = False) -> DisaggPrediction:
    """The split of `total_chips` into a prefill and a decode pool that serves the most tokens/s.
    Each pool's layouts are costed once; a split only recombines them (replicas = chips // layout)."""
    dtype = dtype or _default_dtype(model)
    prec = Precision.for_serving(dtype, kv_dtype)
    modes.validate(model)
    p_st = prefill_stages(prefill_chip, model, prec, eff, input_len, modes, None, max_ttft, attention_dp)
    d_st = decode_stages(decode_chip, model, prec, eff, input_len, output_len, modes, None, max_tpot, attention_dp)
    best: DisaggPrediction | None = None
    for n_p in range(1, total_chips):
        p, d = best_pool(prefill_chip, n_p, p_st), best_pool(decode_chip, total_chips - n_p, d_st)
        if p is None or d is None:
            continue
        link = kv_link(p, d, model, prec, modes.prompt_len(input_len), eff)
        r = DisaggPrediction(model, p, d, link, input_len, output_len, modes,
                             str(fidelity_on(eff, [prefill_chip, decode_chip])))
        if best is None or r.throughput > best.throughput:
            best = r
    if best is None:
        raise UserError(f"no split of {total_chips} chips into {prefill_chip.name} prefill and {decode_chip.name} "
                        f"decode pools holds {model.name} within the SLOs")
    return best
