"""The learned cost-model correction: its gradient, that a fit recovers a planted preference on held-out
cases, the saved parameters, the anchoring of predicted seconds, and that the model strategy's plan
is the order the benchmark judges."""

from __future__ import annotations

import json

import numpy as np
import pytest

from accelsim.errors import UserError
from accelsim.spec import load_chip
from accelsim.tune import ranker as R
from accelsim.tune.space import (
    CONFIG_KEYS,
    DEVICE_LIMITS,
    TUNE_SPACE,
    Problem,
    config_arrays,
    prune,
    tune_space,
    tune_space_arrays,
)

H100 = DEVICE_LIMITS["h100-sxm"]


def _synthetic_pairs(n_cases: int, cols: int, seed: int, rule) -> R.PairData:
    """Cases whose 'winner' follows ``rule(m)`` -> a BLOCK_SIZE_M value; others drawn at random."""
    rng = np.random.default_rng(seed)
    vidx_all = R.value_indices(tune_space_arrays())
    rows = []
    for _ in range(n_cases):
        m = int(2 ** rng.integers(0, 13))
        p = Problem(64, 2048, 1024, 8, "bf16", m)
        bm_pos = TUNE_SPACE["BLOCK_SIZE_M"].index(rule(m))
        winners = np.flatnonzero(vidx_all[:, 0] == bm_pos)
        pick = np.concatenate([[rng.choice(winners)], rng.choice(len(vidx_all), cols - 1)])
        pick = pick[[0] + [i for i in range(1, cols) if vidx_all[pick[i], 0] != bm_pos]]
        pick = np.resize(pick, cols) if len(pick) < cols else pick
        b, b2 = R.case_basis(p, H100)
        rows.append((vidx_all[pick], np.zeros(cols), b, b2))
    return R.stack(rows)


def test_gradient_matches_finite_differences() -> None:
    data = _synthetic_pairs(6, 9, seed=0, rule=lambda m: 16 if m < 64 else 128)
    rng = np.random.default_rng(1)
    theta = rng.normal(scale=0.1, size=R._n_params())
    _, grad = R._loss_grad(theta, data, ridge=1e-3)
    for j in rng.choice(len(theta), 25, replace=False):
        e = np.zeros_like(theta)
        e[j] = 1e-6
        numeric = (R._loss_grad(theta + e, data, 1e-3)[0] - R._loss_grad(theta - e, data, 1e-3)[0]) / 2e-6
        assert numeric == pytest.approx(grad[j], rel=1e-4, abs=1e-8)


def test_fit_learns_a_batch_dependent_preference_that_holds_on_new_cases() -> None:
    rule = lambda m: 16 if m <= 32 else 128
    model = R.fit(_synthetic_pairs(150, 16, seed=2, rule=rule))
    space = tune_space_arrays()
    vidx = R.value_indices(space)
    for m in (1, 8, 512, 4096):  # cases the fit never saw (other draws)
        b, b2 = R.case_basis(Problem(64, 2048, 1024, 8, "bf16", m), H100)
        corr = model.correction(vidx, b, b2)
        best_bm = {v: corr[space["BLOCK_SIZE_M"] == v].mean() for v in TUNE_SPACE["BLOCK_SIZE_M"]}
        assert min(best_bm, key=best_bm.get) == rule(m)


def test_parameters_round_trip_and_refuse_another_space() -> None:
    model = R.fit(_synthetic_pairs(20, 8, seed=3, rule=lambda m: 64), max_iter=5)
    doc = json.loads(json.dumps(model.to_json()))
    back = R.Ranker.from_json(doc)
    vidx = R.value_indices(config_arrays(tune_space()[:50]))
    b, b2 = R.case_basis(Problem(8, 4096, 7168, 2, "fp8", 16), H100)
    assert np.allclose(back.correction(vidx, b, b2), model.correction(vidx, b, b2), atol=1e-4)
    doc["values"]["num_warps"] = [4, 8]
    with pytest.raises(UserError, match="another tuning space"):
        R.Ranker.from_json(doc)


def test_shipped_parameters_load_with_provenance() -> None:
    model = R.load()
    assert model is not None and model.alpha == 1.0
    assert "vllm" in model.provenance["source"] and model.provenance["labels"] > 1000
    assert set(model.provenance["held_out"]) == {"M<=16", "17-256", ">256"}
    factors = R.load_factors("hopper")
    assert factors is not None and factors.shape == (5,) and (factors > 0).all()


def test_predicted_seconds_keep_the_calibrated_level_at_the_top_config() -> None:
    from accelsim.tune.costmodel import START, CostModel

    chip = load_chip("h100-sxm")
    problem = Problem(8, 4096, 7168, 2, "bf16", 64)
    kept, _ = prune(tune_space()[::7], problem, H100)
    arrays = config_arrays(kept)
    factors = START * np.array([1.5, 0.8, 2.0, 1.0, 0.5])
    pred, corr = R.predict_seconds(problem, H100, chip, arrays, R.load(), factors)
    top = int(np.argmin(pred))
    terms = CostModel(problem, H100, chip).terms(arrays)
    assert pred[top] == pytest.approx(terms.predict(factors)[top], rel=1e-9)
    assert corr[top] == 0.0
    # the order is the ranker's: analytical at start factors times the learned correction
    order = np.argsort(np.log(terms.predict()) + corr)
    assert np.array_equal(np.argsort(pred, kind="stable")[:20], order[:20])


def test_model_strategy_plan_is_the_judged_order() -> None:
    from accelsim.tune.costmodel import one_hot
    from accelsim.tune.strategies import make_strategy, model_plan

    chip = load_chip("h200-sxm")
    limits = DEVICE_LIMITS["h200-sxm"]
    problem = Problem(256, 7168, 256, 8, "fp8_block", 16)
    kept, _ = prune(tune_space()[::5], problem, limits)
    strat = make_strategy("model", kept, problem=problem, limits=limits, chip=chip)
    arrays = config_arrays(kept)
    pred, _ = R.predict_seconds(problem, limits, chip, arrays, R.load(), R.load_factors("hopper"))
    x = one_hot(arrays, {k: sorted(set(arrays[k].tolist())) for k in CONFIG_KEYS})
    assert strat.plan() == model_plan(pred, x)
