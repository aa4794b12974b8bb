"""One answer per question: `predict`, `plan`, the study grid and the dashboard (its controls and
the figure its callback draws) pick the same layout, batch and throughput per chip, to the last
digit, because they all call `accelsim.search` (no mirrors to keep in step)."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.dashboard import figures
from accelsim.dashboard.controls import Controls, predict_for
from accelsim.efficiency import efficiency_from_args
from accelsim.errors import UserError
from accelsim.plan.planner import plan
from accelsim.predict import predict
from accelsim.search import default_dtype, describe
from accelsim.spec import load_chip, load_model
from accelsim.study.common import Params
from accelsim.study.roadmap import evaluate

CHIPS = ["mtia-300", "mtia-450", "h100-sxm", "b200", "tpu-v6e"]
MODELS = ["llama4-maverick", "llama3-70b", "dlrm-v2"]
SLOS = [{}, {"max_ttft": 2.0, "max_tpot": 0.05, "max_latency": 0.02}]
# 64 chips: every layout the one-replica search tries divides it, so predict's search on 64 chips
# and plan's one-replica search see the same candidates
PREDICT_CHIPS = 64
EFF = efficiency_from_args()  # the default every command and the study use


def _bar(fig, row):
    """(value, hover data) of the per-chip bar in row `row` of the generations figure."""
    for t in fig.data:
        if t.type == "bar" and t.xaxis == "x" and row in t.y:
            i = list(t.y).index(row)
            return t.x[i], t.customdata[i]
    raise AssertionError(f"no bar {row}")


def _study(slo):
    p = Params({"chips": CHIPS, "models": MODELS, **{k: v for k, v in slo.items()}}, "test")
    return {(r["chip"], r["model"]): r for r in evaluate([load_chip(n) for n in CHIPS],
                                                         [load_model(n) for n in MODELS], p, None)}


@pytest.mark.parametrize("slo", SLOS, ids=["no-slo", "slo"])
def test_predict_plan_study_and_dashboard_agree(slo):
    study = _study(slo)
    checked = 0
    for name in CHIPS:
        chip = load_chip(name)
        for model_name in MODELS:
            model = load_model(model_name)
            u = "samples" if model.kind == "ranking" else "tokens"
            row = study[name, model_name]
            try:
                p = predict(chip, model, chips=PREDICT_CHIPS, eff=EFF, dtype=default_dtype(model), **slo)
            except UserError:
                assert row.get("note"), (name, model_name)  # all agree that nothing works
                with pytest.raises(UserError):
                    plan(chip, model, site_power_w=1e8, eff=EFF, **slo)
                continue
            rate = p.rate_per_chip
            pl = plan(chip, model, site_power_w=1e8, eff=EFF, **slo)
            assert pl["replica"] == {"chips": p.replica_chips, **p.layout_kwargs(), "layout": pl["replica"]["layout"],
                                     "batch": p.batch, "dtype": p.dtype}
            assert pl[f"per_chip_{u}_per_s"] == rate
            assert row[f"{u}_per_s_per_chip"] == rate and row["batch"] == p.batch
            assert {k: row[k] for k in p.layout_kwargs()} == p.layout_kwargs()
            if not slo:  # the dashboard has no SLO controls
                c = Controls(chip=name, model=model_name, dtype=default_dtype(model))
                d = predict_for(c)
                assert (d.layout, d.batch, d.rate_per_chip, d.power_w) == (p.layout, p.batch, rate, p.power_w)
                # what the page's callback draws: the what-if bar of the generations panel
                value, custom = _bar(figures.generations_figure(c), figures.WHAT_IF_ROW)
                assert (value, custom[0], custom[1]) == (rate, describe(p.layout), p.batch)
            checked += 1
    assert checked >= 10


def test_mtia_450_maverick_one_point_everywhere():
    """The case that once differed (dashboard TP4/EP4 at 14,070 tok/s vs plan TP4/EP1 at 14,415)."""
    chip, model = load_chip("mtia-450"), load_model("llama4-maverick")
    d = predict_for(Controls(chip="mtia-450", model="llama4-maverick", dtype="fp8"))
    pl = plan(chip, model, site_power_w=1e9, eff=EFF, dtype="fp8")
    assert pl["per_chip_tokens_per_s"] == d.rate_per_chip
    assert (pl["replica"]["tp"], pl["replica"]["ep"]) == (d.tp, d.ep)


@pytest.mark.parametrize("model_name", ["llama4-maverick", "dlrm-v2"])
def test_compare_is_the_same_search(model_name, capsys):
    import json

    from accelsim.cli import main

    code = main(["compare", "--hw", ",".join(CHIPS), "--model", model_name, "--max-tpot", "0.05",
                 "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["hw"] for r in rows] == CHIPS
    model = load_model(model_name)
    u = "samples" if model.kind == "ranking" else "tokens"
    for name, row in zip(CHIPS, rows):
        p = predict(load_chip(name), model, chips=PREDICT_CHIPS, eff=EFF, max_tpot=0.05)
        assert row[f"per_chip_{u}_per_s"] == p.rate_per_chip and row["batch"] == p.batch


@pytest.mark.parametrize("chip, model_name, tp", [("h100-sxm", "llama3-70b", 8), ("mtia-450", "llama4-maverick", None),
                                                  ("h100-sxm", "dlrm-v2", None)])
def test_roofline_points_are_the_costed_operators(chip, model_name, tp):
    """The dashboard's roofline points come from `Prediction.step_ops`: costing those operators
    gives back the prediction's own step costs (decode, prefill, ranking step) to rounding."""
    from accelsim.dashboard.points import op_points
    from accelsim.perf import HwVec, cost

    c, model = load_chip(chip), load_model(model_name)
    p = predict(c, model, chips=8, eff=EFF, **({"tp": tp} if tp else {}))
    hw = HwVec.from_chips([c], shape=(1,))
    own = {"decode": getattr(p, "decode", None), "prefill": getattr(p, "prefill", None),
           "ranking": getattr(p, "step", None)}
    for phase, ops in p.step_ops().items():
        got = np.ravel(cost(ops, hw, EFF).total_s)[0]
        assert got == pytest.approx(float(own[phase].total_s), rel=1e-9), phase
    points, _ = op_points(c, model, p, EFF)
    for phase in p.step_ops():
        assert sum(pt.share for pt in points if pt.phase == phase) <= 1 + 1e-9
