"""Rack and site arithmetic: pure functions of numbers, no performance model.

Chain (per accelerator slot, then replicas, then racks):
    slot_w      = chip_w (TDP, or the cap) + host_overhead_w_per_chip          server share per chip
    chips/rack  = min(chips_per_rack, floor(rack_limit / (slot_w * chips_per_server)) * chips_per_server)
    replica     = the chips one model copy needs (tp x pp for an LLM, the table-sharding group for ranking)
    racks       = ceil(replicas / floor(chips/rack / replica))   when a replica fits in a rack
                = replicas * ceil(replica / chips/rack)          otherwise (a replica spans racks)
    IT power    = replicas * replica * slot_w;  facility = IT x PUE (the peak PUE when a range is given)
Site budget -> replicas = the most whole replicas whose facility power stays within the budget.
Demand -> replicas = the fewest whole replicas with
    replicas * replica * rate_per_chip * availability >= demand * (1 + headroom)
Availability of a replica of n chips: A = (1 / (1 + failures_per_chip_hour * mttr_h)) ** n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from accelsim.errors import UserError
from accelsim.power import server_power_w

# Slack for float round-off when a budget is exactly the power of a whole number of replicas
# (planning a demand, then asking what that site holds, must give the same replicas back).
_REL_EPS = 1e-12


@dataclass(frozen=True)
class RackLayout:
    slot_w: float  # provisioned power per accelerator slot (chip + host overhead), W
    chips_per_rack: int  # after the rack power limit (whole servers)
    nominal_chips_per_rack: int
    rack_limit_binds: bool
    replica_chips: int
    replicas_per_rack: int  # >= 1 when a replica fits in one rack, else 0
    racks_per_replica: int  # >= 1 when a replica spans racks, else 0

    @property
    def replica_w(self) -> float:
        return self.replica_chips * self.slot_w

    @property
    def rack_power_w(self) -> float:
        """Provisioned power of a full rack as laid out (whole replicas)."""
        if self.replicas_per_rack:
            return self.replicas_per_rack * self.replica_w
        return self.replica_w / self.racks_per_replica

    def racks(self, replicas: int) -> int:
        if self.replicas_per_rack:
            return -(-replicas // self.replicas_per_rack)
        return replicas * self.racks_per_replica


def rack_layout(chip_w: float, host_overhead_w_per_chip: float, chips_per_server: int, chips_per_rack: int,
                rack_power_limit_w: float, replica_chips: int) -> RackLayout:
    """How many chips a rack holds under its power limit, and how replicas sit in racks.

    Raises UserError when not even one server fits under the rack limit."""
    if min(chip_w, rack_power_limit_w) <= 0 or host_overhead_w_per_chip < 0:
        raise UserError("chip power and rack power limit must be > 0, host overhead >= 0")
    if min(chips_per_server, chips_per_rack, replica_chips) < 1:
        raise UserError("chips per server, chips per rack and replica size must be >= 1")
    slot = float(server_power_w(chip_w, host_overhead_w_per_chip))
    servers = math.floor(rack_power_limit_w * (1 + _REL_EPS) / (slot * chips_per_server))
    if servers < 1:
        raise UserError(f"one server of {chips_per_server} chips at {slot:,.0f} W per slot draws "
                        f"{slot * chips_per_server:,.0f} W, over the rack limit of {rack_power_limit_w:,.0f} W")
    per_rack = min(chips_per_rack, servers * chips_per_server)
    if replica_chips <= per_rack:
        rpr, rspan = per_rack // replica_chips, 0
    else:
        rpr, rspan = 0, -(-replica_chips // per_rack)
    return RackLayout(slot, per_rack, chips_per_rack, per_rack < chips_per_rack, replica_chips, rpr, rspan)


def replicas_in_budget(it_budget_w: float, layout: RackLayout) -> int:
    """The most whole replicas whose provisioned IT power fits in `it_budget_w`."""
    if it_budget_w < 0:
        raise UserError(f"site power must be >= 0, got {it_budget_w:g} W")
    return math.floor(it_budget_w * (1 + _REL_EPS) / layout.replica_w)


def replicas_for_demand(demand: float, rate_per_chip: float, layout: RackLayout, availability: float,
                        headroom: float) -> int:
    """The fewest whole replicas that serve `demand` x (1 + headroom) with the expected share
    `availability` of them up. `demand` and `rate_per_chip` share a unit (tokens/s or samples/s)."""
    if demand < 0:
        raise UserError(f"demand must be >= 0, got {demand:g}")
    if not rate_per_chip > 0:
        raise UserError("the chip serves nothing at this operating point (rate 0)")
    need = demand * (1 + headroom) / (rate_per_chip * layout.replica_chips * availability)
    return math.ceil(need * (1 - _REL_EPS))


def replica_availability(replica_chips: int, failures_per_chip_hour: float, mttr_h: float) -> float:
    """Steady-state share of time a replica of n chips is up (all n up; independent chips)."""
    if failures_per_chip_hour < 0 or mttr_h < 0:
        raise UserError("failure rate and repair time must be >= 0")
    return (1.0 / (1.0 + failures_per_chip_hour * mttr_h)) ** replica_chips


def pue_for(pue: float, pue_range: tuple[float, float] | None) -> tuple[float, float]:
    """(PUE to provision with, PUE for average energy). With a seasonal range (lo, hi) the site
    must hold in the worst season (hi); energy over a year uses the midpoint."""
    if pue_range is None:
        if not 1.0 <= pue <= 3.0:
            raise UserError(f"--pue must be in [1, 3], got {pue:g}")
        return pue, pue
    lo, hi = pue_range
    if not 1.0 <= lo <= hi <= 3.0:
        raise UserError(f"--pue-range must be LO,HI with 1 <= LO <= HI <= 3, got {lo:g},{hi:g}")
    return hi, (lo + hi) / 2
