"""Training-job mode against the checkpoint/restart renewal model and Young/Daly."""

from __future__ import annotations

import math

import pytest

from accelsim.errors import UserError
from accelsim.serve.failures import Component, FailureModel
from accelsim.serve.training import (
    TrainingJob,
    daly_interval,
    expected_fraction,
    first_order_fraction,
    simulate_training,
    young_interval,
)

# 3,600 chips at 1/3600 failures per chip-hour: job MTBF 1 h
FM = FailureModel((Component("x", 1 / 3600, 0.0),), "test")
CHIPS = 3600
M = 3600.0 / (CHIPS * FM.rate_per_chip_hour)


def _segment_moments(a: float, restart: float, mtbf: float) -> tuple[float, float]:
    """Mean and variance of the wall time to commit one segment needing `a` s of exposure: geometric
    number of failed attempts, each a truncated exponential exposure plus the restart."""
    lam, q = 1 / mtbf, math.exp(-a / mtbf)
    ex = 1 / lam - a * q / (1 - q)  # E[X | X < a]
    ex2 = 2 / lam**2 - (a * a + 2 * a / lam) * q / (1 - q)
    eg, vg = (1 - q) / q, (1 - q) / q**2  # failures before the first success
    ey, vy = ex + restart, ex2 - ex * ex
    return eg * ey + a, eg * vy + vg * ey * ey


def test_exact_expected_fraction_is_the_renewal_mean() -> None:
    c, r, tau = 60.0, 120.0, 600.0
    mean_t, _ = _segment_moments(tau + c, r, M)
    assert expected_fraction(tau, c, r, M) == pytest.approx(tau / mean_t, rel=1e-12)


def test_simulated_effective_time_matches_renewal_model() -> None:
    c, r, tau, hours = 60.0, 120.0, 600.0, 4000.0
    res = simulate_training(TrainingJob(CHIPS, hours * 3600, c, r, tau), FM, seed=3)
    mean_t, var_t = _segment_moments(tau + c, r, M)
    d = hours * 3600
    sd = tau * math.sqrt(var_t / (mean_t**3 * d))  # renewal CLT on the number of committed segments
    assert abs(res["effective_fraction"] - tau / mean_t) < 4 * sd + tau / d
    # interruptions: Poisson in exposed time (wall time minus restarts)
    exposed = (d - res["restart_overhead_s"]) / M
    assert abs(res["interruptions"] - exposed) < 4 * math.sqrt(exposed)
    # time is conserved: useful + checkpoints + lost + restarts + the unfinished tail = wall time
    spent = res["useful_s"] + res["checkpoint_overhead_s"] + res["lost_work_s"] + res["restart_overhead_s"]
    assert 0 <= d - spent <= tau + c + r


def test_young_daly_interval_and_first_order_fraction() -> None:
    c, r, hours = 10.0, 30.0, 3000.0
    mtbf = 10 * M  # C/M ~ 3e-4: the regime Young's expansion is made for
    fm = FailureModel((Component("x", FM.components[0].rate_per_chip_hour / 10, 0.0),), "test")
    tau_y = young_interval(c, mtbf)
    assert tau_y == pytest.approx(math.sqrt(2 * c * mtbf))
    res = {f: simulate_training(TrainingJob(CHIPS, hours * 3600, c, r, f * tau_y), fm, seed=5)["effective_fraction"]
           for f in (0.25, 1.0, 4.0)}
    yd = first_order_fraction(c, r, mtbf)
    mean_t, var_t = _segment_moments(tau_y + c, r, mtbf)
    sd = tau_y * math.sqrt(var_t / (mean_t**3 * hours * 3600))
    # first-order Young/Daly: 1 - sqrt(2C/M) - R/M, neglected terms O(C/M) ~ 3e-4
    assert abs(res[1.0] - yd) < 4 * sd + 5 * c / mtbf
    assert res[1.0] > res[0.25] and res[1.0] > res[4.0]  # the optimum is near Young's interval
    # Daly's refinement moves the optimum by O(C) only, and the exact model agrees it is better
    tau_d = daly_interval(c, mtbf)
    assert abs(tau_d - tau_y) < 0.02 * tau_y
    assert expected_fraction(tau_d, c, r, mtbf) >= expected_fraction(tau_y, c, r, mtbf) - 1e-9


def test_auto_interval_and_validation() -> None:
    res = simulate_training(TrainingJob(CHIPS, 3600.0 * 50, 30.0, 60.0), FM, seed=1)
    assert res["checkpoint_interval_s"] == pytest.approx(young_interval(30.0, M))
    none = simulate_training(TrainingJob(8, 1050.0, 10.0, 0.0, 90.0), FailureModel.none())
    assert none["interruptions"] == 0 and none["effective_fraction"] == pytest.approx(10 * 90 / 1050)
    with pytest.raises(UserError, match="auto needs failures"):
        simulate_training(TrainingJob(8, 1000.0, 10.0, 0.0), FailureModel.none())
    with pytest.raises(UserError, match="--checkpoint-cost"):
        simulate_training(TrainingJob(8, 1000.0, -1.0, 0.0, 10.0), FM)
