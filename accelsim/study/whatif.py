"""Study `hbm_vs_flops`: scale one chip's HBM bandwidth, FLOP/s or HBM capacity (0.5x-4x, one at a time
and bandwidth x FLOP/s together) and see which pays for decode, long-context decode, prefill and ranking.

Every variant is `Chip.scaled(...)` of the base chip (TDP unchanged), evaluated at its own best
layout and batch under the SLOs; all variants of a workload are one vectorised sweep.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from accelsim.errors import UserError
from accelsim.predict import Prediction
from accelsim.report import Report
from accelsim.search import query, search
from accelsim.spec import load_chip, load_model
from accelsim.study.common import Params, style
from accelsim.study.sweep import Executor

AXES = {"mem_bw": "HBM bandwidth", "flops": "FLOP/s", "capacity": "HBM capacity"}
_AXIS_COLOURS = {"mem_bw": "#1f77b4", "flops": "#d62728", "capacity": "#2ca02c"}


def _workloads(p: Params) -> list[dict[str, Any]]:
    """(name, model, shape, SLOs, how the metric is read) of each workload."""
    llm, ranking = load_model(p.str("llm")), load_model(p.str("ranking"))
    ttft, tpot = p.opt_num("max_ttft"), p.opt_num("max_tpot")
    long_in = p.int("long_input_len")
    return [
        {"name": "decode", "model": llm, "kw": {"input_len": 1000, "output_len": 1000, "max_ttft": ttft,
                                                "max_tpot": tpot}, "metric": "output tokens/s per chip"},
        {"name": "long-context decode", "model": llm, "kw": {"input_len": long_in, "output_len": 1000,
                                                            "max_tpot": tpot},
         "metric": "output tokens/s per chip"},
        {"name": "prefill", "model": llm, "kw": {"input_len": p.int("prefill_len"), "output_len": 1,
                                                 "max_ttft": ttft}, "metric": "prompt tokens/s per chip"},
        {"name": "ranking", "model": ranking, "kw": {"max_latency": p.opt_num("max_latency")},
         "metric": "user-item pairs/s per chip"},
    ]


def _rate(w: dict[str, Any], r: Prediction | None) -> float:
    if r is None:
        return float("nan")
    # prefill-heavy requests: every request is input_len prompt tokens per output token
    scale = w["kw"]["input_len"] / w["kw"]["output_len"] if w["name"] == "prefill" else 1.0
    return r.rate_per_chip * scale


def run(params: dict[str, Any], *, reduced: bool, executor: Executor | None = None) -> Report:
    p = Params(params, "hbm_vs_flops")
    base = load_chip(p.str("base"))
    factors = sorted(set(p.list("factors", kind=float)) | {1.0})
    grid = sorted(set(p.list("grid_factors", kind=float)) | {1.0})
    eff = p.efficiency()
    one_axis = [(axis, f, base.scaled(**{axis: f})) for axis in AXES for f in factors]
    two_axis = [(fb, ff, base.scaled(mem_bw=fb, flops=ff)) for fb in grid for ff in grid]
    chips = [c for *_, c in one_axis] + [c for *_, c in two_axis]
    rows: list[dict[str, Any]] = []
    grid_rows: list[dict[str, Any]] = []
    for w in _workloads(p):
        q = query(w["model"], eff, p.opt_str("dtype_ranking" if w["name"] == "ranking" else "dtype_llm"), **w["kw"])
        res = [None if isinstance(r, UserError) else r for r in search(chips, q, executor=executor, label=w["name"])]
        ref = _rate(w, res[next(k for k, (_a, f, _c) in enumerate(one_axis) if f == 1.0)])
        for (axis, f, _), r in zip(one_axis, res[:len(one_axis)]):
            rate = _rate(w, r)
            rows.append({"workload": w["name"], "model": w["model"].name, "axis": axis, "factor": f,
                         "metric": w["metric"], "rate_per_chip": rate, "speedup": rate / ref,
                         "bound": r.bound if r else "n/a", "batch": r.batch if r else None,
                         "replica_chips": r.replica_chips if r else None, "fidelity": str(eff.fidelity)})
        for (fb, ff, _), r in zip(two_axis, res[len(one_axis):]):
            rate = _rate(w, r)
            grid_rows.append({"workload": w["name"], "mem_bw_factor": fb, "flops_factor": ff,
                              "rate_per_chip": rate, "speedup": rate / ref, "bound": r.bound if r else "n/a"})

    names = [w["name"] for w in _workloads(p)]
    rep = Report(f"HBM bandwidth vs FLOP/s vs capacity on {base.display_name}" + (" (reduced)" if reduced else ""))
    rep.add_text(f"Base chip **{base.display_name}**; each variant multiplies one catalog value (TDP unchanged). "
                 f"Workloads: decode (1,000 in / 1,000 out), long-context decode ({p.int('long_input_len'):,} in), "
                 f"prefill ({p.int('prefill_len'):,}-token prompts, one output token) on {p.str('llm')}, and "
                 f"ranking on {p.str('ranking')}. Speed-up is throughput per chip relative to the base chip.")
    rep.add_text(_findings(rows, names))
    fid = str(eff.fidelity)
    rep.add_figure(_lines(rows, names), "one knob at a time; flat lines mean the knob does not pay. Capacity pays "
                   "through smaller replicas (less tensor-parallel traffic) and larger batches; steps come from "
                   "layout changes and from predict's batch grid (powers of two and the memory limit)", fidelity=fid)
    rep.add_figure(_heatmaps(grid_rows, names, grid), "bandwidth and FLOP/s scaled together", fidelity=fid)
    rep.add_table("sensitivity", rows, "one row per workload x knob x factor", fidelity=fid)
    rep.add_table("bandwidth_x_flops", grid_rows, "two-knob grid", fidelity=fid)
    rep.add_assumptions([base], extra={"what-if": "scaling one value leaves every other value (TDP included) "
                                                  "as in the catalog; a real part trades them against each other"})
    return rep


def _findings(rows: list[dict[str, Any]], names: list[str]) -> str:
    lines = ["## Which knob pays", ""]
    for name in names:
        at2 = {r["axis"]: r["speedup"] for r in rows if r["workload"] == name and r["factor"] == 2.0}
        if not at2:
            continue
        best = max(at2, key=lambda a: np.nan_to_num(at2[a], nan=-1))
        parts = ", ".join(f"{AXES[a]} {v:.2f}x" for a, v in at2.items())
        lines.append(f"- **{name}**: doubling gives {parts}; {AXES[best]} pays most.")
    return "\n".join(lines)


def _lines(rows: list[dict[str, Any]], names: list[str]) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True, horizontal_spacing=0.04)
    for j, name in enumerate(names, start=1):
        for axis, title in AXES.items():
            sel = sorted((r for r in rows if r["workload"] == name and r["axis"] == axis), key=lambda r: r["factor"])
            fig.add_trace(go.Scatter(x=[r["factor"] for r in sel], y=[r["speedup"] for r in sel],
                                     mode="lines+markers", name=title, legendgroup=axis, showlegend=j == 1,
                                     line={"color": _AXIS_COLOURS[axis]},
                                     text=[r["bound"] for r in sel],
                                     hovertemplate="x%{x}: %{y:.2f}x (%{text})<extra>" + title + "</extra>"),
                          row=1, col=j)
        fig.update_xaxes(type="log", tickvals=[0.5, 1, 2, 4], title_text="scale factor", row=1, col=j)
    fig.update_yaxes(type="log", title_text="speed-up vs base", row=1, col=1)
    return style(fig, "Which knob pays: speed-up vs scale factor per workload", 460)


def _heatmaps(grid_rows: list[dict[str, Any]], names: list[str], grid: list[float]) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.05)
    labels = [f"{g:g}x" for g in grid]
    for j, name in enumerate(names, start=1):
        z = [[next(r["speedup"] for r in grid_rows if r["workload"] == name and r["mem_bw_factor"] == fb
                   and r["flops_factor"] == ff) for ff in grid] for fb in grid]
        fig.add_trace(go.Heatmap(z=z, x=labels, y=labels, coloraxis="coloraxis", name=name,
                                 text=[[f"{v:.2f}" for v in row] for row in z], texttemplate="%{text}",
                                 hovertemplate="FLOP/s %{x}, HBM BW %{y}: %{z:.2f}x<extra>" + name + "</extra>"),
                      row=1, col=j)
        fig.update_xaxes(title_text="FLOP/s", row=1, col=j)
    fig.update_yaxes(title_text="HBM bandwidth", row=1, col=1)
    fig.update_layout(coloraxis={"colorscale": "Viridis", "colorbar": {"title": "speed-up"}})
    return style(fig, "HBM bandwidth x FLOP/s: speed-up over the base chip", 420)
