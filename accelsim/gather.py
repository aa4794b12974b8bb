"""Random row gathers (embedding bags): what bounds the rows a chip reads per second.

A gather of `rows` random rows of `row_bytes` each, from off-chip memory, takes
    t_bw   = rows * moved / (bw * eff)                  moved = ceil(row / granule) * granule + act
    t_conc = rows * ceil(row / request) * latency / inflight             (Little's law)
    t_sram = sram_bytes / sram_bw                       hot rows served from on-chip SRAM
    t      = max(t_bw, t_conc, t_sram)
`granule` is the DRAM access granularity (a row is rounded up to whole bursts), `act` the bytes of
bandwidth one random row costs in DRAM page activation (the stack's `gather_overhead_bytes`),
`inflight` the requests the chip (with its embedding kernel) keeps outstanding and `request` the
bytes one request covers. Streaming kernels are bandwidth-bound; gathers of small rows hit the
request rate first: on an H100 a 128-byte row needs as many requests as a 512-byte one.

The parameters below are assumptions (per chip where the chip's structure is known, else per
family), each with its reason; `accelsim.perf.HwVec` carries them as arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from accelsim.spec.chip import Chip

F = np.ndarray


@dataclass(frozen=True)
class GatherParams:
    """How a chip's memory system serves random rows (all assumed; see `reason`)."""

    latency_s: float  # loaded off-chip memory latency seen by one request
    inflight: float  # requests outstanding at once, chip-wide
    request_bytes: float  # bytes one request covers (a warp-wide load, a DMA descriptor, a cache line)
    granule_bytes: float  # DRAM access granularity: a row moves whole granules
    reason: str


# HBM3/HBM3e loaded latency ~600 ns is what pointer-chasing microbenchmarks report for H100-class
# parts (idle ~500 ns plus queueing); granule 64 B = one HBM3 pseudo-channel burst (BL8 x 64 bit).
_HBM_LATENCY_S = 600e-9
_HBM_GRANULE = 64.0


def _gpu(sms: int, reason: str) -> GatherParams:
    # an embedding kernel loads one row with a whole warp (FBGEMM's TBE did so for every dim: "all 32
    # threads in a warp load 1 embedding vector", pytorch/FBGEMM PR #1197, whose sub-warp groups for
    # dim <= 32 gained 10-30%); about one row per resident warp is in flight: 64 rows per SM (e.g.
    # 32 resident warps x 2 rows unrolled), one warp-wide 16-B-per-lane load (512 B) per request.
    return GatherParams(_HBM_LATENCY_S, sms * 64.0, 512.0, _HBM_GRANULE, reason)


def _provisioned(bw: float, reason: str) -> GatherParams:
    # a DMA-driven gather engine sized (Little's law) to keep full bandwidth busy with 64 B requests
    return GatherParams(_HBM_LATENCY_S, bw * _HBM_LATENCY_S / _HBM_GRANULE, _HBM_GRANULE, _HBM_GRANULE, reason)


_SM_COUNTS = {  # streaming multiprocessors / compute units enabled (vendor whitepapers)
    "h100-sxm": 132, "h200-sxm": 132, "b200": 148, "gb200": 148, "mi300x": 304, "mi355x": 256,
}


def gather_params(chip: Chip) -> GatherParams:
    """The assumed gather parameters of `chip` (by name when its SM count is known, else family)."""
    if chip.name in _SM_COUNTS:
        n = _SM_COUNTS[chip.name]
        return _gpu(n, f"assumed: {n} SMs/CUs x 64 rows in flight per SM (embedding kernels run at partial "
                       "occupancy), 600 ns loaded HBM latency, 512 B per warp-wide request")
    if chip.family == "cpu":
        return GatherParams(100e-9, 22.0, 64.0, 64.0, "assumed: one core's ~22 outstanding L1 misses (line-fill "
                            "buffers) of 64 B lines, 100 ns loaded DRAM latency")
    if chip.family in ("mtia", "tpu"):
        return _provisioned(chip.mem_bw_bytes_per_s, "assumed: DMA gather engines (MTIA TBE path, TPU SparseCore) "
                            "provisioned to cover bandwidth x latency with 64 B requests")
    return _gpu(132, "assumed: unknown GPU taken as H100-like (132 SMs x 64 rows in flight, 600 ns)")


def moved_bytes_per_row(row_bytes: ArrayLike, granule_bytes: ArrayLike, activation_bytes: float) -> F:
    """Bandwidth one random row costs: whole granules plus the DRAM page activation."""
    g = np.asarray(granule_bytes, dtype=np.float64)
    return np.ceil(np.asarray(row_bytes, dtype=np.float64) / g) * g + activation_bytes


def requests_per_row(row_bytes: ArrayLike, request_bytes: ArrayLike) -> F:
    return np.ceil(np.asarray(row_bytes, dtype=np.float64) / np.asarray(request_bytes, dtype=np.float64))


def gather_terms(rows: ArrayLike, row_bytes: ArrayLike, other_bytes: ArrayLike, sram_bytes: ArrayLike, *,
                 bw: ArrayLike, eff: ArrayLike, latency_s: ArrayLike, inflight: ArrayLike,
                 request_bytes: ArrayLike, granule_bytes: ArrayLike, sram_bw: ArrayLike,
                 activation_bytes: float) -> tuple[F, F, F]:
    """(t_bw, t_conc, t_sram) of a gather (module doc): `rows` off-chip rows of `row_bytes`,
    `other_bytes` streamed (pooled outputs), `sram_bytes` of hot rows read on chip. Broadcasts."""
    rows = np.asarray(rows, dtype=np.float64)
    t_bw = (rows * moved_bytes_per_row(row_bytes, granule_bytes, activation_bytes) + other_bytes) / (
        np.asarray(bw) * np.asarray(eff))
    t_conc = rows * requests_per_row(row_bytes, request_bytes) * np.asarray(latency_s) / np.asarray(inflight)
    t_sram = np.asarray(sram_bytes, dtype=np.float64) / np.asarray(sram_bw)
    return t_bw, t_conc, t_sram


LIMITS = ("bandwidth", "concurrency", "sram")


def gather_time_s(*args: ArrayLike, **kw: ArrayLike | float) -> F:
    """Time of a gather: the largest of `gather_terms` (same arguments)."""
    t_bw, t_conc, t_sram = gather_terms(*args, **kw)  # type: ignore[arg-type]
    return np.maximum(np.maximum(t_bw, t_conc), t_sram)


def gather_limit(*args: ArrayLike, **kw: ArrayLike | float) -> np.ndarray:
    """Which term binds: 'bandwidth', 'concurrency' or 'sram' (same arguments as `gather_terms`)."""
    parts = np.stack(np.broadcast_arrays(*gather_terms(*args, **kw)))  # type: ignore[arg-type]
    return np.asarray(LIMITS)[np.argmax(parts, axis=0)]
