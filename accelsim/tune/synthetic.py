"""Synthetic ground truth for the fused-MoE kernel on a made-up H100 ("synthetic-h100").

NOT a measurement. It exists so that search strategies can be compared and tested on a CPU: it
writes replay files (schema `accelsim.measurements`, tool "synthetic-replay", device
"synthetic-h100", device_kind "synthetic") that `replay.ReplayDevice` serves like a GPU. Real GPU
measurements replace it wherever they exist.

It is deliberately a different and more detailed model than `costmodel` (the `model` strategy's
prior), so a strategy cannot win by reproducing its own assumptions:
  - routing is sampled (seeded): per-expert row counts, not expectations;
  - per-SM wave scheduling: full waves plus a tail wave with fewer SMs, per-SM bandwidth cap;
  - L2 reuse from GROUP_SIZE_M: an expert's weight tiles are re-read from DRAM once per group of
    M-blocks it spans, in proportion to how far its weights overflow the L2;
  - pipeline depth vs latency hiding: bytes in flight per program (num_stages - 1 K-steps);
  - register pressure: operand fragments on top of the accumulator; spills slow a program down,
    beyond REG_FAIL the config fails ("out_of_resources"), as ptxas would;
  - seeded multiplicative log-normal noise (NOISE_SIGMA), p20/p80 around the median.
All constants are assumed (order-of-magnitude H100 figures), none are fitted to measurements.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from accelsim.ops import fused_moe_counts
from accelsim.tune.core import Measurement
from accelsim.tune.space import (
    CONFIG_KEYS,
    Config,
    DeviceLimits,
    Problem,
    accumulator_regs,
    config_arrays,
    device_limits,
    m_blocks_launched,
    named_shape,
    prune,
    smem_bytes,
    vllm_space,
)

DEVICE = "synthetic-h100"
TOOL = "synthetic-replay"
NAME = "synthetic_fused_moe_v1"
NOISE_SIGMA = 0.015
ROUTING_SAMPLES = 2
# Assumed micro-architecture (H100-like; peaks as hwmodels/h100-sxm.toml).
PEAK = {"bf16": 989.4e12, "fp16": 989.4e12, "fp32": 66.9e12, "fp8": 1978.9e12, "fp8_block": 1978.9e12}
DRAM_BW = 3.35e12 * 0.92  # achievable fraction of the datasheet bandwidth
L2_BW = 10e12
LATENCY_S = 700e-9
PER_SM_BW = 50e9
L2_USABLE = 0.7
REG_SPILL, REG_FAIL = 255, 320
LAUNCH_S, EARLY_EXIT_S = 4.5e-6, 0.3e-6
_MMA = {16: 0.30, 32: 0.48, 64: 0.78, 128: 0.88, 256: 0.90}


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "little")


def routing_counts(problem: Problem, sample: int) -> np.ndarray:
    """Rows per expert [E] for one seeded routing sample (top_k distinct experts per token)."""
    rng = np.random.default_rng(_seed("routing", problem.shape_json, problem.m, sample))
    ids = np.argpartition(rng.random((problem.m, problem.experts)), problem.top_k - 1, axis=1)
    return np.bincount(ids[:, : problem.top_k].ravel(), minlength=problem.experts)


def _gemm_time(problem: Problem, a: dict[str, np.ndarray], limits: DeviceLimits, counts: np.ndarray,
               n_cols: int, k_dim: int, a_dram_bytes: float, out_cols: int,
               slots: np.ndarray, spill: np.ndarray) -> np.ndarray:
    eb = problem.elem_bytes
    bm, bn, g = (a[k][:, None] for k in ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "GROUP_SIZE_M"))
    blocks_e = -(-counts[None, :] // bm)  # [C, E]
    blocks = blocks_e.sum(axis=1)
    start_e = np.cumsum(blocks_e, axis=1) - blocks_e
    groups_e = np.where(blocks_e > 0, (start_e + blocks_e - 1) // g - start_e // g + 1, 0)
    nt = -(-n_cols // a["BLOCK_SIZE_N"])
    tiles = blocks * nt
    w_e = n_cols * k_dim * eb  # one expert's weights for this GEMM
    p_miss = min(1.0, w_e / (L2_USABLE * limits.l2_bytes))
    b_dram = (np.where(blocks_e > 0, 1 + (groups_e - 1) * p_miss, 0).sum(axis=1)) * w_e
    a_block_bytes = blocks * bm[:, 0] * k_dim * eb
    dram = a_dram_bytes + b_dram + problem.pairs * out_cols * eb
    l2 = (nt - 1) * a_block_bytes + tiles * bn[:, 0] * k_dim * eb - b_dram
    mma = np.vectorize(_MMA.get)(a["BLOCK_SIZE_M"]).astype(float)
    w, area = a["num_warps"], a["BLOCK_SIZE_M"] * a["BLOCK_SIZE_N"]
    mma = mma * np.where((w == 8) & (area <= 64 * 64), 0.85, 1.0) * np.where((w == 4) & (area >= 128 * 128), 0.88, 1.0)
    mma = mma * a["BLOCK_SIZE_K"] / (a["BLOCK_SIZE_K"] + 24)
    tc = 2.0 * a["BLOCK_SIZE_M"] * a["BLOCK_SIZE_N"] * k_dim / (PEAK[problem.dtype] / limits.sm_count * mma) * spill
    inflight = (a["num_stages"] - 1) * (a["BLOCK_SIZE_M"] + a["BLOCK_SIZE_N"]) * a["BLOCK_SIZE_K"] * eb
    dram_tile, l2_tile = dram / np.maximum(tiles, 1), np.maximum(l2, 0) / np.maximum(tiles, 1)
    concurrent = limits.sm_count * slots

    def wave(n: np.ndarray) -> np.ndarray:
        busy = np.minimum(limits.sm_count, n)
        comp = np.ceil(n / limits.sm_count) * tc
        rate = np.minimum.reduce([np.full(n.shape, DRAM_BW), n * inflight / LATENCY_S, busy * PER_SM_BW])
        mem = n * dram_tile / np.maximum(rate, 1.0) + n * l2_tile / L2_BW
        fill = LATENCY_S * (1 + 1 / np.maximum(a["num_stages"] - 1, 1))
        return np.maximum(comp, mem) + 0.12 * np.minimum(comp, mem) + fill

    full, tail = tiles // concurrent, tiles % concurrent
    total = full * wave(concurrent) + np.where(tail > 0, wave(np.maximum(tail, 1)), 0.0)
    empty = (m_blocks_launched(problem, a["BLOCK_SIZE_M"]) - blocks) * nt
    return total + empty * EARLY_EXIT_S / limits.sm_count + LAUNCH_S


def true_times(problem: Problem, configs: Sequence[Config], limits: DeviceLimits | None = None,
               noise: bool = True, noise_seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(median seconds [C], status [C]) of each config; failed configs get NaN and a non-ok status.
    ``noise_seed`` selects another realisation of the measurement noise (0 = the replay files')."""
    limits = limits or device_limits(DEVICE)
    a = config_arrays(configs)
    eb = problem.elem_bytes
    acc = accumulator_regs(a)
    regs = acc + (a["BLOCK_SIZE_M"] + a["BLOCK_SIZE_N"]) * a["BLOCK_SIZE_K"] * eb // (4 * 32 * a["num_warps"]) + 40
    spill = 1 + 1.5 * np.maximum(regs - REG_SPILL, 0) / REG_SPILL
    smem = smem_bytes(a, eb)
    alloc = -(-np.minimum(regs, REG_SPILL) // 8) * 8
    slots = np.maximum(1, np.minimum.reduce([
        limits.smem_per_sm_bytes // np.maximum(smem, 1), 64 // a["num_warps"],
        limits.regs_per_sm // (alloc * 32 * a["num_warps"]), np.full(len(configs), 32)]))
    e, h, i = problem.experts, problem.hidden, problem.inter
    total = np.zeros(len(configs))
    for sample in range(ROUTING_SAMPLES):
        counts = routing_counts(problem, sample)
        t1 = _gemm_time(problem, a, limits, counts, 2 * i, h, problem.m * h * eb, i, slots, spill)
        t2 = _gemm_time(problem, a, limits, counts, h, i, problem.pairs * i * eb, h, slots, spill)
        total += t1 + t2
    total /= ROUTING_SAMPLES
    fixed = 12e-6 + 4e-6 * np.log2(max(e, 2)) / 8 + (problem.pairs * h * eb * 1.5) / DRAM_BW + LAUNCH_S
    total += fixed
    status = np.where(smem > limits.smem_per_block_bytes, "out_of_resources",
                      np.where(regs > REG_FAIL, "out_of_resources", "ok"))
    if noise:
        z = np.array([np.random.default_rng(_seed("noise", noise_seed, problem.shape_json, problem.m,
                                                                  tuple(c.values())))
                      .standard_normal() for c in configs])
        total *= np.exp(NOISE_SIGMA * z)
    total = np.where(status == "ok", total, np.nan)
    return total, status.tolist()


class SyntheticDevice:
    """The synthetic simulator as a Device (no file needed); same numbers as its replay files."""

    timed = True
    synthetic = True

    def __init__(self, limits: DeviceLimits | None = None) -> None:
        self.limits = limits or device_limits(DEVICE)
        self.fingerprint = {"device": DEVICE, "tool": TOOL, "model": NAME}

    def measure(self, problem: Problem, config: Config) -> Measurement:
        t, status = true_times(problem, [config], self.limits)
        if status[0] != "ok":
            return Measurement("out_of_resources", message="synthetic: shared memory or registers exceeded")
        return Measurement("ok", float(t[0]), float(t[0]) * 0.99, float(t[0]) * 1.01, 100)


def replay_rows(problems: Iterable[Problem], limits: DeviceLimits | None = None,
                noise_seed: int = 0) -> list[dict[str, object]]:
    """Measurement rows over each problem's pruned space (failed configs have no row)."""
    from accelsim.measurements import row

    limits = limits or device_limits(DEVICE)
    out: list[dict[str, object]] = []
    for p in problems:
        configs, _ = prune(vllm_space(), p, limits)
        times, status = true_times(p, configs, limits, noise_seed=noise_seed)
        flops, nbytes = fused_moe_counts(p.m, p.hidden, p.inter, p.experts, p.top_k, p.elem_bytes, p.elem_bytes)
        shape = {"E": p.experts, "H": p.hidden, "I": p.inter, "top_k": p.top_k, "M": p.m}
        for cfg, t, s in zip(configs, times, status):
            if s != "ok":
                continue
            out.append(row(op="fused_moe", name=NAME, dtype=p.dtype, shape=shape,
                           config={k: cfg[k] for k in CONFIG_KEYS}, flops=flops, bytes=nbytes,
                           median_s=_r(t), p20_s=_r(t * 0.99), p80_s=_r(t * 1.01), reps=100,
                           device=DEVICE, device_kind="synthetic", tool=TOOL))
    return out


def _r(x: float) -> float:
    return float(f"{x:.6e}")  # 7 significant digits: far below the noise, keeps files small


def write_replay(path: str | Path, shapes: Sequence[str], batch_sizes: Sequence[int], dtype: str = "bf16") -> int:
    """Write a synthetic replay CSV (deterministic: same inputs, same bytes); returns rows written."""
    from accelsim.measurements import write

    problems = [named_shape(s, m, dtype) for s in shapes for m in batch_sizes]
    return write(path, replay_rows(problems))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic-h100 replay CSV (not measurements).")
    parser.add_argument("--out", required=True)
    parser.add_argument("--shapes", default="mixtral-tp2,scout,deepseek-v3")
    parser.add_argument("--batch-sizes", default="1,2,4,8,16,32,64,128,256,512,1024,2048,4096")
    args = parser.parse_args(argv)
    n = write_replay(args.out, args.shapes.split(","), [int(b) for b in args.batch_sizes.split(",")])
    print(f"wrote {n} synthetic rows to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

