"""Plotly figures of the what-if dashboard, as pure functions of `Controls` (no Dash, no browser).

- `roofline_figure`: the what-if chip's roofs (and the catalog chip's, dashed, when scaled) with
  the operators of the chosen model's decode and prefill steps, and measured kernels if any.
- `generations_figure`: per-chip throughput and units per joule of every catalog chip, ordered by
  availability year, with the what-if chip as a separate red bar.
- `site_figure`: the planner's answer for the site power and PUE (`accelsim.plan.plan`).
Each raises `UserError` for values the model rejects; `accelsim.dashboard.page.render` turns
that into the message the page shows.
"""

from __future__ import annotations

import contextlib
import logging
import re
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from accelsim.dashboard.controls import (
    Controls,
    catalog_chip,
    catalog_model,
    efficiency,
    per_chip,
    per_joule,
    predict_for,
    unit,
    what_if_chip,
)
from accelsim.dashboard.points import measured_points, op_points
from accelsim.errors import UserError
from accelsim.predict import Prediction
from accelsim.search import describe
from accelsim.spec import Chip, list_chips

FAMILY_COLORS = {"mtia": "#2b6cb0", "gpu": "#2f855a", "tpu": "#c05621"}
WHAT_IF_COLOR = "#d62839"
PHASE_COLORS = {"decode": "#6b46c1", "prefill": "#dd6b20", "ranking": "#6b46c1"}
WHAT_IF_TRACE = "selected chip (what-if)"
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=70, b=50), font=dict(size=12),
               title_subtitle_font=dict(size=11),
               legend=dict(orientation="h", yanchor="top", y=-0.18, x=0))


def fidelity_label(c: Controls) -> str:
    eff = efficiency(c.fidelity)
    if c.fidelity == "roofline":
        return "fidelity: roofline (datasheet peaks, no efficiency losses)"
    if c.fidelity == "calibrated":  # the chip's own: calibrated on a measured chip, projected elsewhere
        from accelsim.perf import fidelity_on

        return f"fidelity: {fidelity_on(eff, [what_if_chip(c)])} (shipped kernel profiles)"
    return f"fidelity: {eff.fidelity} (software stack {getattr(eff, 'name', '?')})"


def chip_label(chip: Chip) -> str:
    """'MTIA 450' or 'MTIA 450 ×2 HBM BW' for a what-if variant."""
    words = {"mem_bw": "HBM BW", "flops": "FLOPS", "capacity": "capacity", "tdp": "TDP"}
    parts = [f"×{f:.3g} {words[k]}" for k, f in sorted(chip.what_if.items())]
    return " ".join([chip.display_name, *parts])


def empty_figure(message: str, title: str = "") -> go.Figure:
    """A blank panel that shows `message` where the plot would be."""
    fig = go.Figure()
    fig.add_annotation(text="<br>".join(textwrap.wrap(message, 70)), showarrow=False, x=0.5, y=0.5,
                       xref="paper", yref="paper", font=dict(size=13, color="#9b2c2c"), align="left")
    fig.update_layout(**_LAYOUT, title=title)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


# ---- roofline ---------------------------------------------------------------------------------

def roofline_figure(c: Controls, *, measured_dir: str | Path | None = None) -> go.Figure:
    """Roofline of the what-if chip with the model's operator points (and measured kernels).

    Each point's x is FLOPs / bytes of one operator call and y is FLOPs / its predicted time;
    marker area follows its share of the step time. Hover names the operator and its bound.
    """
    chip, base, model, eff = what_if_chip(c), catalog_chip(c.chip), catalog_model(c.model), efficiency(c.fidelity)
    r = predict_for(c)
    points, skipped = op_points(chip, model, r, eff)
    measured, notes = measured_points(base, measured_dir)
    for note in notes:
        logging.getLogger("accelsim.dashboard").warning("%s", note)
    xs = [p.intensity for p in points] + [m.intensity for m in measured]
    ridge = chip.flops(c.dtype) / chip.mem_bw_bytes_per_s
    lo = max(min([*xs, ridge]) / 4, 1e-2)
    hi = max([*xs, ridge]) * 4
    grid = np.geomspace(lo, hi, 200)

    fig = go.Figure()
    dtypes = sorted({chip.compute_dtype(c.dtype)} | {p.dtype for p in points}, key=lambda d: -chip.flops(d))
    for i, d in enumerate(dtypes):
        dash = ("solid", "dot", "dashdot")[min(i, 2)]
        fig.add_scatter(x=grid, y=np.minimum(chip.flops(d), chip.mem_bw_bytes_per_s * grid), mode="lines",
                        name=f"{d} roof: {chip_label(chip)}", line=dict(color="#1a202c", width=2, dash=dash),
                        hovertemplate=f"{d} roof<br>%{{x:.3g}} FLOP/B → %{{y:.3s}}FLOP/s<extra></extra>")
    if chip.what_if:
        d = chip.compute_dtype(c.dtype)
        fig.add_scatter(x=grid, y=np.minimum(base.flops(d), base.mem_bw_bytes_per_s * grid), mode="lines",
                        name=f"{d} roof: catalog {base.display_name}",
                        line=dict(color="#a0aec0", width=2, dash="dash"), hoverinfo="skip")
    for phase in ("decode", "prefill", "ranking"):
        ps = [p for p in points if p.phase == phase]
        if not ps:
            continue
        fig.add_scatter(
            x=[p.intensity for p in ps], y=[p.achieved_flops_per_s for p in ps], mode="markers",
            name=f"{phase} operators ({unit(model) if phase == 'ranking' else 'batch'} {r.batch})",
            marker=dict(size=[8 + 30 * np.sqrt(p.share) for p in ps], color=PHASE_COLORS[phase], opacity=0.75,
                        symbol=["diamond" if p.collective else "circle" for p in ps],
                        line=dict(color="white", width=1)),
            customdata=[[p.name, p.dtype, p.bound, 100 * p.share, p.time_s * 1e6] for p in ps],
            hovertemplate=("%{customdata[0]} (" + phase + ", %{customdata[1]})<br>%{x:.3g} FLOP/B, "
                           "%{y:.3s}FLOP/s<br>%{customdata[2]}-bound, %{customdata[4]:.3g} µs per call, "
                           "%{customdata[3]:.1f}% of step<extra></extra>"))
    if measured:
        fig.add_scatter(
            x=[m.intensity for m in measured], y=[m.achieved_flops_per_s for m in measured], mode="markers",
            name=f"measured on {base.display_name} (fidelity: measured)",
            marker=dict(symbol="x", size=9, color="#2d3748"),
            customdata=[[m.name, m.dtype, m.device, m.file] for m in measured],
            hovertemplate="%{customdata[0]} (%{customdata[1]}) on %{customdata[2]}<br>%{x:.3g} FLOP/B, "
                          "%{y:.3s}FLOP/s<br>%{customdata[3]}<extra></extra>")
    sub = ["area ∝ share of step time", "◆ collective"]
    if skipped:
        sub.append(f"{skipped} no-FLOP ops hidden")
    sub.append(f"{len(measured)} measured kernels" if measured else "no measured kernels")
    if notes:
        sub.append(f"{len(notes)} unreadable measurement files skipped")
    fig.update_layout(**{**_LAYOUT, "margin": dict(l=60, r=20, t=90, b=50)},
                      title=dict(text=f"Roofline: {chip_label(chip)}",
                                 subtitle=dict(text=f"{model.display_name} · {fidelity_label(c)} · "
                                                    f"{describe(r.layout)}<br>" + " · ".join(sub))))
    fig.update_xaxes(type="log", dtick=1, title="arithmetic intensity (FLOP per byte of memory traffic)")
    fig.update_yaxes(type="log", dtick=1, title="FLOP/s (achieved; roof = peak)", exponentformat="SI")
    return fig


# ---- generations ------------------------------------------------------------------------------

def _y(chip: Chip) -> str:
    """'NVIDIA GB200 (per GPU, NVL72, 1200 W)' → 'NVIDIA GB200 · 2025': short enough for a bar label."""
    short = re.sub(r" \(.*\)", "", chip.display_name)
    return f"{short} · {chip.availability_year}"


WHAT_IF_ROW = "▸ what-if"


def generations_figure(c: Controls) -> go.Figure:
    """Per-chip throughput and units per joule for the chosen model on every catalog chip.

    Every bar is `predict_for(c, name)` (the catalog chip at its best TP, or the controls' TP),
    the red bar (trace `WHAT_IF_TRACE`) `predict_for(c)`, the what-if chip. Rows run from the
    oldest chip to the newest; chips the model does not fit on keep their row, marked.
    """
    model = catalog_model(c.model)
    chips = sorted((catalog_chip(n) for n in list_chips()), key=lambda ch: (ch.availability_year, ch.name))
    results: dict[str, Prediction] = {}
    for ch in chips:
        with contextlib.suppress(UserError):  # no bar; the row says "does not fit"
            results[ch.name] = predict_for(c, ch.name)
    try:
        selected: Prediction | None = predict_for(c)
    except UserError:
        selected = None
    u = unit(model)
    order: list[str] = []
    for ch in chips:
        order.append(_y(ch))
        if ch.name == c.chip:
            order.append(WHAT_IF_ROW)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04)
    hover = ("%{y}<br>%{x:.4s}<br>%{customdata[0]}, batch %{customdata[1]}, %{customdata[2]}-bound"
             "<br>%{customdata[3]:.0f} W per chip<br>assumed: %{customdata[4]}<extra></extra>")

    def custom(ch: Chip, r: Prediction) -> list[Any]:
        return [describe(r.layout), r.batch, r.bound, r.power_w, ", ".join(ch.assumed_keys) or "none"]

    def bars(rows: list[tuple[str, Chip, Prediction]], name: str, color: str, group: str) -> None:
        for col, metric in ((1, per_chip), (2, per_joule)):
            fig.add_bar(y=[y for y, _, _ in rows], x=[metric(r) for _, _, r in rows], orientation="h", name=name,
                        marker_color=color, legendgroup=group, showlegend=col == 1, texttemplate="%{x:.3s}",
                        textposition="outside", cliponaxis=False, textfont=dict(size=10),
                        customdata=[custom(ch, r) for _, ch, r in rows], hovertemplate=hover, row=1, col=col)

    for family, color in FAMILY_COLORS.items():
        bars([(_y(ch), ch, results[ch.name]) for ch in chips if ch.family == family and ch.name in results],
             family.upper(), color, family)
    if selected is not None:
        bars([(WHAT_IF_ROW, what_if_chip(c), selected)], WHAT_IF_TRACE, WHAT_IF_COLOR, "what-if")
    misfit = [_y(ch) for ch in chips if ch.name not in results] + ([WHAT_IF_ROW] if selected is None else [])
    if misfit:
        fig.add_scatter(y=misfit, x=[0] * len(misfit), mode="text", text=["does not fit"] * len(misfit),
                        textposition="middle right", textfont=dict(color="#9b2c2c", size=10), showlegend=False,
                        hoverinfo="skip", row=1, col=1)
    sub = ["best TP per chip" if c.tp is None else f"TP {c.tp}",
           "best batch" if c.batch is None else f"batch {c.batch}",
           f"{c.dtype}, {c.input_len:,} in / {c.output_len:,} out" if u == "tokens" else c.dtype]
    fig.update_layout(**{**_LAYOUT, "margin": dict(l=150, r=40, t=90, b=90)}, barmode="group", bargap=0.3,
                      title=dict(text=f"{model.display_name} across chip generations",
                                 subtitle=dict(text=fidelity_label(c) + "<br>" + " · ".join(sub))))
    fig.update_yaxes(categoryorder="array", categoryarray=order, autorange="reversed", tickfont=dict(size=11))
    fig.update_xaxes(exponentformat="SI")
    for col, metric, title in ((1, per_chip, f"{u}/s per chip"), (2, per_joule, f"{u} per joule (chip)")):
        top = max([metric(r) for r in [*results.values(), *([selected] if selected else [])]], default=1.0)
        fig.update_xaxes(title=title, range=[0, 1.22 * top], row=1, col=col)  # room for the value labels
    return fig


# ---- site plan --------------------------------------------------------------------------------

def site_plan(c: Controls) -> dict[str, Any]:
    """`accelsim.plan` for the what-if chip at the controls' site power and PUE, at the operating
    point the other panels show (the same `Prediction`), so all panels agree."""
    from accelsim.plan.planner import plan

    model, chip, r = catalog_model(c.model), what_if_chip(c), predict_for(c)
    return plan(chip, model, site_power_w=c.site_power_w, pue=c.pue, input_len=c.input_len, output_len=c.output_len,
                dtype=c.dtype, eff=efficiency(c.fidelity), point=r)  # type: ignore[arg-type]


def site_figure(c: Controls, plan: Mapping[str, Any] | None = None) -> go.Figure:
    """Racks, chips, facility power, throughput and energy of the site, and where its power goes.
    `plan` is `site_plan(c)`'s result (computed here when not given)."""
    p = site_plan(c) if plan is None else plan
    u = unit(catalog_model(c.model))
    cards = [("racks", p["racks"], ",.0f"), ("chips", p["chips"], ",.0f"),
             ("facility MW", p["facility_power_w"] / 1e6, ",.1f"), (f"{u}/s", p[f"throughput_{u}_per_s"], ".3s"),
             (f"{u} per joule", p[f"{u}_per_joule"], ".3g")]
    fig = make_subplots(rows=2, cols=len(cards), row_heights=[0.45, 0.55], vertical_spacing=0.2,
                        specs=[[{"type": "indicator"}] * len(cards),
                               [{"type": "xy", "colspan": len(cards)}] + [None] * (len(cards) - 1)])
    for i, (title, value, fmt) in enumerate(cards, start=1):
        fig.add_trace(go.Indicator(mode="number", value=value, title=dict(text=title, font=dict(size=12)),
                                   number=dict(valueformat=fmt, font=dict(size=24))), row=1, col=i)
    it, fac, site = p["it_power_w"] / 1e6, p["facility_power_w"] / 1e6, c.site_power_w / 1e6
    for name, value, color in (("IT load (chips at TDP + hosts)", it, "#2b6cb0"),
                               (f"cooling & losses (PUE {p.get('pue', c.pue):.2f})", fac - it, "#90cdf4"),
                               ("unused budget", max(site - fac, 0.0), "#cbd5e0")):
        fig.add_bar(y=["MW"], x=[value], orientation="h", name=name, marker_color=color,
                    hovertemplate=f"{name}: %{{x:,.2f}} MW<extra></extra>", row=2, col=1)
    assumed = [k for k in p.get("assumptions", {}) if k != "provisioning"]
    sub = [f"fidelity: {p.get('fidelity', c.fidelity)}", f"{p.get('chips_per_rack', '?')} chips per rack",
           f"{p['replica']['chips']}-chip replicas" if "replica" in p else "", f"binding: {p.get('binding', '?')}"]
    fig.update_layout(**{**_LAYOUT, "margin": dict(l=50, r=20, t=90, b=40),
                         "legend": dict(orientation="h", yanchor="top", y=-0.12, x=0)}, barmode="stack",
                      title=dict(text=f"Site plan: {site:,.0f} MW on {chip_label(what_if_chip(c))}",
                                 subtitle=dict(text=" · ".join(filter(None, sub)) + "<br>provisioned at TDP + host "
                                               f"share and peak PUE · {len(assumed)} planning values assumed")))
    fig.update_xaxes(range=[0, max(site, fac) * 1.02], ticksuffix=" MW", row=2, col=1)
    return fig
