"""Study `moe_kernel_tuning`: fused-MoE tuning results and calibration plots from measurement files
(the `accelsim.measurements` schema) under `hwmodels/measured/` or a given path; without any,
the report says so and shows the predicted kernel roofline of the MoE shapes instead.

FLOPs and bytes of every shape come from `accelsim.ops.fused_moe_counts` / `fused_moe_ops`, the same
counts the kernel benchmark and the tuner use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from accelsim import measurements
from accelsim.ops import Op, OpKind, fused_moe_counts, fused_moe_ops
from accelsim.perf import HwVec, Roofline, cost
from accelsim.report import Report
from accelsim.spec import catalog_dir, load_chip
from accelsim.spec.chip import DTYPE_BYTES, Chip
from accelsim.spec.model import LLM
from accelsim.study.common import Params, colours, label, style
from accelsim.study.sweep import Executor

_SHAPE_KEYS = ("m", "hidden", "inter", "experts", "top_k")


def find_measurements(path: str) -> list[Path]:
    """Measurement CSVs under `path` (a file or a directory, searched recursively); [] if none."""
    p = Path(path) if path else catalog_dir("hwmodels") / "measured"
    if p.is_file():
        return [p]
    return sorted(p.rglob("*.csv")) if p.is_dir() else []


def chip_for_device(device: str) -> Chip | None:
    """The catalog chip a measurement's device string names (`accelsim.measurements.chip_for_device`)."""
    name = measurements.chip_for_device(device)
    return load_chip(name) if name else None


def moe_shapes(model: LLM, ms: list[int]) -> list[dict[str, Any]]:
    assert model.moe is not None
    return [{"model": model.name, "m": m, "hidden": model.hidden_size, "inter": model.moe.expert_intermediate_size,
             "experts": model.moe.num_experts, "top_k": model.moe.top_k} for m in ms]


def run(params: dict[str, Any], *, reduced: bool, executor: Executor | None = None) -> Report:
    p = Params(params, "moe_kernel_tuning")
    where = p.str("measurements", "") or str(catalog_dir("hwmodels") / "measured")
    files = find_measurements(p.str("measurements", ""))
    rows = [dict(r, file=f.name) for f in files for r in measurements.read(f)]
    # whole fused-MoE layer calls (kernel benchmark, tuner); a CPU torch grouped_mm is not the MoE kernel
    moe_rows = [r for r in rows if r["op"] == "fused_moe"]
    rep = Report("Fused-MoE kernel tuning and calibration" + (" (reduced)" if reduced else ""))
    chips = p.chips()
    models = [m for m in p.models() if isinstance(m, LLM) and m.moe is not None]
    ms = [int(m) for m in p.list("m_values", kind=float)]
    if not moe_rows:
        rep.add_text(f"**No MoE kernel measurements were found** under `{where}` ({len(files)} measurement "
                     f"file(s), {len(rows)} row(s), none of them a fused-MoE or grouped-GEMM kernel). "
                     "There are no tuning results or calibration plots to show. Run the tuner or "
                     "`benchmarks/bench_moe_kernel.py` on a GPU and commit its measurement CSV under "
                     "`hwmodels/measured/`. Below: the **predicted** kernel roofline of the MoE shapes "
                     "(datasheet peaks; no measurement involved).")
    else:
        _measured(rep, moe_rows)
    shapes = [s for m in models for s in moe_shapes(m, ms)]
    roof = _roofline_rows(shapes, chips, p.str("dtype", "bf16"))
    rep.add_figure(_roofline_fig(roof, chips, p.str("dtype", "bf16")),
                   "attainable = min(peak, intensity x bandwidth); one point per model x tokens per call (m)",
                   fidelity="roofline")
    rep.add_figure(_time_fig(roof, chips), "predicted fused-MoE layer time per call at the roofline",
                   fidelity="roofline")
    rep.add_table("moe_roofline", roof, "FLOPs and bytes from accelsim.ops.fused_moe_counts", fidelity="roofline")
    rep.add_assumptions(chips, extra={"routing": "uniform top-k routing; distinct experts hit = "
                                                 "E(1 - (1 - k/E)^m) (accelsim.ops.expected_experts_hit)"})
    return rep


def _roofline_rows(shapes: list[dict[str, Any]], chips: list[Chip], dtype: str) -> list[dict[str, Any]]:
    b = DTYPE_BYTES[dtype]
    hw = HwVec.from_chips(chips)
    out = []
    for s in shapes:
        flops, nbytes = fused_moe_counts(s["m"], s["hidden"], s["inter"], s["experts"], s["top_k"], b, b)
        c = cost(fused_moe_ops(s["m"], s["hidden"], s["inter"], s["experts"], s["top_k"], act_bytes=b,
                               weight_bytes=b, dtype=dtype), hw, Roofline())
        for k, chip in enumerate(chips):
            t = float(np.broadcast_to(c.total_s, (len(chips),))[k])
            out.append({**s, "chip": chip.name, "dtype": dtype, "flops": flops, "bytes": nbytes,
                        "intensity_flop_per_byte": flops / nbytes, "roofline_s": t,
                        "attainable_tflops": flops / t / 1e12,
                        "bound": str(np.broadcast_to(c.bound, (len(chips),))[k])})
    return out


def _roofline_fig(rows: list[dict[str, Any]], chips: list[Chip], dtype: str) -> go.Figure:
    col = colours(chips)
    fig = go.Figure()
    xs = np.logspace(-1, 4, 120)
    for chip in chips:
        peak, bw = chip.flops(dtype), chip.mem_bw_bytes_per_s
        fig.add_trace(go.Scatter(x=xs, y=np.minimum(peak, xs * bw) / 1e12, mode="lines", name=f"{label(chip)} roof",
                                 line={"color": col[chip.name]}, legendgroup=chip.name))
        sel = [r for r in rows if r["chip"] == chip.name]
        fig.add_trace(go.Scatter(x=[r["intensity_flop_per_byte"] for r in sel],
                                 y=[r["attainable_tflops"] for r in sel], mode="markers",
                                 marker={"color": col[chip.name], "size": 7}, name=f"{label(chip)} MoE shapes",
                                 legendgroup=chip.name, showlegend=False,
                                 text=[f"{r['model']} m={r['m']}" for r in sel],
                                 hovertemplate="%{text}<br>%{x:.1f} FLOP/B, %{y:.0f} TFLOP/s<extra></extra>"))
    fig.update_xaxes(type="log", title_text="arithmetic intensity, FLOP per byte")
    fig.update_yaxes(type="log", title_text=f"attainable {dtype} TFLOP/s")
    return style(fig, "Fused-MoE kernel roofline (predicted)", 500)


def _time_fig(rows: list[dict[str, Any]], chips: list[Chip]) -> go.Figure:
    models = list(dict.fromkeys(r["model"] for r in rows))
    col = colours(chips)
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=models, horizontal_spacing=0.06)
    for j, model in enumerate(models, start=1):
        for chip in chips:
            sel = sorted((r for r in rows if r["chip"] == chip.name and r["model"] == model), key=lambda r: r["m"])
            fig.add_trace(go.Scatter(x=[r["m"] for r in sel], y=[r["roofline_s"] * 1e6 for r in sel],
                                     mode="lines+markers", name=label(chip), legendgroup=chip.name,
                                     showlegend=j == 1, line={"color": col[chip.name]}), row=1, col=j)
        fig.update_xaxes(type="log", title_text="tokens per call (m)", row=1, col=j)
        fig.update_yaxes(type="log", title_text="µs per layer call" if j == 1 else None, row=1, col=j)
    return style(fig, "Fused-MoE layer time vs tokens per call (roofline)", 440)


def _measured(rep: Report, rows: list[dict[str, Any]]) -> None:
    """Tuning results (best config per device x shape) and measured-vs-roofline calibration plots."""
    table, pts = [], []
    for r in rows:
        chip = chip_for_device(str(r["device"]))
        achieved = r["flops"] / r["median_s"]
        roof = _roofline_s(chip, r["flops"], r["bytes"], _dtype(r["dtype"])) if chip and r["flops"] > 0 else None
        ms = measurements.moe_shape(r["shape"]) if isinstance(r["shape"], dict) else None
        shape = dict(zip(_SHAPE_KEYS, (ms["M"], ms["H"], ms["I"], ms["E"], ms["top_k"]))) if ms else {}
        item = {"file": r["file"], "device": r["device"], "chip": chip.name if chip else "", "name": r["name"],
                "dtype": r["dtype"], **{k: shape.get(k) for k in _SHAPE_KEYS},
                "config": str(r["config"]), "median_s": r["median_s"], "achieved_tflops": achieved / 1e12,
                "achieved_tb_per_s": r["bytes"] / r["median_s"] / 1e12,
                "roofline_s": roof, "fraction_of_roofline": roof / r["median_s"] if roof else None}
        table.append(item)
        if roof:
            pts.append(item)
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for t in table:
        key = (t["device"], t["name"], t["dtype"], *(t[k] for k in _SHAPE_KEYS))
        if key not in best or t["median_s"] < best[key]["median_s"]:
            best[key] = t
    rep.add_text(f"**{len(rows)} measured MoE kernel rows** from {len({t['file'] for t in table})} file(s), "
                 f"{len(best)} distinct device x kernel x shape; the fastest config of each is the tuning result.")
    fig = go.Figure()
    for dev in dict.fromkeys(t["device"] for t in best.values()):
        sel = sorted((t for t in best.values() if t["device"] == dev and t["m"] is not None), key=lambda t: t["m"])
        fig.add_trace(go.Scatter(x=[t["m"] for t in sel], y=[t["achieved_tflops"] for t in sel], mode="markers+lines",
                                 name=str(dev), text=[t["config"] for t in sel]))
    fig.update_xaxes(type="log", title_text="tokens per call (m)")
    fig.update_yaxes(title_text="achieved TFLOP/s (best config)")
    rep.add_figure(style(fig, "Tuning results: achieved TFLOP/s of the best config", 440),
                   "measured on the devices named; hover for the config", fidelity="measured")
    if pts:
        lo = min(min(t["median_s"], t["roofline_s"]) for t in pts) / 1.5
        hi = max(max(t["median_s"], t["roofline_s"]) for t in pts) * 1.5
        cal = go.Figure([go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                                    line={"dash": "dash", "color": "gray"}),
                         go.Scatter(x=[t["median_s"] for t in pts], y=[t["roofline_s"] for t in pts],
                                    mode="markers", name="roofline prediction",
                                    text=[f"{t['device']} m={t['m']}" for t in pts])])
        cal.update_xaxes(type="log", title_text="measured s")
        cal.update_yaxes(type="log", title_text="predicted s (roofline)")
        rep.add_figure(style(cal, "Calibration: measured vs roofline-predicted kernel time", 460),
                       "points below y = x: the kernel is slower than its roofline", fidelity="measured")
    rep.add_table("moe_tuning_best", list(best.values()), "fastest config per device x kernel x shape",
                  fidelity="measured")
    rep.add_table("moe_measurements", table, "every measured MoE row", fidelity="measured")


def _roofline_s(chip: Chip, flops: float, nbytes: float, dtype: str) -> float:
    """The spine's roofline time (`perf.cost` with `Roofline`) of one kernel call with the measured
    row's own FLOP and byte counts (which the benchmark took from `accelsim.ops`)."""
    op = Op(OpKind.GROUPED_GEMM, "fused_moe", dtype, np.asarray(float(flops)), np.asarray(float(nbytes)))
    return float(cost([op], HwVec.from_chips([chip]), Roofline()).total_s[0])


def _dtype(d: str) -> str:
    return {"fp16": "bf16", "float16": "bf16", "bfloat16": "bf16", "float32": "fp32"}.get(d, d if d in DTYPE_BYTES
                                                                                            else "bf16")
