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

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision, llm_ops, ranking_ops
from accelsim.memory import MemoryPlan
from accelsim.modes import PLAIN, Modes, decode_step, prefill_shape, vision_cost
from accelsim.ops import Op
from accelsim.perf import Cost, Efficiency, Fidelity, HwVec, cost
from accelsim.power import chip_power_w
from accelsim.spec.chip import Chip, ServingDtype
from accelsim.spec.model import LLM, Model, Ranking

CHUNK_TOKENS = 8192  # max batched prefill tokens per iteration (vLLM/TRT-LLM-like default; assumed)
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
    tpot_s: np.ndarray
    power_w: np.ndarray  # per chip, averaged over the cycle
    decode: Cost
    prefill: Cost
    cycle_s: np.ndarray


def llm_metrics(hw: HwVec, model: LLM, par: Parallel, prec: Precision, input_len: int, output_len: int,
                batch: np.ndarray, eff: Efficiency, modes: Modes = PLAIN) -> LLMMetrics:
    """`modes` (accelsim.modes): image tokens lengthen the prompt and add the vision encoder to
    prefill, a prefix hit shortens prefill, speculative decoding changes the decode step and the
    tokens it emits."""
    b = np.asarray(batch, dtype=np.float64)
    pp = par.pp
    prompt = modes.prompt_len(input_len)
    new, pre_ctx = prefill_shape(prompt, modes.prefix_hit)  # tokens computed per prompt, their context
    ctx = prompt + output_len / 2
    step = decode_step(hw, model, par, prec, b / pp, ctx, eff, modes)
    dec = step.cost
    t_step = pp * dec.total_s
    chunk = np.minimum(b * new, CHUNK_TOKENS)
    pre = _with_vision(cost(llm_ops(model, par, prec, "prefill", chunk, pre_ctx, prefill_sequences=chunk / new),
                            hw, eff), hw, model, par, prec, chunk / new, eff, modes)
    n_chunks = b * new / chunk
    t_prefill = n_chunks * pre.total_s
    n_steps = output_len / step.tokens_per_seq
    cycle = t_prefill + n_steps * t_step
    one = min(new, CHUNK_TOKENS)
    first = _with_vision(cost(llm_ops(model, par, prec, "prefill", np.asarray(float(one)), pre_ctx), hw, eff),
                         hw, model, par, prec, one / new, eff, modes)
    ttft = np.ceil(new / one) * pp * first.total_s + t_step

    work = pre.scale(n_chunks) + dec.scale(pp * n_steps)
    dtype = prec.weights
    u_c = np.clip(work.flops / pp / (hw.peak[dtype] * cycle), 0, 1)
    u_m = np.clip(work.bytes / pp / (hw.mem_bw * cycle), 0, 1)
    power = chip_power_w(hw.idle_w, hw.tdp_w, u_c, u_m)
    return LLMMetrics(b, b * output_len / cycle, ttft, cycle / output_len, power, dec, pre, cycle)


def _with_vision(pre: Cost, hw: HwVec, model: LLM, par: Parallel, prec: Precision, prompts: Any, eff: Efficiency,
                 modes: Modes) -> Cost:
    vis = vision_cost(hw, model, par, prec, prompts, eff, modes)
    return pre if vis is None else pre + vis


def batch_candidates(max_batch: int) -> np.ndarray:
    """Batches to try up to `max_batch`: powers of two, half-octave steps between them (a finer
    choice when an SLO binds), and `max_batch` itself."""
    pow2 = 2 ** np.arange(0, int(np.log2(max(max_batch, 1))) + 1)
    c = np.unique(np.concatenate([pow2, 3 * pow2[1:] // 2, [max_batch]]))
    return c[c <= max_batch].astype(np.float64)


@dataclass(frozen=True)
class RankingMetrics:
    """Arrays broadcast over (chips x batches)."""

    batch: np.ndarray
    latency_s: np.ndarray
    throughput_chip: np.ndarray  # samples/s of one chip
    power_w: np.ndarray  # per chip
    step: Cost


def ranking_metrics(hw: HwVec, model: Ranking, shards: int, prec: Precision, batch: np.ndarray,
                    eff: Efficiency) -> RankingMetrics:
    """One ranking batch step of `batch` samples per chip, tables sharded over `shards` chips,
    broadcast over (chips x batches) like `llm_metrics`."""
    b = np.asarray(batch, dtype=np.float64)
    c = cost(ranking_ops(model, shards, prec, b), hw, eff)
    u_c, u_m = c.utilisation(hw, prec.weights)
    return RankingMetrics(b, c.total_s, b / c.total_s, chip_power_w(hw.idle_w, hw.tdp_w, u_c, u_m), c)



# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankingLayout:
    """A ranking deployment unit: `shards` chips hold one copy of the embedding tables between them
    (model parallel); dense layers are replicated on each. `--chips N` serves N / shards such copies."""

    shards: int = 1

    @property
    def chips(self) -> int:
        return self.shards


Layout = Parallel | RankingLayout


def time_shares(c: Cost) -> dict[str, float]:
    """Fractions of a (scalar) step's time spent in compute-, memory-bound, communication, overhead."""
    total = max(float(c.total_s), 1e-30)
    return {f"{k}_share": float(getattr(c, f"{k}_s")) / total for k in ("compute", "memory", "comm", "overhead")}


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

    def layout_kwargs(self) -> dict[str, int]:
        """`predict` keywords that pin this layout."""
        return {"tp": self.tp, "ep": self.ep, "pp": self.pp}

    def step_ops(self) -> dict[str, list[Op]]:
        """The operators of the costed steps, lowered as `llm_metrics` lowers them in plain serving:
        'decode' (batch / pp sequences at the average context) and 'prefill' (one chunk of prompts)."""
        b, i, par = float(self.batch), self.input_len, self.layout
        chunk = min(b * i, CHUNK_TOKENS)
        return {"decode": llm_ops(self.model, par, self.precision, "decode", b / par.pp, i + self.output_len / 2),
                "prefill": llm_ops(self.model, par, self.precision, "prefill", chunk, i / 2,
                                   prefill_sequences=chunk / i)}

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
    kind: ClassVar[Kind] = "ranking"
    unit: ClassVar[str] = "samples"

    @property
    def bound(self) -> str:
        return str(self.step.bound)

    @property
    def shards(self) -> int:
        return self.layout.shards

    @property
    def shares(self) -> dict[str, float]:
        """Time shares of the batch step (`time_shares`)."""
        return time_shares(self.step)

    def layout_kwargs(self) -> dict[str, int]:
        return {"shards": self.shards}

    def step_ops(self) -> dict[str, list[Op]]:
        """The operators of the costed batch step on one chip."""
        return {"ranking": ranking_ops(self.model, self.shards, self.precision, float(self.batch))}

    def to_dict(self) -> dict[str, Any]:
        total, chips = self.throughput, self.chips
        return {
            "hw": self.chip.name, "model": self.model.name, "chips": chips, "shards": self.shards,
            "replicas": self.replicas, "dtype": self.dtype,
            "batch": self.batch, "latency_s": self.latency_s, "latency_slo_s": self.latency_slo_s,
            "throughput_samples_per_s": total,
            "per_chip_samples_per_s": self.rate_per_chip,
            "power_w": self.power_w, "total_power_w": self.power_w * chips,
            "joules_per_sample": self.joules_per_unit,
            "bound": self.bound,
            "step_time_shares": self.shares,
            "fidelity": str(self.fidelity),
            "assumed_hw_values": self.assumed_hw_values,
            "what_if": self.what_if,
        }


Prediction = LLMPrediction | RankingPrediction


def predict(chip: Chip, model: Model, *, chips: int, eff: Efficiency, tp: int | None = None,
            ep: int | None = None, pp: int | None = None, shards: int | None = None, dtype: ServingDtype = "bf16",
            kv_dtype: ServingDtype | None = None, input_len: int = 1000, output_len: int = 1000,
            batch: int | None = None, max_ttft: float | None = None, max_tpot: float | None = None,
            max_latency: float | None = None, modes: Modes = PLAIN, attention_dp: bool = False) -> Prediction:
    """The best operating point of `model` on `chips` x `chip` (`accelsim predict`).
    `modes`: speculative decoding, prefix hits, image tokens; `attention_dp`: attention data parallel
    with wide EP (searched, or with tp/ep pinned: dp = ep / tp).

    LLM: with none of tp / ep / pp the replica layout is searched (`accelsim.search`: layouts whose
    chips divide `chips`); any of them pins it (tp defaults to chips / pp, ep and pp to 1).
    Ranking: `shards` pins how many chips share one copy of the tables; None searches it.
    The batch is searched under the SLOs unless given. Raises UserError for bad input, a model
    that does not fit, or SLOs no batch meets.
    """
    from accelsim.search import Query, best  # the search evaluates through this module's metrics

    if chips < 1:
        raise UserError(f"--chips must be >= 1, got {chips}")
    q = Query(model, eff, dtype, kv_dtype=kv_dtype, input_len=input_len, output_len=output_len, batch=batch,
              max_ttft=max_ttft, max_tpot=max_tpot, max_latency=max_latency, modes=modes,
              attention_dp=attention_dp)
    layout: Layout | None = None
    if isinstance(model, Ranking):
        layout = RankingLayout(shards) if shards is not None else None
    elif (tp, ep, pp) != (None, None, None):
        pp = pp or 1
        t = tp if tp is not None else (1 if attention_dp else max(chips // pp, 1))
        e = ep or (chips // pp if attention_dp else 1)
        layout = Parallel(tp=t, ep=e, pp=pp, dp=max(e // t, 1) if attention_dp else 1)
    return best(chip, q, total_chips=chips, layout=layout)
