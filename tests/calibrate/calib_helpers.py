"""Synthetic measurements from known efficiency curves, for the calibration tests.

The generating time formula is written out here on its own (not taken from accelsim.calibrate.fit),
so a fit that recovers these parameters is checked against an independent statement of the model.
FLOPs and bytes come from accelsim.ops, the project's single operator count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from accelsim import measurements as M
from accelsim import ops as O

PEAKS = {"fp32": 50e9, "bf16": 100e9}  # FLOP/s of the synthetic CPU
BW = 20e9  # bytes/s
DEVICE = "cpu:Synthetic test CPU (1 thread)"
# (e_c, e_m, t0_s, r_half) per class: what the fit should find
TRUE = {
    "gemm": (0.8, 0.4, 20e-6, 6.0),  # the memory term binds at m <= 2, the row term shows above
    "grouped_gemm": (0.6, 0.3, 60e-6, 4.0),
    "elementwise": (1.0, 0.7, 8e-6, 0.0),
}
# per-config time multipliers (a kernel config that is slower or faster at every shape)
CONFIGS = {32: 1.3, 64: 1.0, 128: 1.15}  # BLOCK_M -> time factor


def true_time(cls: str, flops: float, nbytes: float, dtype: str, rows: float) -> float:
    e_c, e_m, t0, r_half = TRUE[cls]
    t_c = flops / PEAKS[dtype] * (1.0 + r_half / max(rows, 1.0)) / e_c
    return max(t_c, nbytes / BW / e_m) + t0


def _row(op: O.Op, shape: dict[str, Any], t: float, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A schema row as `measurements.read` returns it (shape and config decoded)."""
    r = M.row(op=str(op.kind), name=op.name, dtype=op.dtype, shape=shape, config=config or {},
                 flops=float(op.flops), bytes=float(op.bytes), median_s=t, p20_s=t * 0.98, p80_s=t * 1.02, reps=7,
                 device=DEVICE, device_kind="cpu", compute_capability="", driver="synthetic", torch_version="",
                 triton_version="", git_commit="test", date_utc="2026-01-01T00:00:00Z", tool="tests")
    return {**r, "shape": json.loads(r["shape"]), "config": json.loads(r["config"]) if r["config"] else {}}


def synthetic_rows(noise: float = 0.03, seed: int = 0, configs: bool = False) -> list[dict[str, Any]]:
    """Rows of a synthetic CPU: GEMMs (fp32, bf16), grouped GEMMs, copies, and the chip-defining
    peak rows; times from TRUE with multiplicative log-normal noise of `noise` (sigma of ln t)."""
    rng = np.random.default_rng(seed)
    jitter = lambda: float(np.exp(rng.normal(0.0, noise)))
    rows = []
    for dtype in ("fp32", "bf16"):
        b = 4.0 if dtype == "fp32" else 2.0
        for n, k in ((512, 512), (1024, 1024), (2048, 512)):
            for m in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024):
                op = O.gemm("matmul", m, n, k, dtype=dtype, a_bytes=b, w_bytes=b, out_bytes=b)
                shape = {"m": m, "n": n, "k": k}
                for block, scale in (CONFIGS.items() if configs else [(0, 1.0)]):
                    t = true_time("gemm", float(op.flops), float(op.bytes), dtype, m) * scale * jitter()
                    rows.append(_row(op, shape, t, {"BLOCK_M": block, "num_warps": 4} if block else None))
        s = 2048  # chip-defining rows: their rate is the peak by definition
        op = O.gemm("matmul_peak", s, s, s, dtype=dtype, a_bytes=b, w_bytes=b, out_bytes=b)
        rows.append(_row(op, {"m": s, "n": s, "k": s}, float(op.flops) / PEAKS[dtype]))
    for experts in (4, 16):
        for tokens in (16, 64, 256, 1024, 4096):
            op = O.grouped_gemm("grouped_mm", tokens, 512, 256, experts, dtype="bf16", a_bytes=2, w_bytes=2,
                                out_bytes=2)
            t = true_time("grouped_gemm", float(op.flops), float(op.bytes), "bf16", tokens / experts) * jitter()
            rows.append(_row(op, {"tokens": tokens, "n": 512, "k": 256, "experts": experts}, t))
    for elems in (2**16, 2**18, 2**20, 2**22, 2**24, 2**25):
        op = O.elementwise("copy", elems, dtype="fp32", bytes_per_elem=8.0, flops_per_elem=0.0)
        t = true_time("elementwise", 0.0, float(op.bytes), "fp32", np.inf) * jitter()
        rows.append(_row(op, {"elems": elems}, t))
    op = O.elementwise("copy_peak", 2**26, dtype="fp32", bytes_per_elem=8.0, flops_per_elem=0.0)
    rows.append(_row(op, {"elems": 2**26}, float(op.bytes) / BW))
    return rows


def write_synthetic(path: Path, **kwargs: Any) -> Path:
    M.write(path, synthetic_rows(**kwargs))
    return path
