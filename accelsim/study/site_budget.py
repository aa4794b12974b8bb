"""Study `power_budget_1gw`: how many racks of each generation a 1 GW site at PUE 1.08 holds and
what it serves; PUE sensitivity, a power-capping trade-off and a fleet roadmap by year.

Every number comes from `accelsim.plan` (rack and site arithmetic over `predict`'s operating points).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from accelsim.errors import UserError
from accelsim.plan.planner import plan
from accelsim.plan.scenarios import Deployment, cap_sweep, fleet_by_year
from accelsim.predict import Prediction
from accelsim.report import Report
from accelsim.search import query, search
from accelsim.spec import load_chip, load_model
from accelsim.spec.model import Ranking
from accelsim.study.common import Params, colours, label, plural, si, style
from accelsim.study.sweep import Executor


def _u(model: Any) -> str:
    return "samples" if isinstance(model, Ranking) else "tokens"


def run(params: dict[str, Any], *, reduced: bool, executor: Executor | None = None) -> Report:
    p = Params(params, "power_budget_1gw")
    chips, models, eff = p.chips(), p.models(), p.efficiency()
    site_w, pue = p.num("site_power_w"), p.num("pue", lo=1.0)
    kw: dict[str, Any] = {"input_len": p.int("input_len", 1000), "output_len": p.int("output_len", 1000),
                          "max_ttft": p.opt_num("max_ttft"), "max_tpot": p.opt_num("max_tpot"),
                          "max_latency": p.opt_num("max_latency"), "eff": eff}
    headroom = p.num("headroom", 0.0)
    rows: list[dict[str, Any]] = []
    points: dict[tuple[str, str], Prediction] = {}  # (chip, model) -> operating point, reused below
    q_kw = {k: v for k, v in kw.items() if k != "eff"}
    for model in models:
        found = search(chips, query(model, eff, **q_kw), executor=executor, label=model.name)
        for chip, pt in zip(chips, found):
            u = _u(model)
            if isinstance(pt, UserError):  # a chip that cannot serve a model is a result, not a failure
                rows.append({"hw": chip.name, "label": label(chip), "model": model.name, "note": str(pt)})
                continue
            points[chip.name, model.name] = pt
            r = plan(chip, model, site_power_w=site_w, pue=pue, headroom=headroom, point=pt, **kw)
            rows.append({"hw": chip.name, "label": label(chip), "model": model.name, "racks": r["racks"],
                         "chips": r["chips"], "chips_per_rack": r["chips_per_rack"],
                         "rack_limit_binds": r["rack_limit_binds"], "rack_power_w": r["rack_power_w"],
                         "rack_power_limit_w": r["rack_power_limit_w"], "slot_power_w": r["slot_power_w"],
                         "host_overhead_w_per_chip": r["host_overhead_w_per_chip"], "tdp_w": chip.tdp_w,
                         "it_power_w": r["it_power_w"], "facility_power_w": r["facility_power_w"],
                         "facility_power_avg_w": r["facility_power_avg_w"], "unit": u,
                         "throughput_per_s": r[f"throughput_{u}_per_s"],
                         "servable_per_s": r[f"servable_{u}_per_s"], "per_joule": r[f"{u}_per_joule"],
                         "availability": r["availability"], "replica_chips": r["replica"]["chips"],
                         "bound": r["bound"], "fidelity": r["fidelity"], "note": ""})
    fid = str(eff.fidelity)
    rep = Report(f"What a {site_w / 1e9:g} GW site holds and serves" + (" (reduced)" if reduced else ""))
    rep.add_text(f"Site budget **{site_w / 1e6:,.0f} MW** of facility power at PUE **{pue:g}** (Meta fleet, 2023); "
                 f"each accelerator slot is provisioned at chip TDP plus its host overhead; racks hold whole "
                 f"replicas under their power limit. Throughput is at full load with every replica up; 'servable' "
                 f"discounts replica availability and {headroom:.0%} headroom.")
    rep.add_text(_findings(rows, models))
    first = [r for r in rows if r["model"] == models[0].name and not r["note"]]
    rep.add_figure(_racks(first, chips), "racks (bars) and accelerators (diamonds) within the site budget",
                   fidelity=fid)
    rep.add_figure(_rack_power(first, chips), "per rack: accelerator TDP + host overhead against the rack limit")
    rep.add_figure(_serves(rows, models, chips), "full-load throughput of the whole site serving one model",
                   fidelity=fid)
    rep.add_table("site", rows, "one row per chip x model", fidelity=fid)

    rep.add_table("pue_sensitivity", _pue_rows(chips, models[0], site_w, p.list("pue_sensitivity", kind=float), kw,
                                               points),
                  f"{models[0].name}: chips and throughput as PUE varies (seasonal range: provision at the peak)",
                  fidelity=fid)
    cap_chip, cap_model = load_chip(p.str("cap_chip")), load_model(p.str("cap_model"))
    caps = cap_sweep(cap_chip, cap_model, p.list("cap_fractions", kind=float), site_power_w=site_w, pue=pue, **kw)
    rep.add_figure(_caps(caps, cap_chip, cap_model), "clock fraction s = ((cap - idle) / (TDP - idle))^(1/3); "
                   "FLOP/s x s, HBM bandwidth unchanged; the site fits more capped chips", fidelity=fid)
    rep.add_table("power_caps", caps, "throughput at a cap", fidelity=fid)

    fleet_model = load_model(p.str("fleet_model"))
    deployments = [Deployment.from_dict(d) for d in p.p.get("fleet", [])]
    if deployments:
        lifetime = p.int("lifetime_years", 5)
        fleet = fleet_by_year(deployments, [int(y) for y in p.list("fleet_years", kind=float)], fleet_model,
                              lifetime_years=lifetime, pue=pue, **kw)
        rep.add_figure(_fleet(fleet, fleet_model), f"illustrative deployment schedule (study params), "
                       f"{lifetime}-year service life; not Meta's plan", fidelity=fid)
        rep.add_table("fleet_by_year", fleet, "fleet roadmap", fidelity=fid)
    all_chips = [*chips, cap_chip, *(load_chip(d.hw) for d in deployments)]
    rep.add_assumptions(all_chips, extra=_plan_assumptions(all_chips))
    return rep


def _plan_assumptions(chips: list[Any]) -> dict[str, str]:
    from accelsim.spec.deployment import rack_defaults, value

    out: dict[str, str] = {}
    for c in {c.name: c for c in chips}.values():
        for key, text in rack_defaults(c).assumptions.items():
            out[f"{c.name} {key}"] = text
    for section, key in (("availability", "mttr_h"), ("power_cap", "dvfs_exponent")):
        v = value(section, key)
        out[key] = f"{v.value:g}: {v.assumed}"
    return out


def _findings(rows: list[dict[str, Any]], models: list[Any]) -> str:
    lines = ["## Findings", ""]
    m0 = [r for r in rows if r["model"] == models[0].name and not r["note"]]
    for r in m0:
        limit = (f"; the {r['rack_power_limit_w'] / 1e3:g} kW rack limit caps a rack at {r['chips_per_rack']} chips"
                 if r["rack_limit_binds"] else "")
        lines.append(f"- **{r['label']}**: {plural(r['racks'], 'rack')}, {plural(r['chips'], 'chip')}{limit}.")
    for model in models:
        sel = [r for r in rows if r["model"] == model.name and not r["note"]]
        if sel:
            top = max(sel, key=lambda r: r["throughput_per_s"])
            lines.append(f"- {model.display_name}: the site serves most on {top['label']}, "
                         f"{si(top['throughput_per_s'], top['unit'] + '/s')}.")
    return "\n".join(lines)


def _racks(rows: list[dict[str, Any]], chips: list[Any]) -> go.Figure:
    col = colours(chips)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=[r["label"] for r in rows], y=[r["racks"] for r in rows], name="racks",
                         marker_color=[col[r["hw"]] for r in rows],
                         text=[f"{r['chips_per_rack']}/rack" + (" (power-limited)" if r["rack_limit_binds"] else "")
                               for r in rows], textposition="outside"), secondary_y=False)
    fig.add_trace(go.Scatter(x=[r["label"] for r in rows], y=[r["chips"] for r in rows], name="accelerators",
                             mode="markers", marker={"symbol": "diamond", "size": 12, "color": "#333"}),
                  secondary_y=True)
    fig.update_yaxes(title_text="racks", secondary_y=False, range=[0, 1.18 * max(r["racks"] for r in rows)])
    fig.update_yaxes(title_text="accelerators", secondary_y=True, rangemode="tozero", showgrid=False)
    return style(fig, "Racks and accelerators in the site", 460)


def _rack_power(rows: list[dict[str, Any]], chips: list[Any]) -> go.Figure:
    x = [r["label"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=[r["chips_per_rack"] * r["tdp_w"] / 1e3 for r in rows], name="accelerators (TDP)",
                         marker_color="#2171b5"))
    fig.add_trace(go.Bar(x=x, y=[r["chips_per_rack"] * r["host_overhead_w_per_chip"] / 1e3 for r in rows],
                         name="hosts, network, fans", marker_color="#bdbdbd"))
    fig.add_trace(go.Scatter(x=x, y=[r["rack_power_limit_w"] / 1e3 for r in rows], mode="markers", name="rack limit",
                             marker={"symbol": "line-ew-open", "size": 40, "color": "#d62728",
                                     "line": {"width": 3, "color": "#d62728"}}))
    fig.update_layout(barmode="stack", yaxis_title="kW per rack")
    return style(fig, "Rack power by generation", 440)


def _serves(rows: list[dict[str, Any]], models: list[Any], chips: list[Any]) -> go.Figure:
    col = colours(chips)
    fig = make_subplots(rows=1, cols=len(models), subplot_titles=[m.display_name for m in models],
                        horizontal_spacing=0.07)
    for j, model in enumerate(models, start=1):
        sel = [r for r in rows if r["model"] == model.name and not r["note"]]
        fig.add_trace(go.Bar(x=[r["label"] for r in sel], y=[r["throughput_per_s"] for r in sel],
                             marker_color=[col[r["hw"]] for r in sel], name=model.name, showlegend=False,
                             text=[r["bound"] for r in sel], textposition="outside"), row=1, col=j)
        fig.update_yaxes(title_text=f"{_u(model)}/s", row=1, col=j)
    return style(fig, "What the site serves, per model", 480)


def _caps(rows: list[dict[str, Any]], chip: Any, model: Any) -> go.Figure:
    u = _u(model)
    ref = next(r for r in rows if r["cap_fraction"] == max(x["cap_fraction"] for x in rows))
    fig = go.Figure()
    for key, name, dash in ((f"per_chip_{u}_per_s", "throughput per chip", "solid"), ("chips", "chips in the site",
                            "dot"), (f"site_{u}_per_s", "site throughput", "solid"), (f"{u}_per_joule",
                            f"{u} per joule (facility)", "dash"), ("clock_fraction", "clock fraction", "dashdot")):
        fig.add_trace(go.Scatter(x=[r["cap_fraction"] for r in rows], y=[r[key] / ref[key] for r in rows],
                                 mode="lines+markers", name=name, line={"dash": dash}))
    fig.update_layout(xaxis_title="power cap / TDP", yaxis_title="relative to uncapped")
    return style(fig, f"Power capping trade-off: {label(chip)} on {model.display_name}", 460)


def _fleet(rows: list[dict[str, Any]], model: Any) -> go.Figure:
    u = _u(model)
    chips = [load_chip(h) for h in dict.fromkeys(r["hw"] for r in rows)]
    col = colours(chips)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    years = sorted({r["year"] for r in rows})
    for c in chips:
        fig.add_trace(go.Bar(x=years, y=[sum(r[f"throughput_{u}_per_s"] for r in rows if r["year"] == y and
                                             r["hw"] == c.name) for y in years], name=label(c),
                             marker_color=col[c.name]), secondary_y=False)
    fig.add_trace(go.Scatter(x=years, y=[sum(r["facility_power_w"] for r in rows if r["year"] == y) / 1e6
                                         for y in years], name="facility MW", mode="lines+markers",
                             line={"color": "#333"}), secondary_y=True)
    fig.update_layout(barmode="stack")
    fig.update_xaxes(dtick=1, title_text="year")
    fig.update_yaxes(title_text=f"{model.name} {u}/s", secondary_y=False)
    fig.update_yaxes(title_text="facility MW", secondary_y=True, rangemode="tozero", showgrid=False)
    return style(fig, f"Fleet roadmap by year: {model.display_name} capacity by generation", 460)


def _pue_rows(chips: list[Any], model: Any, site_w: float, pues: list[float], kw: dict[str, Any],
              points: dict[tuple[str, str], Prediction]) -> list[dict]:
    out = []
    for chip in chips:
        pt = points.get((chip.name, model.name))
        if pt is None:  # reported in the site table already
            continue
        for pue in pues:
            r = plan(chip, model, site_power_w=site_w, pue=pue, point=pt, **kw)
            u = _u(model)
            out.append({"hw": chip.name, "pue": pue, "racks": r["racks"], "chips": r["chips"],
                        f"throughput_{u}_per_s": r[f"throughput_{u}_per_s"], f"{u}_per_joule": r[f"{u}_per_joule"]})
    return out
