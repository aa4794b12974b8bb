"""The Llama 3 interruption study: its data against the published table and the renewal model."""

from __future__ import annotations

import math

import pytest

from accelsim.serve.failures import LLAMA3_UNEXPECTED
from accelsim.serve.studies import llama3_data
from accelsim.serve.training import expected_fraction
from accelsim.study.interruptions import run
from accelsim.study.spec import load_study

REDUCED = {"seeds": 3, "interval_factors": [0.5, 1.0, 2.0]}


def test_llama3_study_data_matches_the_published_run() -> None:
    spec = load_study("llama3_interruptions")
    assert spec.resolved_params(True) == {**spec.params, **REDUCED}
    d = llama3_data(spec.resolved_params(True))
    s = {r["quantity"]: r for r in d["summary"]}
    assert d["mtbf_s"] / 3600 == pytest.approx(1296 / LLAMA3_UNEXPECTED)
    # 3 runs x 54 days: Poisson in exposed time (54 days minus restarts)
    n = s["unexpected interruptions in the run"]["simulated"] * 3
    restarts = n * d["params"]["restart_s"] / 86400
    expected = 3 * LLAMA3_UNEXPECTED * (54 - restarts / 3) / 54
    assert abs(n - expected) < 4 * math.sqrt(expected)
    # effective time: the published run stayed above 90%; with the study's assumptions the model says so too
    eff = s["effective training time"]
    exact = expected_fraction(d["young_interval_s"], 30.0, 300.0, d["mtbf_s"])
    assert eff["simulated"] == pytest.approx(exact, abs=0.01) and exact > 0.9
    assert sum(r["published"] for r in d["components"]) == LLAMA3_UNEXPECTED
    best = max(d["intervals"], key=lambda r: r["simulated_mean"])
    assert best["interval_over_young"] == 1.0
    assert len(d["sensitivity"]) == 16


def test_llama3_runner_builds_a_report(tmp_path) -> None:
    rep = run({"seeds": 2, "interval_factors": [1.0]}, reduced=True)
    assert {"summary", "components", "sensitivity", "intervals"} <= set(rep.tables)
    index = rep.write(tmp_path / "r")
    assert index.exists() and (tmp_path / "r" / "summary.csv").exists()
