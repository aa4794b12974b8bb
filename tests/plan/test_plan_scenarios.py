"""Fleet roadmaps by year and power-capping sweeps."""

import pytest

from accelsim.errors import UserError
from accelsim.plan.scenarios import Deployment, cap_sweep, fleet_by_year
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack

SCOUT = load_model("llama4-scout")
EFF = load_stack()


def test_fleet_adds_and_retires_generations():
    deps = [Deployment(2024, "h100-sxm", 50e6), Deployment(2026, "mtia-400", 80e6), Deployment(2027, "mtia-450", 60e6)]
    rows = fleet_by_year(deps, [2025, 2026, 2027, 2029], SCOUT, lifetime_years=4, max_tpot=0.05, eff=EFF)
    by_year = {y: {r["hw"]: r for r in rows if r["year"] == y} for y in (2025, 2026, 2027, 2029)}
    assert set(by_year[2025]) == {"h100-sxm"}
    assert set(by_year[2027]) == {"h100-sxm", "mtia-400", "mtia-450"}
    assert set(by_year[2029]) == {"mtia-400", "mtia-450"}  # H100 of 2024 retired after 4 years
    for year, gens in by_year.items():
        budget = sum(d.facility_power_w for d in deps if d.year <= year < d.year + 4)
        assert sum(r["facility_power_w"] for r in gens.values()) <= budget * (1 + 1e-9)
    # the same deployment serves the same in every year it is in service
    assert by_year[2026]["mtia-400"] == {**by_year[2027]["mtia-400"], "year": 2026}


def test_fleet_rejects_a_chip_before_it_exists():
    with pytest.raises(UserError, match="not available before 2027"):
        fleet_by_year([Deployment(2026, "mtia-500", 1e6)], [2026], SCOUT, eff=EFF)
    with pytest.raises(UserError):
        Deployment.from_dict({"year": 2026, "hw": "mtia-400"})


def test_cap_sweep_trades_per_chip_rate_for_chips():
    rows = cap_sweep(load_chip("mtia-450"), SCOUT, [0.5, 0.75, 1.0], site_power_w=1e8, eff=EFF, max_tpot=0.05)
    rates = [r["per_chip_tokens_per_s"] for r in rows]
    chips = [r["chips"] for r in rows]
    assert rates == sorted(rates) and chips == sorted(chips, reverse=True)
    assert rows[-1]["clock_fraction"] == 1.0 and rows[0]["clock_fraction"] < 1.0
    with pytest.raises(UserError):
        cap_sweep(load_chip("mtia-450"), SCOUT, [0.05], site_power_w=1e8, eff=EFF)  # below idle
