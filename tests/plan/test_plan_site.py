"""Rack and site arithmetic against hand-computed cases."""

import math

import pytest

from accelsim.errors import UserError
from accelsim.plan import site
from accelsim.spec import load_chip
from accelsim.spec.deployment import rack_defaults, value


def test_rack_limit_binds_mtia_500():
    # slot 1,700 + 450 = 2,150 W; a 4-chip tray 8,600 W; 140 kW / 8.6 kW = 16.3 -> 16 trays = 64 chips < 72
    lay = site.rack_layout(1700, 450, 4, 72, 140e3, replica_chips=4)
    assert lay.slot_w == 2150 and lay.chips_per_rack == 64 and lay.rack_limit_binds
    assert lay.replicas_per_rack == 16 and lay.racks_per_replica == 0
    assert lay.rack_power_w == 64 * 2150 == 137_600
    assert lay.racks(16) == 1 and lay.racks(17) == 2


def test_rack_limit_does_not_bind_mtia_450():
    # 1,850 W x 4 = 7,400 W per tray; 140 kW holds 18 trays = 72 chips: exactly the nominal rack
    lay = site.rack_layout(1400, 450, 4, 72, 140e3, replica_chips=8)
    assert lay.chips_per_rack == 72 and not lay.rack_limit_binds
    assert lay.replicas_per_rack == 9  # 72 / 8


def test_grand_teton_h100_rack_holds_three_servers():
    # DGX H100 at max: 8 x (700 + 575) = 10.2 kW; a 40 kW rack holds 3 servers (4 would be 40.8 kW)
    lay = site.rack_layout(700, 575, 8, 32, 40e3, replica_chips=8)
    assert lay.chips_per_rack == 24 and lay.rack_limit_binds and lay.rack_power_w == pytest.approx(30_600)


def test_replica_spanning_racks():
    lay = site.rack_layout(1000, 0, 8, 64, 1e6, replica_chips=96)
    assert lay.replicas_per_rack == 0 and lay.racks_per_replica == 2
    assert lay.racks(3) == 6


def test_whole_replicas_per_rack_leave_slots_empty():
    lay = site.rack_layout(1000, 0, 1, 72, 1e6, replica_chips=16)
    assert lay.replicas_per_rack == 4  # 64 of the 72 slots used
    assert lay.rack_power_w == 64 * 1000


def test_site_limit_binds_exact_boundary():
    # 1 MW facility at PUE 1.25 -> 800 kW IT; 8-chip replicas at 1 kW per slot -> exactly 100 replicas
    lay = site.rack_layout(900, 100, 8, 64, 1e6, replica_chips=8)
    pue_peak, _ = site.pue_for(1.25, None)
    assert site.replicas_in_budget(1e6 / pue_peak, lay) == 100
    assert site.replicas_in_budget(1e6 / pue_peak - 1.0, lay) == 99  # one watt short of the 100th


def test_demand_with_headroom_and_availability():
    lay = site.rack_layout(500, 0, 4, 64, 1e6, replica_chips=4)
    # 40 tokens/s per replica; 1,000 x 1.25 / 40 = 31.25 -> 32 replicas
    assert site.replicas_for_demand(1000, 10, lay, availability=1.0, headroom=0.25) == 32
    # at availability 0.5 twice as many are needed: 62.5 -> 63
    assert site.replicas_for_demand(1000, 10, lay, availability=0.5, headroom=0.25) == 63
    assert site.replicas_for_demand(1200, 10, lay, availability=1.0, headroom=0.0) == 30  # exact


def test_replica_availability_closed_form():
    a = site.replica_availability(8, failures_per_chip_hour=1e-3, mttr_h=10)
    assert a == pytest.approx((1 / 1.01) ** 8)
    assert site.replica_availability(1, 0.0, 10) == 1.0


def test_default_failure_rate_is_the_llama3_derivation():
    # 419 unexpected interruptions over 54 days on 16,384 GPUs (hardware_and_data.md §5.1)
    rate = value("availability", "failures_per_chip_hour")
    assert rate.value == pytest.approx(419 / (16_384 * 54 * 24), rel=1e-4) and rate.source
    assert value("availability", "mttr_h").assumed  # no published serving repair time


def test_seasonal_pue_range_provisions_at_peak():
    assert site.pue_for(1.08, None) == (1.08, 1.08)
    peak, avg = site.pue_for(1.0, (1.05, 1.15))
    assert peak == 1.15 and avg == pytest.approx(1.10)


@pytest.mark.parametrize("call", [
    lambda: site.rack_layout(2000, 500, 8, 72, 15e3, 8),  # one 20 kW server over a 15 kW rack
    lambda: site.pue_for(0.9, None),
    lambda: site.pue_for(1.08, (1.2, 1.1)),
    lambda: site.replicas_for_demand(-1, 1, site.rack_layout(1, 0, 1, 1, 10, 1), 1, 0),
])
def test_bad_inputs_are_user_errors(call):
    with pytest.raises(UserError):
        call()


def test_defaults_are_sourced_or_assumed_for_every_catalog_family():
    for name in ("h100-sxm", "b200", "gb200", "mtia-400", "mtia-450", "mtia-500", "mtia-v2", "tpu7x"):
        rd = rack_defaults(load_chip(name))
        assert set(rd.provenance) == {"host_overhead_w_per_chip", "chips_per_server", "chips_per_rack",
                                      "rack_power_limit_w"}
        for v in rd.provenance.values():
            assert (v.source is None) != (v.assumed is None)
    # the sourced derivations: DGX H100 and DGX B200 overhead per GPU (hardware_and_data.md §6.3)
    assert rack_defaults(load_chip("h100-sxm")).host_overhead_w_per_chip == pytest.approx(10_200 / 8 - 700)
    assert rack_defaults(load_chip("b200")).host_overhead_w_per_chip == pytest.approx(14_300 / 8 - 1000, abs=5)
    assert math.isclose(value("site", "pue").value, 1.08)
