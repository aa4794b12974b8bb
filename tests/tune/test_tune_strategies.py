"""Each strategy on replay devices with a known optimum."""

from __future__ import annotations

import pytest
from tune_helpers import Counting, argmin_rows, replay_of, small_space, surface_rows

from accelsim.spec import load_chip
from accelsim.tune.core import Budget, Measurement, tune
from accelsim.tune.space import DEVICE_LIMITS, Problem, as_tuple, prune, vllm_space
from accelsim.tune.strategies import default_budget, make_strategy
from accelsim.tune.synthetic import replay_rows

H100 = DEVICE_LIMITS["h100-sxm"]
CHIP = load_chip("h100-sxm")
PROBLEM = Problem(8, 4096, 7168, 2, "bf16", 256)


def _strategy(name: str, candidates, priors=(), seed: int = 0, problem: Problem = PROBLEM):
    return make_strategy(name, candidates, problem=problem, limits=H100, chip=CHIP, priors=priors, seed=seed)


@pytest.fixture(scope="module")
def easy():
    """The pruned space of PROBLEM with a separable surface whose optimum is an interior point."""
    candidates, _ = prune(vllm_space(), PROBLEM, H100)
    optimum = next(c for c in candidates if tuple(c.values()) == (64, 128, 128, 16, 8, 3))
    rows = surface_rows(PROBLEM, candidates, optimum)
    return candidates, optimum, rows


def test_exhaustive_finds_the_recorded_minimum_exactly() -> None:
    problem = Problem(8, 4096, 7168, 2, "bf16", 64)
    rows = replay_rows([problem], H100)  # synthetic-h100: realistic, noisy, with failed configs absent
    candidates, _ = prune(vllm_space(), problem, H100)
    device = Counting(replay_of(rows))
    result = tune(problem, _strategy("exhaustive", candidates, problem=problem), device)
    best_cfg, best_s = argmin_rows(rows)
    assert result.best_config == best_cfg and result.best_time_s == best_s
    assert result.evaluated == len(candidates) == len(set(device.calls))
    # configs without a row (failed when recorded) are reported, never picked
    assert result.not_ok.get("not_recorded", 0) == len(candidates) - len(rows)


@pytest.mark.parametrize("name, budget", [("model", 0.10), ("bayes", 0.25), ("random", 1.0)])
def test_strategy_finds_the_easy_optimum_within_budget(easy, name: str, budget: float) -> None:
    candidates, optimum, rows = easy
    n = round(budget * len(candidates))
    result = tune(PROBLEM, _strategy(name, candidates, seed=1), replay_of(rows), budget=Budget(evaluations=n))
    assert result.evaluated == n
    assert result.best_config == optimum, f"{name}: {result.best_config} after {n} of {len(candidates)}"


def test_model_strategy_within_3_percent_at_10_percent_on_synthetic_data() -> None:
    problem = Problem(256, 7168, 2048, 8, "bf16", 1024)  # DeepSeek-V3 shape
    rows = replay_rows([problem], H100)
    candidates, _ = prune(vllm_space(), problem, H100)
    budget = default_budget("model", len(candidates))
    assert budget == -(-len(candidates) // 10)
    result = tune(problem, _strategy("model", candidates, problem=problem), replay_of(rows),
                  budget=Budget(evaluations=budget))
    assert result.best_time_s <= 1.03 * argmin_rows(rows)[1]


@pytest.mark.parametrize("name", ["exhaustive", "random", "model", "bayes"])
def test_no_repeats_nothing_outside_the_candidates_and_priors_first(name: str) -> None:
    candidates = small_space()
    problem = Problem(8, 4096, 7168, 2, "bf16", 64)
    priors = [candidates[40], candidates[7], {**candidates[0], "num_warps": 8}]  # the last is not a candidate
    strat = _strategy(name, candidates, priors=priors, problem=problem)
    proposed = []
    while batch := strat.ask(5):
        for c in batch:
            proposed.append(as_tuple(c))
            strat.tell(c, Measurement("ok", 1e-4 * (1 + len(proposed) % 7)))
    assert sorted(proposed) == sorted(as_tuple(c) for c in candidates)
    if name != "exhaustive":
        assert proposed[:2] == [as_tuple(candidates[40]), as_tuple(candidates[7])]


def test_random_orders_depend_on_the_seed() -> None:
    candidates = small_space()
    orders = [tuple(as_tuple(c) for c in _strategy("random", candidates, seed=s).ask(48)) for s in (0, 1)]
    assert orders[0] != orders[1] and sorted(orders[0]) == sorted(orders[1])


def test_a_failing_config_is_never_the_best(easy) -> None:
    candidates, optimum, rows = easy
    broken = [r for r in rows if r["config"] != rows[0]["config"]]  # one config without a row
    fast = dict(rows[0])
    fast["median_s"] = 1e-9  # the fastest time on record...
    device = replay_of([*broken, dict(fast, dtype="fp16")])  # ...filed under another dtype
    result = tune(PROBLEM, _strategy("exhaustive", candidates), device)
    assert result.best_config == optimum
    assert result.not_ok == {"not_recorded": 1}


def test_budget_parsing() -> None:
    assert Budget.parse("200") == Budget(evaluations=200)
    assert Budget.parse("90s") == Budget(seconds=90.0)
    assert Budget.parse("2m") == Budget(seconds=120.0)
    assert Budget.parse(None) == Budget()


def test_seconds_budget_stops_the_search(easy) -> None:
    candidates, _, rows = easy
    now = [0.0]
    device = replay_of(rows)
    inner = device.measure

    def slow_measure(problem, config):  # every measurement takes one second of the fake clock
        now[0] += 1.0
        return inner(problem, config)

    device.measure = slow_measure
    result = tune(PROBLEM, _strategy("exhaustive", candidates), device, budget=Budget(seconds=10),
                  clock=lambda: now[0])
    assert result.evaluated == 10
