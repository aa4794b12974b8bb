"""Study `mtia_roadmap`: every MTIA generation next to H100 and B200 on Llama 4 Maverick, Scout and
DLRM-v2: throughput per chip, perf per watt, tokens per joule (chip and facility), what bounds each.

Each chip serves each model at its best layout and batch under the study's SLOs (the same search as
`accelsim plan`: `accelsim.search`, evaluated for all chips at once).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from accelsim.calibrate.project import rate_band
from accelsim.errors import UserError
from accelsim.perf import BOUNDS, fidelity_mix, fidelity_on
from accelsim.predict import LLMPrediction
from accelsim.report import Report
from accelsim.search import query, search
from accelsim.spec.chip import Chip
from accelsim.spec.deployment import rack_defaults, value
from accelsim.spec.model import Model, Ranking
from accelsim.study.common import BOUND_COLOURS, Params, colours, label, si, style
from accelsim.study.sweep import Executor


def _unit(model: Model) -> str:
    """The key stem of a rate: tokens (LLM) or samples (ranking: one sample = one user-item pair)."""
    return "samples" if isinstance(model, Ranking) else "tokens"


def _shown(model: Model) -> str:
    """The unit as a reader sees it: a ranking sample is a user-item pair, not an MLPerf query."""
    return "pairs" if isinstance(model, Ranking) else "tokens"


def _pue(p: Params) -> float:
    """The study's PUE, else the site default of accelsim/data/deployment.toml."""
    return p.num("pue", value("site", "pue").value, lo=1.0)


def evaluate(chips: list[Chip], models: list[Model], p: Params, executor: Executor | None) -> list[dict[str, Any]]:
    """One row per chip x model: the best point, its energy figures, or a note saying why none."""
    eff = p.efficiency()
    pue = _pue(p)
    rows: list[dict[str, Any]] = []
    for model in models:
        ranking = isinstance(model, Ranking)
        q = query(model, eff, p.opt_str("dtype_ranking" if ranking else "dtype_llm"),
                  input_len=p.int("input_len", 1000), output_len=p.int("output_len", 1000),
                  max_ttft=p.opt_num("max_ttft"), max_tpot=p.opt_num("max_tpot"),
                  max_latency=p.opt_num("max_latency"))
        for chip, r in zip(chips, search(chips, q, executor=executor, label=model.name)):
            u = _unit(model)
            row: dict[str, Any] = {"chip": chip.name, "label": label(chip), "year": chip.availability_year,
                                   "model": model.name, "unit": u, "dtype": q.dtype,
                                   "fidelity": str(fidelity_on(eff, [chip]))}
            if isinstance(r, UserError):
                row["note"] = str(r)
                rows.append(row)
                continue
            over = rack_defaults(chip).host_overhead_w_per_chip
            rate, power = r.rate_per_chip, r.power_w
            latency = ({"ttft_s": r.ttft_s, "tpot_s": r.tpot_s, "prefill_bound": r.prefill_bound}
                       if isinstance(r, LLMPrediction) else {"latency_s": r.latency_s})
            row.update({
                **r.layout_kwargs(), "replica_chips": r.replica_chips, "batch": r.batch,
                f"{u}_per_s_per_chip": rate, **latency,
                "chip_power_w": power, "tdp_w": chip.tdp_w,
                f"{u}_per_s_per_tdp_w": rate / chip.tdp_w,
                f"{u}_per_joule_chip": rate / power,
                f"{u}_per_joule_facility": rate / ((power + over) * pue),
                "bound": r.bound,
                **r.shares,
                "note": "",
            })
            band = rate_band(r, eff)  # calibrated / projected: the measured band at this operating point
            if band:
                row[f"{u}_per_s_per_chip_low"], row[f"{u}_per_s_per_chip_high"] = band
            rows.append(row)
    base = p.str("baseline", "h100-sxm")
    for row in rows:
        ref = next((r for r in rows if r["chip"] == base and r["model"] == row["model"]), None)
        key = f"{row['unit']}_per_s_per_chip"
        if ref and key in ref and key in row:
            row[f"speedup_vs_{base}"] = row[key] / ref[key]
            jk = f"{row['unit']}_per_joule_facility"
            row[f"energy_gain_vs_{base}"] = row[jk] / ref[jk]
    return rows


def _bars(chips: list[Chip], models: list[Model], rows: list[dict[str, Any]], key: str, title: str,
          ytitle: str) -> go.Figure:
    col = colours(chips)
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=[m.display_name for m in models],
                        horizontal_spacing=0.07)
    for j, model in enumerate(models, start=1):
        k = key.format(u=_unit(model))
        for chip in chips:
            r = next(r for r in rows if r["chip"] == chip.name and r["model"] == model.name)
            y = r.get(k, 0.0)
            err = (dict(type="data", symmetric=False, array=[r[f"{k}_high"] - y], arrayminus=[y - r[f"{k}_low"]])
                   if f"{k}_low" in r else None)
            fig.add_trace(go.Bar(x=[label(chip)], y=[y], error_y=err, name=label(chip), marker_color=col[chip.name],
                                 legendgroup=chip.name, showlegend=j == 1,
                                 text=[r.get("bound", "n/a") if k in r else "n/a"], textposition="outside",
                                 hovertemplate=f"{label(chip)}<br>%{{y:.4g}}<extra>{model.name}</extra>"),
                          row=1, col=j)
        fig.update_yaxes(title_text=ytitle.format(u=_shown(model)), row=1, col=j)
        fig.update_xaxes(showticklabels=False, row=1, col=j)
    return style(fig, title)


def _bounds(chips: list[Chip], models: list[Model], rows: list[dict[str, Any]]) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=[m.display_name for m in models],
                        horizontal_spacing=0.05)
    for j, model in enumerate(models, start=1):
        sel = [next(r for r in rows if r["chip"] == c.name and r["model"] == model.name) for c in chips]
        for part in BOUNDS:
            fig.add_trace(go.Bar(x=[r["label"] for r in sel], y=[r.get(f"{part}_share", 0.0) for r in sel],
                                 name=part, marker_color=BOUND_COLOURS[part],
                                 legendgroup=part, showlegend=j == 1), row=1, col=j)
        fig.update_yaxes(title_text="share of step time" if j == 1 else None, range=[0, 1], row=1, col=j)
    fig.update_layout(barmode="stack")
    return style(fig, "What bounds each chip: time shares of the decode step (ranking: the batch step)", 480)


def _generations(chips: list[Chip], models: list[Model], rows: list[dict[str, Any]], base: str) -> go.Figure:
    """Ratios to the baseline, generations in order (year under each name): MTIA generations joined
    by a line per model, the GPUs as open markers to the right."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=[f"throughput per chip vs {base}",
                                        f"tokens (samples) per joule at the facility vs {base}"])
    palette = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd")
    ticks = {c.name: f"{label(c).split(' (')[0]}<br>{c.availability_year}" for c in chips}
    order = [ticks[c.name] for c in chips]
    for i, model in enumerate(models):
        for col, key in ((1, f"speedup_vs_{base}"), (2, f"energy_gain_vs_{base}")):
            for family, mode, symbol in (("mtia", "lines+markers", "circle"), ("gpu", "markers", "diamond-open")):
                pts = [r for c in chips if c.family == family for r in rows
                       if r["chip"] == c.name and r["model"] == model.name and key in r]
                if not pts:
                    continue
                fig.add_trace(go.Scatter(
                    x=[ticks[r["chip"]] for r in pts], y=[r[key] for r in pts], mode=mode,
                    marker={"symbol": symbol, "size": 11, "color": palette[i % 4], "line": {"width": 2}},
                    line={"color": palette[i % 4]},
                    name=f"{model.display_name} ({'MTIA' if family == 'mtia' else 'GPUs'})",
                    legendgroup=f"{model.name}{family}", showlegend=col == 1,
                    hovertemplate="%{x}: %{y:.3g}x<extra>" + model.name + "</extra>"), row=1, col=col)
    fig.update_yaxes(type="log", title_text=f"x {base}", tickvals=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10,
                                                                    20, 50, 100])
    fig.update_xaxes(categoryorder="array", categoryarray=order)
    fig = style(fig, "Generation comparison: MTIA roadmap against H100 and B200", 540)
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0}, margin={"b": 130})
    return fig


def _findings(chips: list[Chip], models: list[Model], rows: list[dict[str, Any]], base: str) -> str:
    lines = ["## Findings", ""]
    for model in models:
        u = _unit(model)
        sel = [r for r in rows if r["model"] == model.name and f"{u}_per_s_per_chip" in r]
        if not sel:
            lines.append(f"- **{model.display_name}**: no chip meets the SLOs.")
            continue
        top = max(sel, key=lambda r: r[f"{u}_per_s_per_chip"])
        eco = max(sel, key=lambda r: r[f"{u}_per_joule_facility"])
        base_label = next((r["label"] for r in rows if r["chip"] == base), base)
        gain = f" ({top[f'speedup_vs_{base}']:.1f}x {base_label})" if f"speedup_vs_{base}" in top else ""
        missing = [r["label"] for r in rows if r["model"] == model.name and r.get("note")]
        shown = _shown(model)
        queries = (f" = {si(top[f'{u}_per_s_per_chip'] / model.candidates_per_query, 'queries/s')} at "
                   f"{model.candidates_per_query:g} candidate pairs per query" if isinstance(model, Ranking) else "")
        lines.append(f"- **{model.display_name}**: most {shown}/s per chip on {top['label']}: "
                     f"{si(top[f'{u}_per_s_per_chip'], shown + '/s')}{queries}{gain}, {top['bound']}-bound; most "
                     f"{shown} per joule at the facility on {eco['label']}: {eco[f'{u}_per_joule_facility']:.3g}."
                     + (f" No point meets the SLOs on: {', '.join(missing)}." if missing else ""))
    return "\n".join(lines)


def run(params: dict[str, Any], *, reduced: bool, executor: Executor | None = None) -> Report:
    p = Params(params, "mtia_roadmap")
    chips, models = p.chips(), p.models()
    base = p.choice("baseline", [c.name for c in chips], "h100-sxm")
    rows = evaluate(chips, models, p, executor)
    rep = Report("MTIA roadmap vs H100 and B200" + (" (reduced)" if reduced else ""))
    fid = fidelity_mix((r["chip"], r["fidelity"]) for r in rows) or None
    slo = (f"TTFT <= {p.opt_num('max_ttft')} s, TPOT <= {p.opt_num('max_tpot')} s; ranking batch latency <= "
           f"{p.opt_num('max_latency') or 0.06} s")
    rep.add_text(f"Each chip serves each model at its best replica layout and batch under the SLOs ({slo}), "
                 f"prompts of {p.int('input_len', 1000)} and outputs of {p.int('output_len', 1000)} tokens. "
                 f"Per-chip rates; energy per unit at the chip (predicted average draw) and at the facility "
                 f"(plus host overhead per chip, times PUE {_pue(p):g}).")
    rep.add_text(_findings(chips, models, rows, base))
    rep.add_figure(_bars(chips, models, rows, "{u}_per_s_per_chip", "Throughput per chip by generation",
                         "{u}/s per chip"), "best layout and batch under the SLOs; bar labels say what bounds "
                   "the decode step (n/a: nothing fits or meets the SLOs); error bars: the measured band of "
                   "calibrated (held-out kernel shapes) and projected (leave-one-chip-out) predictions", fidelity=fid)
    rep.add_figure(_bars(chips, models, rows, "{u}_per_s_per_tdp_w", "Performance per watt of TDP",
                         "{u}/s per W"), "per-chip rate divided by chip TDP (the power a site provisions)",
                   fidelity=fid)
    rep.add_figure(_bars(chips, models, rows, "{u}_per_joule_facility", "Tokens per joule at the facility",
                         "{u} per J"), "rate / ((predicted chip draw + host overhead) x PUE)", fidelity=fid)
    rep.add_figure(_bounds(chips, models, rows), "compute / memory / communication / kernel-overhead shares",
                   fidelity=fid)
    rep.add_figure(_generations(chips, models, rows, base), f"ratios to {base}; log scale", fidelity=fid)
    # LLM and ranking rows have different columns (layout, latency, units): one table each
    for name, kind in (("throughput", "tokens"), ("throughput_ranking", "samples")):
        sel = [r for r in rows if r["unit"] == kind]
        if sel:
            rep.add_table(name, sel, f"one row per chip x {'LLM' if kind == 'tokens' else 'ranking'} model",
                          fidelity=fid)
    rep.add_table("chips", [_spec_row(c) for c in chips], "catalog values used (hwmodels/*.toml)")
    rep.add_assumptions(chips, extra={
        "software stack": "efficiency curves of the stack in accelsim/data/stacks.toml (fitted on H100 published "
                          "points) applied to every chip, MTIA included",
        "host overhead per chip": ", ".join(f"{c.name} {rack_defaults(c).host_overhead_w_per_chip:g} W"
                                            for c in chips) + " (accelsim/data/deployment.toml; MTIA values assumed)",
        "SLOs": slo,
        "ranking sample": "one user-item pair scored (MLPerf counts queries of many pairs as one sample)",
    })
    return rep


def _spec_row(c: Chip) -> dict[str, Any]:
    """Catalog values as published: a format the chip has no unit for is empty, and named in
    `computes_in` (it runs in the next wider format); memory is HBM or LPDDR, so 'mem_'."""
    peaks = {d: (c.peak_flops[d] / 1e12 if d in c.peak_flops else None) for d in ("bf16", "fp8", "fp4")}
    fallback = {d: c.compute_dtype(d) for d in ("fp8", "fp4") if d not in c.peak_flops}
    return {"chip": c.name, "display_name": c.display_name, "year": c.availability_year, "tdp_w": c.tdp_w,
            **{f"{d}_tflops": v for d, v in peaks.items()},
            "computes_in": ", ".join(f"{d} as {f}" for d, f in fallback.items()),
            "mem_tb_per_s": c.mem_bw_bytes_per_s / 1e12, "mem_gb": c.mem_capacity_bytes / 1e9,
            "scale_up_domain": c.scale_up_domain_size, "assumed": ", ".join(c.assumed_keys)}
