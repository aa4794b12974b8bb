"""The one search for the best layout and batch: `predict`, `plan`, `compare`, the studies and the
dashboard all call it, so they all pick the same operating point.

Layouts (in search order; ties go to the first, i.e. the smaller layout):
  LLM:     tp in powers of two up to min(scale-up domain, MAX_TP) that the heads allow; for MoE
           models ep in {1} + powers of two dividing both tp and the expert count; pp = 1, or, only
           when no pp = 1 layout fits in memory, pp in 2, 4, ... MAX_PP at the largest tp.
  Ranking: `shards` (chips sharing one copy of the tables) in powers of two up to MAX_SHARDS.
With `total_chips` N (`accelsim predict --chips N`) only layouts whose chips divide N are tried
(ranking: N itself too); without it each layout is one replica (`plan`, the studies, the dashboard).
Batches: `batch_candidates` up to what fits (LLM: also MAX_BATCH); the highest throughput per chip
that meets the SLOs wins. A pinned `layout` (or `tp`) replaces the layout search.

Vectorised: one NumPy evaluation per layout over all chips x batches; chunks (one layout over the
chips that can use it) go through an optional executor (`accelsim study --ray`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.memory import RESERVE_FRACTION, MemoryPlan, plan_llm, ranking_capacity_check
from accelsim.modes import PLAIN, Modes, draft_weight_bytes_per_chip
from accelsim.perf import Cost, Efficiency, HwVec, fidelity_on
from accelsim.predict import (
    MAX_BATCH,
    RANKING_DEFAULT_LATENCY_S,
    RANKING_MAX_BATCH,
    Layout,
    LLMPrediction,
    Prediction,
    RankingLayout,
    RankingPrediction,
    batch_candidates,
    llm_metrics,
    ranking_metrics,
)
from accelsim.ranking import Placement
from accelsim.spec.chip import SERVING_DTYPES, Chip, ServingDtype
from accelsim.spec.model import LLM, Model, Ranking

MAX_TP = 64
MAX_PP = 16
MAX_SHARDS = 64
# The format a model is served in when a command is not told: fp8 weights and KV is how Llama 4
# is served (Meta's release ships fp8 Maverick); DLRM inference runs in bf16.
DEFAULT_DTYPE: dict[str, ServingDtype] = {"llm": "fp8", "ranking": "bf16"}


def default_dtype(model: Model) -> ServingDtype:
    return DEFAULT_DTYPE["ranking" if isinstance(model, Ranking) else "llm"]


@dataclass(frozen=True)
class Query:
    """What to serve, the same for every chip of a search: model, formats, request shape, SLOs.
    `batch` pins the batch (sequences per replica; ranking: samples per chip)."""

    model: Model
    eff: Efficiency
    dtype: ServingDtype
    kv_dtype: ServingDtype | None = None
    input_len: int = 1000
    output_len: int = 1000
    batch: int | None = None
    max_ttft: float | None = None
    max_tpot: float | None = None
    max_latency: float | None = None
    modes: Modes = PLAIN  # speculative decoding, prefix hits, image tokens (accelsim.modes)
    attention_dp: bool = False  # also try attention-DP layouts with experts over every chip (wide EP)
    placement: Placement | None = None  # ranking: pin where the tables live (None: the planner's rule)

    def __post_init__(self) -> None:
        for name, d in (("--dtype", self.dtype), ("--kv-dtype", self.kv_dtype)):
            if d is not None and d not in SERVING_DTYPES:
                raise UserError(f"{name} '{d}' is not one of {', '.join(SERVING_DTYPES)}")
        checks = [("--batch", self.batch)]
        if isinstance(self.model, LLM):
            checks += [("--input-len", self.input_len), ("--output-len", self.output_len)]
            if self.placement is not None:
                raise UserError(f"--placement places ranking tables; {self.model.name} is an LLM (use --tp/--ep/--pp)")
        for name, v in checks:
            if v is not None and v < 1:
                raise UserError(f"{name} must be >= 1, got {v}")

    @property
    def precision(self) -> Precision:
        return Precision.for_serving(self.dtype, self.kv_dtype)

    @property
    def context(self) -> int:
        return self.modes.prompt_len(self.input_len) + self.output_len


def query(model: Model, eff: Efficiency, dtype: ServingDtype | None = None, **kw: Any) -> Query:
    """A `Query` in the model's default format unless `dtype` is given."""
    return Query(model, eff, dtype or default_dtype(model), **kw)


class Mapper(Protocol):
    """Runs `fn` over chunks, results in order (`accelsim.study.sweep.LocalExecutor`, `RayExecutor`)."""

    def map(self, fn: Callable[[Any], Any], chunks: Sequence[Any], *, label: str = ...) -> list[Any]: ...


Outcome = Prediction | UserError  # per chip: its best point, or why there is none


def best(chip: Chip, q: Query, *, total_chips: int | None = None, layout: Layout | None = None,
         tp: int | None = None) -> Prediction:
    """The best point of one chip (see `search`); raises its UserError when there is none."""
    (out,) = search([chip], q, total_chips=total_chips, layout=layout, tp=tp)
    if isinstance(out, UserError):
        raise out
    return out


def search(chips: Sequence[Chip], q: Query, *, total_chips: int | None = None, layout: Layout | None = None,
           tp: int | None = None, executor: Mapper | None = None, label: str = "search") -> list[Outcome]:
    """Each chip's highest-throughput-per-chip point over its layouts and batches (module doc).

    total_chips: deploy on exactly this many chips (layouts must divide it); None: one replica.
    layout: evaluate only this layout; tp: LLM only, search ep at this tensor-parallel size.
    Returns one `LLMPrediction` / `RankingPrediction`, or the `UserError` saying why not, per chip.
    """
    if total_chips is not None and total_chips < 1:
        raise UserError(f"--chips must be >= 1, got {total_chips}")
    per_chip: list[list[Layout] | UserError] = []
    for chip in chips:
        try:
            chip.compute_dtype(q.dtype)  # a chip that cannot compute the format at all
            per_chip.append(candidates(chip, q, total_chips=total_chips, layout=layout, tp=tp))
        except UserError as exc:
            per_chip.append(exc)
    distinct = list(dict.fromkeys(lay for lays in per_chip if not isinstance(lays, UserError) for lay in lays))
    members = [[k for k, lays in enumerate(per_chip) if not isinstance(lays, UserError) and lay in lays]
               for lay in distinct]
    tasks = [([chips[k] for k in ks], q, lay, total_chips) for lay, ks in zip(distinct, members)]
    results = executor.map(_chunk, tasks, label=label) if executor else [_chunk(t) for t in tasks]
    by = {(lay, k): r for lay, ks, rs in zip(distinct, members, results) for k, r in zip(ks, rs)}
    return [lays if isinstance(lays, UserError) else _pick(lays, [by[lay, k] for lay in lays])
            for k, lays in enumerate(per_chip)]


def _pick(layouts: list[Layout], outcomes: list[Outcome]) -> Outcome:
    """The first highest rate per chip; when none succeeds, the only error or the last layout's."""
    best_: Prediction | None = None
    for r in outcomes:
        if not isinstance(r, UserError) and (best_ is None or r.rate_per_chip > best_.rate_per_chip):
            best_ = r
    if best_ is not None:
        return best_
    err = outcomes[-1]
    assert isinstance(err, UserError)
    if len(outcomes) == 1:
        return err
    return UserError(f"none of {len(layouts)} layouts works; the last, {describe(layouts[-1])}: {err}")


def describe(layout: Layout) -> str:
    """'tp=8 ep=1 pp=1' or 'shards=8'."""
    if isinstance(layout, RankingLayout):
        return f"shards={layout.shards}"
    dp = f" dp={layout.dp}" if layout.dp > 1 else ""
    return f"tp={layout.tp} ep={layout.ep} pp={layout.pp}{dp}"


def _chunk(task: tuple[Sequence[Chip], Query, Layout, int | None]) -> list[Outcome]:
    chips, q, lay, total = task
    if isinstance(lay, RankingLayout):
        return evaluate_ranking(chips, q, lay, total)
    return evaluate_llm(chips, q, lay, total)


# -- layouts ---------------------------------------------------------------------------------------


def candidates(chip: Chip, q: Query, *, total_chips: int | None = None, layout: Layout | None = None,
               tp: int | None = None) -> list[Layout]:
    """Layouts to evaluate for `chip`, in search order. Raises UserError when a pinned layout is
    invalid or no layout can hold the model."""
    model = q.model
    if isinstance(model, Ranking):
        if layout is not None:
            assert isinstance(layout, RankingLayout)
            _check_divides(total_chips, layout.chips, "--shards")
            return [layout]
        return ranking_candidates(chip, model, q.precision, total_chips, q.placement)
    assert isinstance(model, LLM)
    if layout is not None:
        assert isinstance(layout, Parallel)
        layout.validate(model)
        _check_divides(total_chips, layout.chips, "tp x pp")
        return [layout]
    q.modes.validate(model)
    return llm_candidates(chip, model, q.precision, q.context, total_chips, tp, attention_dp=q.attention_dp)


def _check_divides(total: int | None, unit: int, what: str) -> None:
    if total is not None and total % unit:
        raise UserError(f"--chips {total} is not a multiple of {what} = {unit}")


def _pow2(limit: int) -> list[int]:
    return [1 << i for i in range(max(int(limit), 1).bit_length()) if 1 << i <= limit]


def _valid(par: Parallel, model: LLM) -> bool:
    try:
        par.validate(model)
    except UserError:
        return False
    return True


def llm_candidates(chip: Chip, model: LLM, prec: Precision, context: int, total_chips: int | None = None,
                   tp: int | None = None, *, attention_dp: bool = False) -> list[Layout]:
    """LLM layouts that fit (module doc); `tp` pins the tensor-parallel size and searches ep.
    attention_dp (MoE): after them, tp x dp groups with attention data parallel over dp = 2, 4, ...
    and the experts over all tp x dp chips of the scale-up domain (wide EP)."""
    divides = lambda n: total_chips is None or total_chips % n == 0
    if tp is not None:
        Parallel(tp=tp).validate(model)
        _check_divides(total_chips, tp, "--tp")
        tps = [tp]
    else:
        tps = [t for t in _pow2(min(chip.scale_up_domain_size, MAX_TP)) if divides(t) and _valid(Parallel(t), model)]
        tps = tps or [1]
    tried: list[Parallel] = []
    for t in tps:
        eps = [1] + ([e for e in _pow2(t)[1:] if model.moe.num_experts % e == 0] if model.moe else [])
        tried += [Parallel(tp=t, ep=e) for e in eps]
    if attention_dp and model.moe is not None:
        dom = min(chip.scale_up_domain_size, MAX_TP)
        tried += [Parallel(tp=t, ep=t * d, dp=d) for t in tps for d in _pow2(dom // t)[1:]
                  if divides(t * d) and model.moe.num_experts % (t * d) == 0]
    fits, err = _fitting(chip, model, prec, context, tried)
    if fits or tp is not None:  # a pinned tp is a replica of tp chips: no pipeline stages added
        if fits:
            return fits
        assert err is not None
        raise err
    pps = [Parallel(tp=tps[-1], pp=p) for p in _pow2(min(MAX_PP, model.num_layers))[1:] if divides(tps[-1] * p)]
    for par in pps:
        fits, err = _fitting(chip, model, prec, context, [par])
        if fits:
            return fits
    assert err is not None
    raise err


def _fitting(chip: Chip, model: LLM, prec: Precision, context: int,
             layouts: list[Parallel]) -> tuple[list[Layout], UserError | None]:
    fits: list[Layout] = []
    err = None
    for par in layouts:
        try:
            plan_llm(chip, model, par, prec, context)
            fits.append(par)
        except UserError as exc:
            err = exc
    return fits, err


def ranking_candidates(chip: Chip, model: Ranking, prec: Precision, total_chips: int | None = None,
                       placement: Placement | None = None) -> list[Layout]:
    """The capacity planner's rule (accelsim.ranking): replicas when the tables fit on one chip,
    else the smallest group (power of two dividing `total_chips`, or `total_chips`) whose shares
    fit. A pinned sharded `placement` shards over `total_chips` (or the smallest group that fits)."""
    sizes = [n for n in _pow2(MAX_SHARDS) if total_chips is None or total_chips % n == 0]
    if total_chips is not None and total_chips not in sizes:
        sizes.append(total_chips)
    if placement == Placement.REPLICATED:
        sizes = [1]
    elif placement is not None:
        sizes = [total_chips] if total_chips and total_chips > 1 else [n for n in sizes if n > 1]
    err = None
    for n in sizes:
        try:
            ranking_capacity_check(chip, model, n, prec, placement)
            return [RankingLayout(n, placement)]
        except UserError as exc:
            err = exc
    if err is None:
        raise UserError(f"--placement {placement} needs more than one chip (give --chips)")
    raise err


# -- one layout over many chips --------------------------------------------------------------------


def _at(c: Cost, shape: tuple[int, ...], idx: tuple[int, int]) -> Cost:
    """The cost of one (chip, batch) cell as 0-d arrays."""
    pick = lambda a: np.asarray(np.broadcast_to(a, shape)[idx])
    return Cost(*(pick(a) for a in c._arrays()), fidelity=c.fidelity)


def evaluate_llm(chips: Sequence[Chip], q: Query, par: Parallel, total_chips: int | None = None) -> list[Outcome]:
    """Best batch of one LLM layout on each chip (one NumPy evaluation over chips x batches)."""
    model, prec = q.model, q.precision
    assert isinstance(model, LLM)
    plans: list[MemoryPlan | UserError] = []
    own: list[np.ndarray] = []
    for chip in chips:
        try:
            mem = plan_llm(chip, model, par, prec, q.context, output_len=q.output_len,
                           extra_weight_bytes=draft_weight_bytes_per_chip(q.modes.spec, par, prec))
        except UserError as exc:
            plans.append(exc)
            own.append(np.zeros(0))
            continue
        if q.batch is not None and q.batch > mem.max_batch_paged:
            plans.append(UserError(f"--batch {q.batch} does not fit: {mem.max_batch_paged} sequences of "
                                   f"{q.input_len} + {q.output_len} tokens fit per replica (paged KV)"))
            own.append(np.zeros(0))
            continue
        plans.append(mem)
        limit = min(mem.max_batch, MAX_BATCH * par.dp)  # the engine limit holds per attention-DP group
        own.append(np.asarray([float(q.batch)]) if q.batch else batch_candidates(limit))
    cands = np.unique(np.concatenate([*own, [float(q.batch or 1)]]))
    mask = np.stack([np.isin(cands, o) for o in own])
    shape = (len(chips), cands.size)
    hw = HwVec.from_chips(list(chips), shape=(len(chips), 1))
    m = llm_metrics(hw, model, par, prec, q.input_len, q.output_len, cands[None, :], q.eff, q.modes)
    ttft, tpot = np.broadcast_to(m.ttft_s, shape), np.broadcast_to(m.tpot_s, shape)
    thr, power = np.broadcast_to(m.throughput_replica, shape), np.broadcast_to(m.power_w, shape)
    ok = mask.copy()
    if q.max_ttft is not None:
        ok &= ttft <= q.max_ttft
    if q.max_tpot is not None:
        ok &= tpot <= q.max_tpot
    best_i = np.argmax(np.where(ok, thr, -1.0), axis=1)
    out: list[Outcome] = []
    for k, (chip, mem) in enumerate(zip(chips, plans)):
        if isinstance(mem, UserError):
            out.append(mem)
            continue
        i = int(best_i[k])
        if not ok[k, i]:
            j = int(np.argmax(mask[k]))  # the chip's smallest batch
            out.append(UserError(f"no batch meets the SLO (--max-ttft {q.max_ttft}, --max-tpot {q.max_tpot}): at "
                                 f"batch {int(cands[j])} TTFT is {ttft[k, j]:.3g} s and TPOT {tpot[k, j]:.3g} s"))
            continue
        out.append(LLMPrediction(
            chip=chip, chips=total_chips or par.chips, precision=prec, batch=int(cands[i]),
            rate_per_chip=float(thr[k, i]) / par.chips, power_w=float(power[k, i]),
            fidelity=fidelity_on(q.eff, [chip]), model=model, layout=par,
            input_len=q.input_len, output_len=q.output_len, ttft_s=float(ttft[k, i]),
            tpot_s=float(tpot[k, i]), decode=_at(m.decode, shape, (k, i)), prefill=_at(m.prefill, shape, (k, i)),
            memory=mem, modes=q.modes))
    return out


def evaluate_ranking(chips: Sequence[Chip], q: Query, lay: RankingLayout,
                     total_chips: int | None = None) -> list[Outcome]:
    """Best batch of ranking with the tables sharded over `lay.shards` chips, on each chip."""
    model, prec = q.model, q.precision
    assert isinstance(model, Ranking)
    errors: list[UserError | None] = []
    for chip in chips:
        try:
            ranking_capacity_check(chip, model, lay.shards, prec, lay.placement)
            errors.append(None)
        except UserError as exc:
            errors.append(exc)
    slo = RANKING_DEFAULT_LATENCY_S if q.max_latency is None else q.max_latency
    cands = np.asarray([float(q.batch)]) if q.batch else batch_candidates(RANKING_MAX_BATCH)
    shape = (len(chips), cands.size)
    hw = HwVec.from_chips(list(chips), shape=(len(chips), 1))
    usable = np.asarray([c.mem_capacity_bytes * (1 - RESERVE_FRACTION) for c in chips]).reshape(len(chips), 1)
    m = ranking_metrics(hw, model, lay.shards, prec, cands[None, :], q.eff, lay.placement, usable)
    lat, rate = np.broadcast_to(m.latency_s, shape), np.broadcast_to(m.throughput_chip, shape)
    plan_i, limit = np.broadcast_to(m.plan_index, shape), np.broadcast_to(m.gather_limit, shape)
    g_share = np.broadcast_to(m.gather_share, shape)
    power = np.broadcast_to(m.power_w, shape)
    ok = lat <= slo if q.batch is None else np.ones(shape, dtype=bool)  # a pinned batch is reported as is
    best_i = np.argmax(np.where(ok, rate, -1.0), axis=1)
    out: list[Outcome] = []
    for k, chip in enumerate(chips):
        i = int(best_i[k])
        err = errors[k]
        if err is None and not ok[k, i]:
            err = UserError(f"no batch meets --max-latency {slo} s: batch 1 takes {lat[k, 0]:.3g} s")
        if err is not None:
            out.append(err)
            continue
        out.append(RankingPrediction(
            chip=chip, chips=total_chips or lay.chips, precision=prec, batch=int(cands[i]),
            rate_per_chip=float(rate[k, i]), power_w=float(power[k, i]),
            fidelity=fidelity_on(q.eff, [chip]), model=model, layout=lay,
            latency_s=float(lat[k, i]), latency_slo_s=slo, step=_at(m.step, shape, (k, i)),
            plan=m.plans[int(plan_i[k, i])], gather_limit=str(limit[k, i]), gather_share=float(g_share[k, i])))
    return out
