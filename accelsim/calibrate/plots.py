"""Plotly figures of a calibration: predicted vs measured per operator class, and the chip's
roofline with the measured points. Functions return figures; `write_plots` saves self-contained
HTML (plotly.js inlined, opens offline). plotly is imported here only, never by the CLI module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from accelsim.io import write_text
from accelsim.spec.chip import Chip

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def predicted_vs_measured(points: Sequence[Mapping[str, Any]], title: str = "") -> go.Figure:
    """Log-log predicted vs measured seconds, one panel per operator class, with y = x.

    points: `Calibration.points` (keys op, split, measured_s, calibrated_s, roofline_s). Held-out
    rows are solid, training rows faint; the roofline's prediction of the held-out rows is shown too.
    """
    classes = sorted({p["op"] for p in points})
    cols = min(3, max(1, len(classes)))
    nrows = math.ceil(len(classes) / cols) or 1
    fig = make_subplots(rows=nrows, cols=cols, subplot_titles=classes or ["(no points)"],
                        horizontal_spacing=0.08, vertical_spacing=0.14)
    series = (("calibrated", "test", "calibrated_s", "circle", 1.0), ("calibrated", "train", "calibrated_s",
              "circle-open", 0.35), ("roofline", "test", "roofline_s", "x", 0.8))
    for k, cls in enumerate(classes):
        row, col = k // cols + 1, k % cols + 1
        sel = [p for p in points if p["op"] == cls]
        allv = [p[key] for p in sel for key in ("measured_s", "calibrated_s", "roofline_s") if p[key] > 0]
        lo, hi = min(allv) / 1.5, max(allv) * 1.5
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line={"color": "gray", "dash": "dash"},
                                 name="y = x", legendgroup="yx", showlegend=k == 0), row=row, col=col)
        for j, (model, split, key, symbol, alpha) in enumerate(series):
            pts = [p for p in sel if p["split"] == split]
            if not pts:
                continue
            fig.add_trace(go.Scatter(
                x=[p["measured_s"] for p in pts], y=[p[key] for p in pts], mode="markers",
                marker={"symbol": symbol, "color": _COLORS[j], "opacity": alpha, "size": 7},
                name=f"{model} ({'held-out' if split == 'test' else 'training'})", legendgroup=f"{model}{split}",
                showlegend=k == 0,
                text=[f"{p['name']} {p['dtype']} {p['shape']}" for p in pts],
                hovertemplate="%{text}<br>measured %{x:.3g} s<br>predicted %{y:.3g} s<extra></extra>"),
                row=row, col=col)
        fig.update_xaxes(type="log", title_text="measured s", row=row, col=col)
        fig.update_yaxes(type="log", title_text="predicted s", row=row, col=col)
    fig.update_layout(title=title or "Predicted vs measured time per operator class", height=380 * nrows,
                      template="plotly_white")
    return fig


def roofline(chip: Chip, points: Sequence[Mapping[str, Any]], title: str = "") -> go.Figure:
    """Achieved FLOP/s vs arithmetic intensity of the measured points, under the chip's roofline
    min(peak[dtype], bw x intensity) for each dtype measured. Operators without FLOPs (copies) have
    no place on this plot and are left out (the title says how many)."""
    pts = [p for p in points if p["flops"] > 0 and p["bytes"] > 0]
    skipped = len(points) - len(pts)
    fig = go.Figure()
    if pts:
        ai = np.asarray([p["flops"] / p["bytes"] for p in pts])
        x = np.logspace(math.log10(ai.min() / 3), math.log10(ai.max() * 3), 200)
    else:
        x = np.logspace(-2, 3, 200)
    bw = chip.mem_bw_bytes_per_s
    dtypes = sorted({p["dtype"] for p in pts}) or ["bf16"]
    for j, dt in enumerate(dtypes):
        peak = chip.flops(dt)
        fig.add_trace(go.Scatter(x=x, y=np.minimum(peak, bw * x), mode="lines", name=f"roofline {dt} "
                                 f"({peak / 1e12:.3g} TFLOP/s, {bw / 1e9:.3g} GB/s)",
                                 line={"color": _COLORS[j % len(_COLORS)], "dash": "dot"}))
    for k, cls in enumerate(sorted({p["op"] for p in pts})):
        sel = [p for p in pts if p["op"] == cls]
        fig.add_trace(go.Scatter(
            x=[p["flops"] / p["bytes"] for p in sel], y=[p["flops"] / p["measured_s"] for p in sel],
            mode="markers", name=cls,
            marker={"color": _COLORS[(k + 3) % len(_COLORS)], "size": 7,
                    "symbol": ["circle" if p["dtype"] == dtypes[0] else "diamond" for p in sel]},
            text=[f"{p['name']} {p['dtype']} {p['shape']}" for p in sel],
            hovertemplate="%{text}<br>%{x:.3g} FLOP/B<br>%{y:.3g} FLOP/s<extra></extra>"))
    note = f" ({skipped} rows without FLOPs not shown)" if skipped else ""
    fig.update_layout(title=(title or f"Roofline of {chip.display_name} with measured points") + note,
                      xaxis={"type": "log", "title": "arithmetic intensity, FLOP/byte"},
                      yaxis={"type": "log", "title": "achieved FLOP/s"}, template="plotly_white", height=520)
    return fig


def write_html(fig: go.Figure, path: str | Path) -> Path:
    """Write one self-contained HTML file atomically; returns its path."""
    write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))
    return Path(path)


def write_plots(points: Sequence[Mapping[str, Any]], chip: Chip, out_dir: str | Path) -> list[Path]:
    """predicted_vs_measured.html and roofline.html under out_dir."""
    out = Path(out_dir)
    return [write_html(predicted_vs_measured(points), out / "predicted_vs_measured.html"),
            write_html(roofline(chip, points), out / "roofline.html")]
