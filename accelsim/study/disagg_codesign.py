"""Study `disagg_codesign`: aggregated vs disaggregated serving of one LLM on chip generations, with
mixed-chip prefill/decode pools: tokens/s per chip, per facility watt and per site.

Aggregated: each chip alone on `chips` chips, at the layout and batch the one search picks
(`accelsim.search.best`). Disaggregated: each [prefill, decode] pair at the split of `chips` that
serves the most tokens/s (`accelsim.disagg.best_split`). Per watt: output tokens/s per W at the
facility (average chip draw + host overhead, times PUE). Per site: the tokens/s a site of
`site_power_w` serves when provisioned at TDP + host overhead times PUE, as `accelsim plan` does.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from accelsim.disagg import DisaggPrediction, best_split
from accelsim.errors import UserError
from accelsim.report import Report
from accelsim.search import best, query
from accelsim.spec import load_chip
from accelsim.spec.chip import Chip
from accelsim.spec.deployment import rack_defaults, value
from accelsim.spec.model import LLM
from accelsim.study.common import Params, label, si, style

_METRICS = (("tokens_per_s_per_chip", "output tokens/s per chip"),
            ("tokens_per_s_per_facility_w", "output tokens/s per facility W"),
            ("site_tokens_per_s", "output tokens/s of the site"))


def _facility(chips: list[tuple[Chip, int]], avg_w: float, pue: float) -> tuple[float, float]:
    """(average facility W, provisioned facility W) of a mix of (chip, count) drawing `avg_w` in all."""
    over = sum(n * rack_defaults(c).host_overhead_w_per_chip for c, n in chips)
    return (avg_w + over) * pue, (sum(n * c.tdp_w for c, n in chips) + over) * pue


def _row(name: str, mode: str, mix: list[tuple[Chip, int]], tokens_per_s: float, avg_w: float, pue: float,
         site_w: float, extra: dict[str, Any]) -> dict[str, Any]:
    chips = sum(n for _, n in mix)
    avg_fac, peak_fac = _facility(mix, avg_w, pue)
    return {"config": name, "mode": mode, "chips": chips, "tokens_per_s": tokens_per_s,
            "tokens_per_s_per_chip": tokens_per_s / chips, "tokens_per_s_per_facility_w": tokens_per_s / avg_fac,
            "site_tokens_per_s": site_w / peak_fac * tokens_per_s, **extra}


def evaluate(p: Params) -> list[dict[str, Any]]:
    model = p.models("models")[0]
    if not isinstance(model, LLM):
        raise UserError(f"study disagg_codesign: {model.name} is not an LLM")
    eff, n = p.efficiency(), p.int("chips_total", 64, lo=2)
    pue, site_w = p.num("pue", value("site", "pue").value, lo=1.0), p.num("site_power_w", 100e6)
    kw: dict[str, Any] = dict(dtype=p.str("dtype", "fp8"), input_len=p.int("input_len", 1000),
                              output_len=p.int("output_len", 1000), max_ttft=p.opt_num("max_ttft"),
                              max_tpot=p.opt_num("max_tpot"))
    rows: list[dict[str, Any]] = []
    for chip in p.chips("aggregated"):
        try:
            r = best(chip, query(model, eff, **kw), total_chips=n)
        except UserError as exc:
            rows.append({"config": label(chip), "mode": "aggregated", "note": str(exc)})
            continue
        rows.append(_row(label(chip), "aggregated", [(chip, n)], r.throughput, r.power_w * n, pue, site_w,
                         {"layout": f"tp={r.layout.tp} ep={r.layout.ep} pp={r.layout.pp}", "batch": r.batch,
                          "ttft_s": r.ttft_s, "tpot_s": r.tpot_s, "bottleneck": "", "note": "",
                          "fidelity": str(r.fidelity)}))
    for pair in p.p.get("pairs", []):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise UserError(f"study disagg_codesign: 'pairs' must be [prefill, decode] chip names, got {pair!r}")
        a, b = load_chip(pair[0]), load_chip(pair[1])
        name = f"{label(a)} prefill + {label(b)} decode"
        try:
            d: DisaggPrediction = best_split(a, b, n, model, eff=eff, **kw)
        except UserError as exc:
            rows.append({"config": name, "mode": "disaggregated", "note": str(exc)})
            continue
        dd = d.to_dict()
        mix = [(a, d.prefill.chips), (b, d.decode.chips)]
        rows.append(_row(name, "disaggregated", mix, d.throughput, d.total_power_w, pue, site_w, {
            "layout": f"{d.prefill.chips} prefill (tp={dd['prefill']['tp']}) + {d.decode.chips} decode "
                      f"(tp={dd['decode']['tp']})", "batch": d.decode.stage.batch, "ttft_s": dd["ttft_s"],
            "tpot_s": dd["tpot_s"], "bottleneck": d.bottleneck, "kv_fabric": d.link.fabric, "note": "",
            "fidelity": d.fidelity}))
    for r in rows:  # each row's own (calibrated on a measured chip, projected elsewhere); failed rows: eff's
        r.update(model=model.name, fidelity=r.get("fidelity", str(eff.fidelity)))
    return rows


def _figure(rows: list[dict[str, Any]]) -> go.Figure:
    ok = [r for r in rows if "tokens_per_s_per_chip" in r]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[t for _, t in _METRICS], horizontal_spacing=0.06)
    for j, (key, title) in enumerate(_METRICS, start=1):
        fig.add_trace(go.Bar(y=[r["config"] for r in ok], x=[r[key] for r in ok], orientation="h",
                             marker_color=["#1f77b4" if r["mode"] == "aggregated" else "#d62728" for r in ok],
                             showlegend=False, hovertemplate="%{y}: %{x:.4g}<extra>" + title + "</extra>"),
                      row=1, col=j)
        fig.update_yaxes(showticklabels=j == 1, autorange="reversed", row=1, col=j)
    return style(fig, "Aggregated (blue) vs disaggregated prefill/decode (red)", 120 + 34 * len(ok))


def _fronts(p: Params) -> tuple[go.Figure, list[dict[str, Any]]]:
    """Each aggregated chip's throughput-interactivity front (`accelsim.pareto`) under the TTFT SLO."""
    from accelsim.pareto import front, points
    from accelsim.search import Query

    model, eff = p.models("models")[0], p.efficiency()
    q = Query(model, eff, p.str("dtype", "fp8"), input_len=p.int("input_len", 1000),  # type: ignore[arg-type]
              output_len=p.int("output_len", 1000), max_ttft=p.opt_num("max_ttft"))
    fig, rows = go.Figure(), []
    for chip in p.chips("aggregated"):
        try:
            pts = front(points(chip, q))
        except UserError:
            continue
        fig.add_trace(go.Scatter(x=[x.tokens_per_s_per_user for x in pts], y=[x.tokens_per_s_per_chip for x in pts],
                                 mode="lines+markers", name=label(chip)))
        rows += [{"chip": chip.name, **x.to_dict(), "layout": " ".join(f"{k}={v}" for k, v in x.to_dict()[
            "layout"].items())} for x in pts]
    tpot = p.opt_num("max_tpot")
    if tpot:
        fig.add_vline(x=1 / tpot, line_dash="dot", annotation_text=f"TPOT SLO {tpot * 1e3:g} ms")
    fig.update_xaxes(title_text="output tokens/s per user (1 / TPOT)")
    fig.update_yaxes(title_text="output tokens/s per chip", type="log")
    return style(fig, "Throughput vs interactivity: each chip's front over layouts and batches (aggregated)", 520), rows


def _findings(rows: list[dict[str, Any]]) -> str:
    ok = {r["config"]: r for r in rows if "tokens_per_s_per_chip" in r}
    lines = ["## Findings", ""]
    if ok:
        top = max(ok.values(), key=lambda r: r["tokens_per_s_per_chip"])
        lines.append(f"- Most tokens/s per chip: **{top['config']}** ({top['mode']}, "
                     f"{top['tokens_per_s_per_chip']:,.0f}; {top['layout']}).")
        site = max(ok.values(), key=lambda r: r["site_tokens_per_s"])
        lines.append(f"- Most tokens/s per site: **{site['config']}** ({si(site['site_tokens_per_s'], 'tokens/s')}).")
    for r in ok.values():
        if r["mode"] == "disaggregated":
            lines.append(f"- {r['config']}: {r['tokens_per_s_per_chip']:,.0f} tokens/s per chip, "
                         f"{r['tokens_per_s_per_facility_w']:.3g} per facility W; {r['layout']}; the "
                         f"{r['bottleneck']} pool binds; KV over {r['kv_fabric']}.")
    bad = [r for r in rows if r.get("note")]
    lines += [f"- {r['config']}: no point ({r['note']})." for r in bad]
    return "\n".join(lines)


def run(params: dict[str, Any], *, reduced: bool = False) -> Report:
    p = Params(params, "disagg_codesign")
    rows = evaluate(p)
    rep = Report("Disaggregated prefill/decode across chip generations")
    rep.add_text(_findings(rows))
    rep.add_figure(_figure(rows), "Per chip, per facility watt and per site. Disaggregated rows use the best split "
                   "of the chips between the pools; the faster pool idles the rest of the time (power counted).",
                   fidelity=rows[0].get("fidelity") if rows else None)
    rep.add_table("disagg_codesign", rows, "One row per configuration.")
    fig, front_rows = _fronts(p)
    rep.add_figure(fig, "Every layout and batch under the TTFT SLO; the TPOT SLO of the table above is a vertical "
                   "line at 1 / max_tpot tokens/s per user.", fidelity=rows[0].get("fidelity") if rows else None)
    rep.add_table("pareto_fronts", front_rows, "The fronts' points (accelsim pareto).")
    rep.add_assumptions([load_chip(n) for n in dict.fromkeys([*p.list("aggregated"), *(x for pr in p.p.get(
        "pairs", []) for x in pr)])], {
        "KV transfer": "scale-up when both pools share a family and a scale-up domain, else scale-out "
                       "(accelsim.disagg)",
        "site": "provisioned at TDP + host overhead (accelsim/data/deployment.toml) times PUE, as accelsim plan"})
    return rep
