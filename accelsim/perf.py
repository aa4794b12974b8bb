"""Operator time on a chip: compute and memory terms with efficiency curves, collectives over the
scale-up fabric, and a fixed per-kernel overhead. Vectorised: chips are arrays (`HwVec`) that
broadcast against the operators' shape arrays, so a whole sweep is one NumPy evaluation.

Time of one operator call:
    t = max(flops / (peak * eff_c), bytes / (bw * eff_m)) + comm_bytes / (link_bw * eff_net)
        + comm_steps * link_latency + kernel_overhead
with the efficiencies given by an `Efficiency` model: `Analytical` (documented curves below, the
software-stack factors in `accelsim/data/stacks.toml`), `Roofline` (all ones, no overheads), or a
calibrated profile (accelsim.calibrate).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

import numpy as np

from accelsim.gather import gather_params, gather_time_s
from accelsim.ops import COLLECTIVES, F, Op, OpKind
from accelsim.power import dvfs_exponent, sustained_clock_fraction
from accelsim.spec.chip import DTYPES, Chip


class Fidelity(StrEnum):
    """How a number was obtained, from least to most grounded in measurement."""

    ROOFLINE = "roofline"  # datasheet peaks only
    ANALYTICAL = "analytical"  # peaks x documented efficiency curves x software-stack factor
    PROJECTED = "projected"  # curves calibrated on other chips, carried to this one, with a measured band
    CALIBRATED = "calibrated"  # efficiencies fitted to measured kernels
    MEASURED = "measured"  # a measurement, not a prediction


# What bounds a step: the largest term of its time (`Cost.bound`).
Bound = Literal["compute", "memory", "communication", "overhead"]
BOUNDS: tuple[Bound, ...] = ("compute", "memory", "communication", "overhead")


@dataclass(frozen=True)
class HwVec:
    """Chip parameters as arrays of shape `shape` (broadcastable against operator arrays)."""

    names: tuple[str, ...]
    peak: dict[str, F]  # dtype -> FLOP/s (after the chip's format fallback)
    mem_bw: F
    scale_up_bw: F  # per direction
    scale_up_domain: F
    scale_out_bw: F
    tdp_w: F
    idle_w: F
    # on-chip SRAM and how the memory system serves random rows (accelsim.gather, assumed values)
    sram_bytes: F = field(default_factory=lambda: np.zeros(()))
    sram_bw: F = field(default_factory=lambda: np.full((), np.inf))
    gather_latency_s: F = field(default_factory=lambda: np.full((), 600e-9))
    gather_inflight: F = field(default_factory=lambda: np.full((), np.inf))
    gather_request_bytes: F = field(default_factory=lambda: np.full((), 64.0))
    gather_granule_bytes: F = field(default_factory=lambda: np.full((), 64.0))

    @classmethod
    def from_chips(cls, chips: Sequence[Chip], shape: tuple[int, ...] | None = None) -> HwVec:
        shape = shape or (len(chips),)
        arr = lambda xs: np.asarray(list(xs), dtype=np.float64).reshape(shape)
        gp = [gather_params(c) for c in chips]
        return cls(
            names=tuple(c.name for c in chips),
            peak={d: arr(c.flops(d) for c in chips) for d in DTYPES},
            mem_bw=arr(c.mem_bw_bytes_per_s for c in chips),
            # catalog fabric figures are bidirectional totals; a ring sends one way at a time
            scale_up_bw=arr(c.scale_up_bw_bytes_per_s / 2 for c in chips),
            scale_up_domain=arr(c.scale_up_domain_size for c in chips),
            scale_out_bw=arr(c.scale_out_bw_bytes_per_s for c in chips),
            tdp_w=arr(c.tdp_w for c in chips),
            idle_w=arr(c.idle_w for c in chips),
            sram_bytes=arr(c.sram_bytes or 0.0 for c in chips),
            sram_bw=arr(c.sram_bw_bytes_per_s or np.inf for c in chips),
            gather_latency_s=arr(g.latency_s for g in gp),
            gather_inflight=arr(g.inflight for g in gp),
            gather_request_bytes=arr(g.request_bytes for g in gp),
            gather_granule_bytes=arr(g.granule_bytes for g in gp),
        )


class Efficiency(Protocol):
    """Fractions of peak an operator reaches; the three arrays broadcast like the op and hw."""

    fidelity: Fidelity
    kernel_overhead_s: float
    link_latency_s: float

    def compute(self, op: Op, hw: HwVec) -> F: ...

    def memory(self, op: Op, hw: HwVec) -> F: ...

    def network(self, op: Op, hw: HwVec) -> F: ...


@dataclass(frozen=True)
class Roofline:
    """Datasheet peaks, perfect overlap, no overheads: an upper bound on performance."""

    fidelity: Fidelity = Fidelity.ROOFLINE
    kernel_overhead_s: float = 0.0
    link_latency_s: float = 0.0

    def compute(self, op: Op, hw: HwVec) -> F:
        return np.ones(())

    def memory(self, op: Op, hw: HwVec) -> F:
        return np.ones(())

    def network(self, op: Op, hw: HwVec) -> F:
        return np.ones(())


@dataclass(frozen=True)
class Analytical:
    """Size-dependent efficiency curves times a software stack's reachable fractions.

    compute:  eff_c = compute_eff * rows / (ceil(rows / tile_rows) * tile_rows)   (GEMMs)
              a tensor unit works on tiles of `tile_rows` token rows; a decode GEMM with 8 rows
              pays for a whole tile. Attention, element-wise and gathers use compute_eff alone.
    memory:   eff_m = memory_eff * bytes / (bytes + bw * ramp_s)
              a transfer must be in flight ~ramp_s (DRAM latency x queue depth) before the full
              bandwidth flows: small transfers never reach it (Little's law).
              Random row gathers (embedding bags) instead take `accelsim.gather.gather_time_s`:
              whole DRAM granules plus `gather_overhead_bytes` of page activation per row, the
              request rate (latency x requests in flight) and hot rows read from SRAM.
    network:  eff_net = network_eff; plus `link_latency_s` per algorithm step.
    The defaults are assumptions stated in `accelsim/data/stacks.toml` with their reasons.
    """

    name: str = "default"
    compute_eff: float = 0.7
    memory_eff: float = 0.8
    network_eff: float = 0.7
    kernel_overhead_s: float = 2e-6
    link_latency_s: float = 2e-6
    tile_rows: int = 64
    ramp_s: float = 1e-6
    gather_overhead_bytes: float = 64.0
    # Per serving step, read by `predict.llm_metrics` (not `cost`): the engine's host time with the
    # chip idle (scheduling, input preparation), and the sampler's memory traffic per logit of every
    # sampled row (`graph.sampler_ops`: top-k/top-p over the vocabulary; 0 = fused into the LM head).
    host_step_s: float = 0.0
    sampler_bytes_per_logit: float = 0.0
    # Fixed time of one fused-MoE layer beyond its operators' (routing/alignment kernels, the grouped
    # GEMMs' serial K loop at few rows per expert), read by `predict.llm_metrics` like the two above.
    moe_layer_latency_s: float = 0.0
    # Whether `--fidelity calibrated` may replace this stack's kernel curves by shipped profiles
    # (`accelsim.efficiency.efficiency_from_args`); false for a stack whose engine terms were fitted
    # with its own curves.
    shipped_profiles: bool = True
    fidelity: Fidelity = Fidelity.ANALYTICAL
    source: str = field(default="", compare=False)

    def compute(self, op: Op, hw: HwVec) -> F:
        if op.kind in (OpKind.GEMM, OpKind.GROUPED_GEMM):
            rows = np.maximum(op.rows, 1.0)
            return self.compute_eff * rows / (np.ceil(rows / self.tile_rows) * self.tile_rows)
        return np.asarray(self.compute_eff)

    def memory(self, op: Op, hw: HwVec) -> F:
        eff = self.memory_eff * op.bytes / (op.bytes + hw.mem_bw * self.ramp_s + 1e-30)
        if not op.gather_bytes:
            return np.maximum(eff, 1e-6)
        # a gather: the efficiency that makes bytes / (bw x eff) its time (its pooled outputs are
        # always written, so bytes > 0 even when every row is a hot row in SRAM)
        t = gather_time_s(op.gather_rows, op.gather_bytes, op.bytes - op.gather_rows * op.gather_bytes,
                          op.sram_bytes, bw=hw.mem_bw, eff=np.maximum(eff, 1e-6), latency_s=hw.gather_latency_s,
                          inflight=hw.gather_inflight, request_bytes=hw.gather_request_bytes,
                          granule_bytes=hw.gather_granule_bytes, sram_bw=hw.sram_bw,
                          activation_bytes=self.gather_overhead_bytes)
        return np.maximum(op.bytes / (hw.mem_bw * np.maximum(t, 1e-30)), 1e-30)

    def network(self, op: Op, hw: HwVec) -> F:
        return np.asarray(self.network_eff)


def engine_term(eff: object, name: str) -> float:
    """A serving-engine term of the software stack under `eff` (`Analytical.host_step_s`,
    `sampler_bytes_per_logit`): calibrated and shipped efficiencies wrap the stack as `base`."""
    while eff is not None:
        if hasattr(eff, name):
            return float(getattr(eff, name))
        eff = getattr(eff, "base", None)
    return 0.0


def fidelity_on(eff: Efficiency, chips: Sequence[Chip]) -> Fidelity:
    """The fidelity of `eff`'s numbers on these chips: an efficiency that resolves per chip (the
    shipped profiles, `calibrate.shipped.ShippedEfficiency.resolve`: calibrated on a measured chip,
    projected on others and on what-if variants, the stack where nothing ships) gives the least
    grounded of theirs; any other efficiency its own `fidelity`."""
    resolve = getattr(eff, "resolve", None)
    if resolve is None or not chips:
        return eff.fidelity
    order = list(Fidelity)
    each = [Fidelity(resolve(c.name).fidelity) for c in chips]
    each = [Fidelity.PROJECTED if f == Fidelity.CALIBRATED and c.what_if else f for f, c in zip(each, chips)]
    return min(each, key=order.index)


def fidelity_mix(labels: Iterable[tuple[str, str]]) -> str:
    """One label for (chip, fidelity) pairs: the fidelity when all agree, else each fidelity with its
    chips, e.g. 'calibrated (h100-sxm, b200); projected (mtia-450)'."""
    by: dict[str, list[str]] = {}
    for chip, fid in labels:
        names = by.setdefault(str(fid), [])
        if chip not in names:
            names.append(chip)
    return "; ".join(f"{f} ({', '.join(n)})" for f, n in by.items()) if len(by) > 1 else next(iter(by), "")


@dataclass(frozen=True)
class Cost:
    """Time of a set of operators (per call of the set), split by what bounds each operator."""

    total_s: F
    compute_s: F  # time of operators whose compute term dominates
    memory_s: F  # time of operators whose memory term dominates
    comm_s: F
    overhead_s: F
    flops: F
    bytes: F
    fidelity: Fidelity

    @property
    def bound(self) -> np.ndarray:
        """'compute', 'memory', 'communication' or 'overhead': the largest share of the time."""
        parts = np.stack(np.broadcast_arrays(self.compute_s, self.memory_s, self.comm_s, self.overhead_s))
        return np.asarray(BOUNDS)[np.argmax(parts, axis=0)]

    def utilisation(self, hw: HwVec, dtype: str) -> tuple[F, F]:
        """Average fraction of peak FLOP/s and of peak bandwidth used over the whole time."""
        t = np.maximum(self.total_s, 1e-30)
        return (np.clip(self.flops / (hw.peak[dtype] * t), 0, 1), np.clip(self.bytes / (hw.mem_bw * t), 0, 1))

    def __add__(self, other: Cost) -> Cost:
        return Cost(*(a + b for a, b in zip(self._arrays(), other._arrays())), fidelity=_min_fid(self, other))

    def scale(self, k: float | F) -> Cost:
        return Cost(*(a * k for a in self._arrays()), fidelity=self.fidelity)

    def _arrays(self) -> tuple[F, ...]:
        return (self.total_s, self.compute_s, self.memory_s, self.comm_s, self.overhead_s, self.flops, self.bytes)


def _min_fid(a: Cost, b: Cost) -> Fidelity:
    order = list(Fidelity)
    return min(a.fidelity, b.fidelity, key=order.index)


def link_bw(op: Op, hw: HwVec) -> F:
    """Per-direction bandwidth a collective's group uses: the scale-up fabric when the group fits
    in one scale-up domain, the scale-out network otherwise."""
    return np.where(op.group <= hw.scale_up_domain, hw.scale_up_bw, hw.scale_out_bw)


def op_times(op: Op, hw: HwVec, eff: Efficiency) -> tuple[F, F, F, F]:
    """(compute_s, memory_s, comm_s, overhead_s) of one call of `op` on each chip of `hw`."""
    t_c = op.flops / (hw.peak[op.dtype] * eff.compute(op, hw))
    t_m = op.bytes / (hw.mem_bw * eff.memory(op, hw))
    t_net = np.zeros(())
    if op.kind in COLLECTIVES and op.group > 1:
        t_net = op.comm_bytes / (link_bw(op, hw) * eff.network(op, hw)) + op.comm_steps * eff.link_latency_s
    return t_c, t_m, t_net, np.asarray(eff.kernel_overhead_s)


def cost(ops: Iterable[Op], hw: HwVec, eff: Efficiency) -> Cost:
    """Sum of `calls x time` over the operators (executed one after another). An efficiency with
    `sustained = True` (kernels timed in short bursts, run back to back for minutes) has the step's
    compute-bound time stretched by the clock the chip holds at these utilisations under its power
    limit (`power.sustained_clock_fraction`)."""
    total = comp = mem = comm = over = flops = nbytes = t_peak_c = t_peak_m = np.zeros(())
    for op in ops:
        t_c, t_m, t_net, t_o = op_times(op, hw, eff)
        k = op.calls
        roof = np.maximum(t_c, t_m)
        is_c = t_c >= t_m
        comp = comp + k * np.where(is_c, roof, 0.0)
        mem = mem + k * np.where(is_c, 0.0, roof)
        comm = comm + k * t_net
        over = over + k * t_o
        total = total + k * (roof + t_net + t_o)
        flops = flops + k * op.flops
        nbytes = nbytes + k * op.bytes
        t_peak_c = t_peak_c + k * op.flops / hw.peak[op.dtype]
        t_peak_m = t_peak_m + k * op.bytes / hw.mem_bw
    if getattr(eff, "sustained", False):
        busy = np.maximum(comp + mem, 1e-30)
        s = sustained_clock_fraction(t_peak_c / busy, t_peak_m / busy, dvfs_exponent())
        total = total + comp * (1.0 / s - 1.0)
        comp = comp / s
    return Cost(total, comp, mem, comm, over, flops, nbytes, eff.fidelity)
