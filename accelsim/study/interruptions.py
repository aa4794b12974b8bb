"""Study `llama3_interruptions`: the Llama 3 405B pre-training run (16,384 H100s, 54 days) in the
simulator's training-job mode next to the published interruption table (data:
`accelsim.serve.studies.llama3_data`), with the renewal model and a checkpoint-cost sensitivity."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from accelsim.report import Report
from accelsim.serve.failures import LLAMA3_UNEXPECTED
from accelsim.serve.studies import llama3_data
from accelsim.serve.training import expected_fraction
from accelsim.study.sweep import Executor


def run(params: dict[str, Any], *, reduced: bool, executor: Executor | None = None) -> Report:
    """Study runner (`studies/llama3_interruptions.toml`)."""
    from scipy.stats import poisson

    d = llama3_data(params)
    p = d["params"]
    rep = Report("Llama 3 405B pre-training interruptions" + (" (reduced)" if reduced else ""))
    s = {row["quantity"]: row for row in d["summary"]}
    rep.add_text(
        f"## Result\n\n{p['chips']:,} chips for {p['days']} days with the default failure model "
        f"(job MTBF {d['mtbf_s'] / 3600:.2f} h), {p['seeds']} seeds: "
        f"**{s['interruptions per day']['simulated']:.2f} interruptions per day** (published "
        f"{LLAMA3_UNEXPECTED / 54:.2f}) and **{100 * s['effective training time']['simulated']:.1f}% effective "
        f"training time** (published: above 90%) with a {p['checkpoint_s']:g} s checkpoint stall every "
        f"{d['young_interval_s']:.0f} s (Young's interval) and a {p['restart_s']:g} s restart, both assumed.\n\n"
        "The failure rates are derived from the published table, so the interruption count is a consistency "
        "check; the effective time depends on the assumed checkpoint and restart costs (sensitivity below).")
    rep.add_table("summary", d["summary"], "simulated (mean and sd over seeds) next to the published numbers")
    rep.add_table("components", d["components"], "interruptions by component: simulated mean vs the Llama 3 table")
    iv = d["intervals"]
    xs = np.geomspace(min(r["interval_s"] for r in iv) / 1.5, max(r["interval_s"] for r in iv) * 1.5, 200)
    fig = go.Figure([
        go.Scatter(x=xs, y=[expected_fraction(x, p["checkpoint_s"], p["restart_s"], d["mtbf_s"]) for x in xs],
                   mode="lines", name="renewal model (exact)"),
        go.Scatter(x=[r["interval_s"] for r in iv], y=[r["simulated_mean"] for r in iv], mode="markers",
                   name="simulated", error_y={"type": "data", "array": [r["simulated_sd"] for r in iv]}),
        go.Scatter(x=[d["young_interval_s"]] * 2, y=[min(r["simulated_mean"] for r in iv), 1.0], mode="lines",
                   name="Young sqrt(2CM)", line={"dash": "dot"}),
    ])
    fig.update_layout(title="Effective training time vs checkpoint interval", xaxis_type="log",
                      xaxis_title="compute between checkpoints, s", yaxis_title="useful fraction of wall time")
    rep.add_figure(fig, "simulated effective training time (mean ± sd over seeds) and the exact renewal model")
    daily = np.asarray(d["daily"])
    k = np.arange(daily.max() + 2)
    lam = 86400 / d["mtbf_s"]
    fig2 = go.Figure([go.Bar(x=k, y=np.bincount(daily, minlength=len(k)), name="simulated days (seed 0)"),
                      go.Scatter(x=k, y=len(daily) * poisson.pmf(k, lam), mode="lines+markers",
                                 name=f"Poisson({lam:.2f})")])
    fig2.update_layout(title="Interruptions per day", xaxis_title="interruptions in a day", yaxis_title="days")
    rep.add_figure(fig2, "daily interruption counts of one simulated run against the Poisson expectation")
    rep.add_table("sensitivity", d["sensitivity"],
                  "expected effective time at Young's interval (renewal model, which the simulator matches) "
                  "for other checkpoint and restart costs")
    rep.add_table("intervals", iv, "effective time by checkpoint interval")
    return rep
