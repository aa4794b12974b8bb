"""Vectorised sweeps: the best operating point of many chips at once (one NumPy evaluation per
replica layout over chips x batches), for studies that sweep dozens of design points.

The selection mirrors `accelsim.predict.predict` exactly (its batch candidates per chip, its SLO
masks, its argmax) and the layout search mirrors `accelsim.plan.serving.best_point`; a test holds
the three to the same answers. Chunks (one layout over its chips) go through an `Executor`, so
`accelsim study --ray` spreads them over a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision, ranking_ops
from accelsim.memory import plan_llm, ranking_capacity_check
from accelsim.perf import Cost, Efficiency, HwVec, cost
from accelsim.plan.serving import default_dtype, llm_layouts, ranking_groups
from accelsim.power import chip_power_w
from accelsim.predict import MAX_BATCH, RANKING_DEFAULT_LATENCY_S, RANKING_MAX_BATCH, batch_candidates, llm_metrics
from accelsim.spec.chip import Chip
from accelsim.spec.model import LLM, Model, Ranking
from accelsim.study.sweep import Executor, LocalExecutor


@dataclass(frozen=True)
class Query:
    """What to evaluate: a model's serving shape and SLOs (the same for every chip of a sweep)."""

    model: Model
    eff: Efficiency
    dtype: str
    input_len: int = 1000
    output_len: int = 1000
    max_ttft: float | None = None
    max_tpot: float | None = None
    max_latency: float | None = None


def _shares(c: Cost, shape: tuple[int, ...], idx: tuple[np.ndarray, np.ndarray]) -> dict[str, np.ndarray]:
    total = np.maximum(np.broadcast_to(c.total_s, shape)[idx], 1e-30)
    return {f"{k}_share": np.broadcast_to(getattr(c, f"{k}_s"), shape)[idx] / total
            for k in ("compute", "memory", "comm", "overhead")}


def eval_llm(chips: Sequence[Chip], q: Query, par: Parallel) -> list[dict[str, Any] | None]:
    """Best batch of one replica layout on each chip: predict's numbers, per chip, or None."""
    model = q.model
    assert isinstance(model, LLM)
    prec = Precision.for_serving(q.dtype)
    limits = []
    for chip in chips:
        try:
            limits.append(min(plan_llm(chip, model, par, prec, q.input_len + q.output_len).max_batch, MAX_BATCH))
        except UserError:
            limits.append(0)
    own = [batch_candidates(lim) if lim else np.zeros(0) for lim in limits]
    cands = np.unique(np.concatenate([*own, [1.0]]))
    mask = np.stack([np.isin(cands, o) for o in own])
    hw = HwVec.from_chips(list(chips), shape=(len(chips), 1))
    m = llm_metrics(hw, model, par, prec, q.input_len, q.output_len, cands[None, :], q.eff)
    shape = (len(chips), cands.size)
    ttft, tpot = np.broadcast_to(m.ttft_s, shape), np.broadcast_to(m.tpot_s, shape)
    thr, power = np.broadcast_to(m.throughput_replica, shape), np.broadcast_to(m.power_w, shape)
    ok = mask.copy()
    if q.max_ttft is not None:
        ok &= ttft <= q.max_ttft
    if q.max_tpot is not None:
        ok &= tpot <= q.max_tpot
    i = np.argmax(np.where(ok, thr, -1.0), axis=1)
    rows = np.arange(len(chips))
    idx = (rows, i)
    dec = _shares(m.decode, shape, idx)
    d_bound, p_bound = np.broadcast_to(m.decode.bound, shape)[idx], np.broadcast_to(m.prefill.bound, shape)[idx]
    out: list[dict[str, Any] | None] = []
    for c in range(len(chips)):
        if not ok[c, i[c]]:
            out.append(None)
            continue
        t = float(thr[c, i[c]])
        out.append({"tp": par.tp, "ep": par.ep, "pp": par.pp, "replica_chips": par.chips, "batch": int(cands[i[c]]),
                    "rate_per_chip": t / par.chips, "ttft_s": float(ttft[c, i[c]]), "tpot_s": float(tpot[c, i[c]]),
                    "power_w": float(power[c, i[c]]), "bound": str(d_bound[c]), "prefill_bound": str(p_bound[c]),
                    **{k: float(v[c]) for k, v in dec.items()}})
    return out


def eval_ranking(chips: Sequence[Chip], q: Query, group: int) -> list[dict[str, Any] | None]:
    """Best batch of ranking on `group` chips sharing the tables, on each chip: predict's numbers."""
    model = q.model
    assert isinstance(model, Ranking)
    prec = Precision.for_serving(q.dtype)
    fits = []
    for chip in chips:
        try:
            ranking_capacity_check(chip, model, group, prec)
            fits.append(True)
        except UserError:
            fits.append(False)
    slo = RANKING_DEFAULT_LATENCY_S if q.max_latency is None else q.max_latency
    cands = batch_candidates(RANKING_MAX_BATCH)
    hw = HwVec.from_chips(list(chips), shape=(len(chips), 1))
    c = cost(ranking_ops(model, group, prec, cands[None, :]), hw, q.eff)
    shape = (len(chips), cands.size)
    lat = np.broadcast_to(c.total_s, shape)
    ok = (lat <= slo) & np.asarray(fits)[:, None]
    thr = group * cands[None, :] / lat
    i = np.argmax(np.where(ok, thr, -1.0), axis=1)
    idx = (np.arange(len(chips)), i)
    u_c, u_m = c.utilisation(hw, prec.weights)
    power = np.broadcast_to(chip_power_w(hw.idle_w, hw.tdp_w, u_c, u_m), shape)
    bound = np.broadcast_to(c.bound, shape)[idx]
    shares = _shares(c, shape, idx)
    out: list[dict[str, Any] | None] = []
    for k in range(len(chips)):
        if not ok[k, i[k]]:
            out.append(None)
            continue
        out.append({"tp": 1, "ep": 1, "pp": 1, "replica_chips": group, "batch": int(cands[i[k]]),
                    "rate_per_chip": float(thr[k, i[k]]) / group, "latency_s": float(lat[k, i[k]]),
                    "power_w": float(power[k, i[k]]), "bound": str(bound[k]),
                    **{n: float(v[k]) for n, v in shares.items()}})
    return out


def _chunk(task: tuple[Sequence[Chip], Query, Any]) -> list[dict[str, Any] | None]:
    chips, q, layout = task
    return eval_ranking(chips, q, layout) if isinstance(q.model, Ranking) else eval_llm(chips, q, layout)


def best_by_chip(chips: Sequence[Chip], q: Query, executor: Executor | None = None,
                 label: str = "sweep") -> list[dict[str, Any] | None]:
    """Each chip's highest-throughput-per-chip point over its layouts (`plan.serving` order), or None
    when nothing fits or meets the SLOs. One executor chunk per distinct layout."""
    executor = executor or LocalExecutor()
    if isinstance(q.model, Ranking):
        per_chip: list[list[Any]] = [ranking_groups(c, q.model, q.dtype) for c in chips]
    else:
        assert isinstance(q.model, LLM)
        per_chip = [llm_layouts(c, q.model, q.dtype, q.input_len + q.output_len) for c in chips]
    distinct = list(dict.fromkeys(lay for lays in per_chip for lay in lays))
    members = [[k for k, lays in enumerate(per_chip) if lay in lays] for lay in distinct]
    results = executor.map(_chunk, [([chips[k] for k in ks], q, lay) for lay, ks in zip(distinct, members)],
                           label=label)
    by = {(lay, k): r for lay, ks, rs in zip(distinct, members, results) for k, r in zip(ks, rs)}
    out: list[dict[str, Any] | None] = []
    for k, lays in enumerate(per_chip):
        best = None
        for lay in lays:
            r = by[(lay, k)]
            if r is not None and (best is None or r["rate_per_chip"] > best["rate_per_chip"]):
                best = r
        out.append(best)
    return out


def query(model: Model, eff: Efficiency, dtype: str | None = None, **kw: Any) -> Query:
    return Query(model, eff, dtype or default_dtype(model), **kw)
