"""One chip's best serving operating point, always from `accelsim.predict.predict`.

Search (documented so that a study and the planner pick the same point):
  LLM:     tp in powers of two up to min(scale-up domain, MAX_TP) that the heads allow; for MoE
           models ep in {1} + powers of two dividing both tp and the expert count; pp = 1, or, only
           when no pp = 1 layout fits in memory, pp in 2, 4, ... MAX_PP at the largest tp.
           Each layout is one replica (tp x pp chips); predict picks the batch under the SLOs.
  Ranking: the table-sharding group n in powers of two up to MAX_RANKING_GROUP whose shard fits.
The point with the highest throughput per chip wins (ties: the first in the order above, i.e.
the smaller layout). Raises UserError when no layout fits or meets the SLOs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.memory import plan_llm, ranking_capacity_check
from accelsim.perf import Efficiency
from accelsim.predict import predict
from accelsim.spec.chip import Chip
from accelsim.spec.model import LLM, Model, Ranking

MAX_TP = 64
MAX_PP = 16
MAX_RANKING_GROUP = 64
DEFAULT_DTYPE = {"llm": "fp8", "ranking": "bf16"}  # fp8 weights/KV is how Llama 4 is served; DLRM in bf16


@dataclass(frozen=True)
class ServingPoint:
    """The chosen operating point of one replica; rates are per chip."""

    hw: str
    model: str
    kind: Literal["llm", "ranking"]
    tp: int
    ep: int
    pp: int
    replica_chips: int
    dtype: str
    batch: int
    rate_per_chip: float  # output tokens/s (LLM) or samples/s (ranking) per chip
    chip_power_w: float  # predicted average accelerator power at this point
    bound: str
    fidelity: str
    ttft_s: float | None = None
    tpot_s: float | None = None
    latency_s: float | None = None
    assumed_hw_values: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def unit(self) -> str:
        return "tokens" if self.kind == "llm" else "samples"

    @property
    def joules_per_unit(self) -> float:
        return self.chip_power_w / self.rate_per_chip


def default_dtype(model: Model) -> str:
    return DEFAULT_DTYPE["ranking" if isinstance(model, Ranking) else "llm"]


def _pow2(limit: int) -> list[int]:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def llm_layouts(chip: Chip, model: LLM, dtype: str, context: int) -> list[Parallel]:
    """Replica layouts to try for `model` on `chip`, in search order; only layouts that fit."""
    prec = Precision.for_serving(dtype)
    tps = [tp for tp in _pow2(min(chip.scale_up_domain_size, MAX_TP)) if _valid(Parallel(tp=tp), model)]
    if not tps:
        tps = [1]
    out: list[Parallel] = []
    for tp in tps:
        eps = [1]
        if model.moe is not None:
            eps += [e for e in _pow2(tp)[1:] if model.moe.num_experts % e == 0]
        out += [Parallel(tp=tp, ep=ep) for ep in eps]
    fits = [p for p in out if _fits(chip, model, p, prec, context)]
    if fits:
        return fits
    tp = tps[-1]
    for pp in _pow2(min(MAX_PP, model.num_layers))[1:]:
        p = Parallel(tp=tp, ep=1, pp=pp)
        if _fits(chip, model, p, prec, context):
            return [p]
    return []


def ranking_groups(chip: Chip, model: Ranking, dtype: str) -> list[int]:
    prec = Precision.for_serving(dtype)
    out = []
    for n in _pow2(MAX_RANKING_GROUP):
        try:
            ranking_capacity_check(chip, model, n, prec)
        except UserError:
            continue
        out.append(n)
    return out


def _valid(par: Parallel, model: LLM) -> bool:
    try:
        par.validate(model)
    except UserError:
        return False
    return True


def _fits(chip: Chip, model: LLM, par: Parallel, prec: Precision, context: int) -> bool:
    if not _valid(par, model):
        return False
    try:
        plan_llm(chip, model, par, prec, context)
    except UserError:
        return False
    return True


def _best(attempts: Iterable[Callable[[], dict[str, Any]]]) -> tuple[dict[str, Any] | None, UserError | None]:
    """The prediction with the highest per-chip rate among `attempts` that do not raise, and the
    last UserError (why a layout failed), for the caller's message when none succeeds."""
    best, last_err = None, None
    for attempt in attempts:
        try:
            r = attempt()
        except UserError as exc:
            last_err = exc
            continue
        key = "per_chip_tokens_per_s" if "per_chip_tokens_per_s" in r else "per_chip_samples_per_s"
        if best is None or r[key] > best[key]:
            best = r
    return best, last_err


def best_point(chip: Chip, model: Model, *, eff: Efficiency, dtype: str | None = None, input_len: int = 1000,
               output_len: int = 1000, max_ttft: float | None = None, max_tpot: float | None = None,
               max_latency: float | None = None, layout: Parallel | None = None) -> ServingPoint:
    """The highest-throughput-per-chip operating point of `model` on `chip` (see module doc).
    `layout` pins an LLM replica layout instead of searching."""
    dtype = dtype or default_dtype(model)
    chip.compute_dtype(dtype)
    if isinstance(model, Ranking):
        groups = ranking_groups(chip, model, dtype)
        if not groups:
            raise UserError(f"{model.name} does not fit on up to {MAX_RANKING_GROUP} x {chip.name} in {dtype}")
        best, last_err = _best(
            (lambda n=n: predict(chip, model, chips=n, eff=eff, dtype=dtype, max_latency=max_latency))
            for n in groups)
        if best is None:
            raise last_err or UserError(f"no layout of {model.name} on {chip.name} meets the latency SLO")
        return ServingPoint(chip.name, model.name, "ranking", 1, 1, 1, best["chips"], dtype, best["batch"],
                            best["per_chip_samples_per_s"], best["power_w"], best["bound"], best["fidelity"],
                            latency_s=best["latency_s"], assumed_hw_values=tuple(best["assumed_hw_values"]),
                            detail=best)
    assert isinstance(model, LLM)
    layouts = [layout] if layout else llm_layouts(chip, model, dtype, input_len + output_len)
    if not layouts:
        raise UserError(f"{model.name} does not fit on {chip.name} in {dtype} with tp <= "
                        f"{min(chip.scale_up_domain_size, MAX_TP)} and pp <= {MAX_PP}")
    best, last_err = _best(
        (lambda par=par: predict(chip, model, chips=par.chips, eff=eff, tp=par.tp, ep=par.ep, pp=par.pp,
                                 dtype=dtype, input_len=input_len, output_len=output_len, max_ttft=max_ttft,
                                 max_tpot=max_tpot))
        for par in layouts)
    if best is None:
        assert last_err is not None
        raise UserError(f"{model.name} on {chip.name}: no layout meets the SLOs ({last_err})")
    return ServingPoint(chip.name, model.name, "llm", best["tp"], best["ep"], best["pp"], best["tp"] * best["pp"],
                        dtype, best["batch"], best["per_chip_tokens_per_s"], best["power_w"], best["bound"],
                        best["fidelity"], ttft_s=best["ttft_s"], tpot_s=best["tpot_s"],
                        assumed_hw_values=tuple(best["assumed_hw_values"]), detail=best)
