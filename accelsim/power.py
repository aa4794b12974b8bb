"""Chip power from activity and duty cycle: between idle and TDP, never above TDP.

    P = idle + (TDP - idle) * (W_FLOOR + (1 - W_FLOOR) * duty * a),
    a = min(1, W_BUSY + W_COMPUTE * u_compute + W_MEMORY * u_memory)

`idle` is the chip's static floor with no work (`idle_w` in its hwmodels file: what a replica draws
between requests in `accelsim.serve`). A chip that is serving stays clocked up between its kernels:
W_FLOOR of (TDP - idle) above idle. `duty` is the share of wall time the chip spends in working
kernels (`predict.llm_metrics`: the operators' compute- and memory-bound time plus per-sequence
kernels, over the step's wall time); kernel-launch gaps, collective waits and the engine's host
time between steps draw the floor. While working, u_compute and u_memory are the fractions of peak
FLOP/s and of peak bandwidth used on average; W_BUSY is what a working chip draws beyond the floor
with no traffic (SMs and clocks active). `w_floor=0, duty=0` is a chip with nothing to do.

The four weights are fitted on measured serving runs (ML.ENERGY v3.0: vLLM 0.11.1 on H100 SXM,
per-GPU NVML power of 243 runs of 14 dense and MoE models on 1 to 8 GPUs; `accelsim.calibrate.serving`,
run by benchmarks/bench_power.py, which reports the error of each model predicted by weights fitted
without it: median 10.5%, dense 5.7%, MoE 14.3%). They are chip-independent fractions of (TDP - idle):
other chips carry them with their own idle, TDP, peaks and bandwidth. What the fit says: a working chip draws about two
thirds of (TDP - idle) before any traffic; bandwidth adds little on top (W_MEMORY ~0.05) because in
these runs working kernels stream memory at a nearly constant 60-80% of peak, so the memory system's
power is in W_BUSY (the two are nearly collinear here: the split between them is not identified,
their sum is); compute-bound work (u_compute > ~0.4) reaches TDP.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    from accelsim.spec.chip import Chip

# Fitted (module docstring; benchmarks/results/power_summary.csv has the fit and its held-out errors).
W_FLOOR = 0.143
W_BUSY = 0.661
W_COMPUTE = 0.875
W_MEMORY = 0.049


def activity(u_compute: ArrayLike, u_memory: ArrayLike, *, w_busy: float = W_BUSY, w_compute: float = W_COMPUTE,
             w_memory: float = W_MEMORY) -> np.ndarray:
    """Fraction of (TDP - idle) a busy chip draws at these utilisations, in [0, 1]."""
    return np.clip(w_busy + w_compute * np.asarray(u_compute) + w_memory * np.asarray(u_memory), 0.0, 1.0)


def chip_power_w(idle_w: ArrayLike, tdp_w: ArrayLike, u_compute: ArrayLike, u_memory: ArrayLike,
                 duty: ArrayLike = 1.0, *, w_floor: float = W_FLOOR, **weights: float) -> np.ndarray:
    """Average power (W) of a serving chip: utilisations while busy, `duty` = busy time / wall time
    in [0, 1]. Within [idle + W_FLOOR (TDP - idle), TDP]; monotone in duty and both utilisations."""
    idle, tdp = np.asarray(idle_w), np.asarray(tdp_w)
    d = np.clip(np.asarray(duty, dtype=np.float64), 0.0, 1.0)
    return idle + (tdp - idle) * (w_floor + (1 - w_floor) * d * activity(u_compute, u_memory, **weights))


def working_power_w(idle_w: ArrayLike, tdp_w: ArrayLike, peak_flops: ArrayLike, mem_bw: ArrayLike,
                    flops: ArrayLike, nbytes: ArrayLike, busy_s: ArrayLike, wall_s: ArrayLike) -> np.ndarray:
    """Average power of a chip whose kernels do `flops` and move `nbytes` in `busy_s` working seconds
    (compute- and memory-bound kernel time) of a `wall_s` step: utilisations over the working time,
    duty = busy / wall, so launch gaps, collective and host waits draw the floor."""
    busy = np.maximum(np.asarray(busy_s, dtype=np.float64), 1e-30)
    u_c = np.clip(np.asarray(flops) / (np.asarray(peak_flops) * busy), 0, 1)
    u_m = np.clip(np.asarray(nbytes) / (np.asarray(mem_bw) * busy), 0, 1)
    return chip_power_w(idle_w, tdp_w, u_c, u_m, busy / np.maximum(wall_s, 1e-30))


def energy_j(power_w: ArrayLike, time_s: ArrayLike) -> np.ndarray:
    """Energy of drawing `power_w` for `time_s` (the one place power becomes energy)."""
    return np.asarray(power_w, dtype=np.float64) * np.asarray(time_s, dtype=np.float64)


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


def sustained_clock_fraction(u_compute: ArrayLike, u_memory: ArrayLike, exponent: float) -> np.ndarray:
    """Clock fraction s in (0, 1] a chip holds while it runs work at these utilisations (of its full-clock
    peaks) for longer than its power management's window: the activity model above, unclipped, asks for
    idle + (TDP - idle) * D with D = W_FLOOR + (1 - W_FLOOR) * (W_BUSY + W_COMPUTE u_c + W_MEMORY u_m); when
    D > 1 the chip lowers its clock until it draws TDP, s = (1 / D) ** (1 / exponent) (the DVFS law of
    `clock_fraction_at_cap`). Memory-bound work (D <= 1) keeps its clock.

    Seen on one H200 (benchmarks/reference/h200_power_2026-11-30.csv): sustained bf16 GEMMs and long
    prefills held 1,480-1,580 MHz at 690 W against 1,980 MHz at short bursts; memory-bound copies,
    GEMVs and decode steps kept 1,980 MHz below TDP."""
    demand = W_FLOOR + (1 - W_FLOOR) * (W_BUSY + W_COMPUTE * np.asarray(u_compute) + W_MEMORY * np.asarray(u_memory))
    return np.minimum(1.0, 1.0 / np.maximum(demand, 1e-30)) ** (1.0 / exponent)


@functools.cache
def dvfs_exponent() -> float:
    """The DVFS exponent k of accelsim/data/deployment.toml (`power_cap.dvfs_exponent`)."""
    from accelsim.spec.deployment import value

    return float(value("power_cap", "dvfs_exponent").value)


def capped_chip(chip: Chip, cap_w: float, exponent: float) -> Chip:
    """The chip under a power cap: every FLOP rate x s (`clock_fraction_at_cap`), TDP -> cap.

    Memory bandwidth is unchanged (HBM runs on its own clock). `Chip.scaled` scales idle power with
    TDP, so a capped chip idles slightly lower than the real part would (optimistic at low load).
    `exponent`: the DVFS exponent (the planner passes `power_cap.dvfs_exponent` of accelsim/data/deployment.toml).
    Raises UserError for a cap at or below idle power. A cap at or above TDP returns the chip.
    """
    from accelsim.errors import UserError

    if cap_w >= chip.tdp_w:
        return chip
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


def energy_report(fleet: list[tuple[Chip, int]], chip_w_total: float, tokens_per_s: float,
                  fidelity: str) -> dict[str, object]:
    """Accelerator power, facility power and energy per output token of a deployment, each with its
    fidelity. `fleet`: (chip, count) pairs; `chip_w_total`: average accelerator power of all of them.
    Facility = (accelerators + each chip's server share at its provisioned value, the
    `host_overhead_w_per_chip` planning default) x PUE (`site.pue`): an upper bound on the hosts,
    whose load-dependent draw is not modelled."""
    from accelsim.spec.deployment import rack_defaults, value

    host = sum(n * rack_defaults(c).host_overhead_w_per_chip for c, n in fleet)
    pue = value("site", "pue")
    facility = float(facility_power_w(chip_w_total + host, pue.value))
    chips = sum(n for _, n in fleet)
    per_token = (lambda w: w / tokens_per_s) if tokens_per_s > 0 else (lambda w: float("nan"))
    return {
        "gpu_power_w": chip_w_total, "gpu_power_w_per_chip": chip_w_total / max(chips, 1),
        "host_overhead_w": host, "pue": pue.value, "facility_power_w": facility,
        "joules_per_token": per_token(chip_w_total), "facility_joules_per_token": per_token(facility),
        "fidelity": {"gpu_power_w": fidelity, "joules_per_token": fidelity,
                     "facility_power_w": f"{fidelity} + assumed host share and PUE"},
        "sources": {"power_model": "accelsim.power: weights fitted on measured vLLM H100 runs "
                                   "(benchmarks/bench_power.py reports held-out error)",
                    "host_overhead_w_per_chip": {c.name: rack_defaults(c).provenance[
                        "host_overhead_w_per_chip"].to_dict() for c, _ in fleet},
                    "pue": pue.to_dict()},
    }
