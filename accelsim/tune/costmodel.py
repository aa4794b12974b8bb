"""Analytical tile-level cost model of the fused-MoE kernel: ranks every candidate config.

Per grouped GEMM (FLOPs and bytes from `accelsim.ops.fused_moe_ops`, chip peaks from
`accelsim.spec.load_chip`, SM limits from `space.DeviceLimits`):

  compute_s  = padded FLOPs / (peak * mma_eff(BLOCK_SIZE_M) * wave_eff)
               padded: each active expert's expected rows rounded up to BLOCK_SIZE_M and N to
               BLOCK_SIZE_N; wave_eff = tiles / (waves * SMs * programs per SM)
  memory_s   = bytes / min(peak bandwidth, programs in flight * bytes in flight / latency)
               (Little's law: num_stages - 1 K-steps of A and B tiles per program in flight)
  overhead_s = waves * 2 * latency (pipeline fill and epilogue of each wave)
  t = sum over GEMMs of max(a * compute_s, b * memory_s) + e * min(a * compute_s, b * memory_s)
      + c * overhead_s, plus d * fixed_s (the combine, launches, routing: the same for every config);
      e starts at OVERLAP (compute and loads never overlap perfectly), the others at 1

Programs per SM come from shared memory, warps and accumulator registers. The factors
(a, b, c, d, e) are refit per shape by least squares on log time from what has been measured
(`fit_factors`); what they leave unexplained is fitted as one multiplicative correction per
(config key, value) by ridge least squares (`fit_main_effects`). Together these are the
model-guided strategy's "correction". The model is deliberately coarse: expected routing (no
sampled imbalance), no L2 model (GROUP_SIZE_M is invisible to it), no register spills; the
corrections and the search's local moves cover what it cannot see.
Fidelity: analytical; the assumed constants below are marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from accelsim.ops import expected_experts_hit, fused_moe_ops
from accelsim.tune.space import DeviceLimits, Problem, accumulator_regs, smem_bytes

DRAM_LATENCY_S = 800e-9  # assumed: loaded HBM latency seen by a Hopper SM, order of magnitude
LAUNCH_S = 4e-6  # assumed: one kernel launch plus the routing/alignment torch ops, per kernel
BASE_REGS = 32  # assumed: registers per thread besides the accumulator (addresses, loop state)
OVERLAP = 0.1  # assumed: fraction of the shorter of compute and memory time that is not hidden
_CHIP_DTYPE = {"bf16": "bf16", "fp16": "bf16", "fp32": "fp32", "fp8": "fp8", "fp8_block": "fp8"}
N_FACTORS = 5
START = np.array([1.0, 1.0, 1.0, 1.0, OVERLAP])


def mma_efficiency(block_m: np.ndarray) -> np.ndarray:
    """Assumed fraction of tensor-core peak a tile of BLOCK_SIZE_M rows reaches: Hopper's wgmma
    works on 64-row warpgroup tiles, smaller tiles fall back to narrower MMAs (0.35 at 16 rows)."""
    return np.clip(block_m / 128.0, 0.125, 1.0) ** 0.5


@dataclass(frozen=True)
class Terms:
    """Per-config model terms in seconds, each of shape [configs, 2] (GEMM 1, GEMM 2), and the
    config-independent fixed_s (scalar)."""

    compute_s: np.ndarray
    memory_s: np.ndarray
    overhead_s: np.ndarray
    fixed_s: float

    def predict(self, factors: np.ndarray | None = None) -> np.ndarray:
        a, b, c, d, e = START if factors is None else np.asarray(factors, dtype=float)
        comp, mem = a * self.compute_s, b * self.memory_s
        per_gemm = np.maximum(comp, mem) + e * np.minimum(comp, mem) + c * self.overhead_s
        return per_gemm.sum(axis=1) + d * self.fixed_s

    def take(self, idx: np.ndarray) -> Terms:
        return Terms(self.compute_s[idx], self.memory_s[idx], self.overhead_s[idx], self.fixed_s)


def occupancy(arrays: dict[str, np.ndarray], elem_bytes: int, limits: DeviceLimits) -> np.ndarray:
    """Programs resident per SM, limited by shared memory, warps, registers and the block cap."""
    smem = np.maximum(smem_bytes(arrays, elem_bytes), 1)
    warps = arrays["num_warps"]
    regs = (accumulator_regs(arrays) + BASE_REGS) * 32 * warps
    slots = np.minimum.reduce([
        limits.smem_per_sm_bytes // smem,
        limits.max_warps_per_sm // warps,
        limits.regs_per_sm // np.maximum(regs, 1),
        np.full_like(warps, limits.max_blocks_per_sm),
    ])
    return np.maximum(slots, 1)


def model_terms(problem: Problem, arrays: dict[str, np.ndarray], limits: DeviceLimits,
                peak_flops: float, mem_bw: float) -> Terms:
    """The model's terms for every config in ``arrays`` (see module doc)."""
    eb = problem.elem_bytes
    e, h, i, k, m = problem.experts, problem.hidden, problem.inter, problem.top_k, problem.m
    ops = fused_moe_ops(m, h, i, e, k, act_bytes=eb, weight_bytes=eb, dtype=_CHIP_DTYPE[problem.dtype])
    active = float(expected_experts_hit(m, e, k))
    rows = problem.pairs / max(active, 1.0)
    bm, bn, bk = arrays["BLOCK_SIZE_M"], arrays["BLOCK_SIZE_N"], arrays["BLOCK_SIZE_K"]
    m_tiles = active * np.ceil(rows / bm)
    slots = occupancy(arrays, eb, limits)
    concurrent = limits.sm_count * slots
    inflight = np.maximum(arrays["num_stages"] - 1, 1) * (bm + bn) * bk * eb  # 1 stage: one K-step, unhidden
    mma = mma_efficiency(bm)
    cols = []
    # GEMM 1 tiles BLOCK_SIZE_N columns of the stacked [gate; up] (2I wide) over K = H;
    # GEMM 2 tiles BLOCK_SIZE_N of H over K = I.
    for op, n_total, k_dim in ((ops[0], 2 * i, h), (ops[1], h, i)):
        tiles = m_tiles * np.ceil(n_total / bn)
        padded_flops = tiles * 2.0 * bm * bn * k_dim
        waves = np.ceil(tiles / concurrent)
        wave_eff = tiles / (waves * concurrent)
        compute = padded_flops / (peak_flops * mma * wave_eff)
        in_flight = np.minimum(tiles, concurrent)
        bw = np.minimum(mem_bw, in_flight * inflight / DRAM_LATENCY_S)
        memory = float(op.bytes) / bw
        overhead = waves * 2 * DRAM_LATENCY_S
        cols.append((compute, memory, overhead))
    stack = lambda j: np.stack([cols[0][j], cols[1][j]], axis=1)
    fixed = float(ops[2].bytes) / mem_bw + 3 * LAUNCH_S
    return Terms(stack(0), stack(1), stack(2), fixed)


class CostModel:
    """The model for one problem on one device; ``predict(arrays, factors)`` -> seconds per call."""

    def __init__(self, problem: Problem, limits: DeviceLimits, chip: object) -> None:
        self.problem = problem
        self.limits = limits
        self.peak_flops = float(chip.flops(_CHIP_DTYPE[problem.dtype]))  # type: ignore[attr-defined]
        self.mem_bw = float(chip.mem_bw_bytes_per_s)  # type: ignore[attr-defined]

    def terms(self, arrays: dict[str, np.ndarray]) -> Terms:
        return model_terms(self.problem, arrays, self.limits, self.peak_flops, self.mem_bw)


def fit_factors(terms: Terms, measured_s: np.ndarray, prior_weight: float = 0.3,
                start: np.ndarray | None = None) -> np.ndarray:
    """Least-squares fit of the five multiplicative factors (a, b, c, d, e) on log time.

    A ridge term ``prior_weight * log(factor / start)`` pulls each factor toward its start (the
    unfitted model),
    so a handful of measurements moves the model only as far as they support. Factors are bounded
    to [1e-2, 1e2]. measured_s: seconds, same order as ``terms`` rows; needs >= 1 point."""
    y = np.log(np.asarray(measured_s, dtype=float))
    if y.size == 0:
        return START.copy()
    theta0 = np.zeros(N_FACTORS) if start is None else np.log(np.asarray(start) / START)
    prior = np.sqrt(prior_weight)

    def residual(theta: np.ndarray) -> np.ndarray:
        pred = terms.predict(START * np.exp(theta))
        return np.concatenate([np.log(pred) - y, prior * theta])

    bound = np.log(100.0)
    sol = least_squares(residual, np.clip(theta0, -bound, bound), bounds=(-bound, bound), loss="soft_l1",
                        f_scale=0.1)
    return START * np.exp(sol.x)


def one_hot(arrays: dict[str, np.ndarray], levels: dict[str, list[int]]) -> np.ndarray:
    """[configs, sum of levels] indicator matrix: one column per (config key, value)."""
    cols = [(arrays[k][:, None] == np.asarray(v)[None, :]) for k, v in levels.items()]
    return np.concatenate(cols, axis=1).astype(float)


def fit_main_effects(x_measured: np.ndarray, log_residual: np.ndarray, ridge: float = 2.0) -> np.ndarray:
    """Ridge least squares of log(measured / model) on per-(key, value) indicators.

    Each coefficient is the log of a multiplicative correction for one value of one key (say
    BLOCK_SIZE_N = 32 runs 15% slower than the model thinks); the ridge keeps unmeasured values
    at 0 (no correction) and shrinks effects supported by few points. Returns the coefficients."""
    p = x_measured.shape[1]
    lhs = x_measured.T @ x_measured + ridge * np.eye(p)
    return np.linalg.solve(lhs, x_measured.T @ log_residual)
