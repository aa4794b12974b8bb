"""Study disagg_codesign (reduced): every configuration gets a row, and a disaggregated row's
figures are the split search's, per chip, per facility watt and per site (closed forms)."""

from __future__ import annotations

import pytest

from accelsim.disagg import best_split
from accelsim.spec import load_chip, load_model
from accelsim.spec.deployment import rack_defaults
from accelsim.study.common import Params
from accelsim.study.disagg_codesign import evaluate
from accelsim.study.spec import load_study


def test_reduced_study_rows_match_the_split_search() -> None:
    spec = load_study("disagg_codesign")
    params = spec.resolved_params(reduced=True)
    rows = evaluate(Params(params, "disagg_codesign"))
    assert len(rows) == len(params["aggregated"]) + len(params["pairs"])
    assert all("tokens_per_s_per_chip" in r for r in rows), [r.get("note") for r in rows]
    row = next(r for r in rows if r["mode"] == "disaggregated" and r["config"].startswith("MTIA 400"))
    a, b = load_chip("mtia-400"), load_chip("mtia-450")
    eff = Params(params, "disagg_codesign").efficiency()
    d = best_split(a, b, params["chips_total"], load_model("llama4-maverick"), eff=eff, dtype="fp8",
                   max_ttft=params["max_ttft"], max_tpot=params["max_tpot"])
    assert row["tokens_per_s_per_chip"] == pytest.approx(d.rate_per_chip)
    over = d.prefill.chips * rack_defaults(a).host_overhead_w_per_chip + d.decode.chips * rack_defaults(
        b).host_overhead_w_per_chip
    pue = params["pue"]
    assert row["tokens_per_s_per_facility_w"] == pytest.approx(d.throughput / ((d.total_power_w + over) * pue))
    peak = (d.prefill.chips * a.tdp_w + d.decode.chips * b.tdp_w + over) * pue
    assert row["site_tokens_per_s"] == pytest.approx(params["site_power_w"] / peak * d.throughput)
