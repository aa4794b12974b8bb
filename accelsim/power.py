"""Chip power from activity: between idle and TDP, never above TDP.

    P = idle + (TDP - idle) * min(1, W_COMPUTE * u_compute + W_MEMORY * u_memory)

u_compute and u_memory are the average fractions of peak FLOP/s and peak bandwidth a step uses.
The weights are assumptions set against published observations (hardware_and_data.md §6.4):
prefill (u_c ~0.7) draws about TDP; small-batch decode (u_m ~0.8, u_c ~0.02) draws 0.3-0.45 TDP
(H200: 137-300 W of 700 W); large-batch decode approaches 0.8-0.95 TDP.

Beyond the chip (for `accelsim.plan`): a power cap as lowered clocks (`capped_chip`), the server
slot (chip + host overhead per chip) and the facility (IT load x PUE).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from accelsim.spec.chip import Chip

W_COMPUTE = 1.3
W_MEMORY = 0.45


def activity(u_compute: ArrayLike, u_memory: ArrayLike) -> np.ndarray:
    return np.clip(W_COMPUTE * np.asarray(u_compute) + W_MEMORY * np.asarray(u_memory), 0.0, 1.0)


def chip_power_w(idle_w: ArrayLike, tdp_w: ArrayLike, u_compute: ArrayLike, u_memory: ArrayLike) -> np.ndarray:
    idle, tdp = np.asarray(idle_w), np.asarray(tdp_w)
    return idle + (tdp - idle) * activity(u_compute, u_memory)


# -- beyond the chip: capping, servers, facilities (used by accelsim.plan) ----------------------------


def clock_fraction_at_cap(idle_w: ArrayLike, tdp_w: ArrayLike, cap_w: ArrayLike, exponent: float) -> np.ndarray:
    """Clock fraction s in (0, 1] at which a chip's full-activity power meets `cap_w`.

    A cap is met by lowering clocks; dynamic power ~ f V^2 with V ~ f gives
        P(s) = idle + (TDP - idle) * s**exponent,   so   s = ((cap - idle) / (TDP - idle)) ** (1 / exponent)
    A cap at or above TDP leaves s = 1. Raises ValueError for a cap at or below idle power.
    """
    idle, tdp, cap = np.asarray(idle_w, float), np.asarray(tdp_w, float), np.asarray(cap_w, float)
    if np.any(cap <= idle):
        raise ValueError("a power cap must be above the chip's idle power")
    return np.minimum(1.0, (np.minimum(cap, tdp) - idle) / (tdp - idle)) ** (1.0 / exponent)


def capped_chip(chip: Chip, cap_w: float, exponent: float | None = None) -> Chip:
    """The chip under a power cap: every FLOP rate x s (`clock_fraction_at_cap`), TDP -> cap.

    Memory bandwidth is unchanged (HBM runs on its own clock). `Chip.scaled` scales idle power with
    TDP, so a capped chip idles slightly lower than the real part would (optimistic at low load).
    `exponent` defaults to `power_cap.dvfs_exponent` in accelsim/plan/defaults.toml (assumed 3).
    Raises UserError for a cap at or below idle power. A cap at or above TDP returns the chip.
    """
    from accelsim.errors import UserError

    if cap_w >= chip.tdp_w:
        return chip
    if exponent is None:
        from accelsim.plan.defaults import value

        exponent = value("power_cap", "dvfs_exponent").value
    if not cap_w > chip.idle_w:
        raise UserError(f"power cap {cap_w:g} W must be above {chip.name}'s idle power {chip.idle_w:g} W")
    s = float(clock_fraction_at_cap(chip.idle_w, chip.tdp_w, cap_w, exponent))
    return chip.scaled(flops=s, tdp=cap_w / chip.tdp_w)


def server_power_w(chip_w: ArrayLike, host_overhead_w_per_chip: ArrayLike) -> np.ndarray:
    """Power per accelerator slot of a server: the chip plus its share of hosts, NICs, switches, fans."""
    return np.asarray(chip_w, float) + np.asarray(host_overhead_w_per_chip, float)


def facility_power_w(it_power_w: ArrayLike, pue: ArrayLike) -> np.ndarray:
    """Facility power drawn for an IT load: PUE = facility / IT (cooling, conversion losses)."""
    return np.asarray(it_power_w, float) * np.asarray(pue, float)
