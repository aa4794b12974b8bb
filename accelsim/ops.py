"""The operator vocabulary: each operator computes its FLOPs and bytes here, and only here.

The kernel benchmarks use these counts to report achieved TFLOP/s and TB/s, the performance model
uses them to predict, and calibration compares the two; a second FLOP formula would break the loop.

All shape arguments may be NumPy arrays (broadcast together), so one call builds an operator
for a whole sweep. Counts are per chip and per call; `calls` says how many times a step runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

F = NDArray[np.float64]


class OpKind(StrEnum):
    GEMM = "gemm"
    GROUPED_GEMM = "grouped_gemm"
    ATTN_PREFILL = "attn_prefill"
    ATTN_DECODE = "attn_decode"
    EMBEDDING_BAG = "embedding_bag"
    ALL_REDUCE = "all_reduce"
    ALL_TO_ALL = "all_to_all"
    ELEMENTWISE = "elementwise"


COLLECTIVES = (OpKind.ALL_REDUCE, OpKind.ALL_TO_ALL)


@dataclass(frozen=True)
class Op:
    """One operator invocation on one chip.

    flops: arithmetic work; bytes: off-chip memory traffic; comm_bytes: bytes this chip puts on the
    fabric (collectives); comm_steps: latency-bound hops of the collective algorithm;
    rows: the token/sample dimension (GEMM M), which sets tile utilisation;
    gather_bytes: size of one randomly gathered row (embedding bags), 0 for streaming access;
    gather_rows: rows gathered from off-chip memory (included in `bytes`);
    sram_bytes: hot rows read from on-chip SRAM instead (not in `bytes`; see accelsim.gather);
    dims: the operator's defining dimensions (GEMM m, n, k; ...), the coordinates in which a
    calibrated curve interpolates measured shapes (accelsim.calibrate.fit); () when not given.
    """

    kind: OpKind
    name: str
    dtype: str
    flops: F
    bytes: F
    calls: float = 1.0
    comm_bytes: F = field(default_factory=lambda: np.zeros(()))
    comm_steps: float = 0.0
    group: int = 1
    rows: F = field(default_factory=lambda: np.full((), np.inf))
    gather_bytes: float = 0.0
    gather_rows: F = field(default_factory=lambda: np.zeros(()))
    sram_bytes: F = field(default_factory=lambda: np.zeros(()))
    dims: tuple[F, ...] = ()

    @property
    def intensity(self) -> F:
        """Arithmetic intensity in FLOP per byte of memory traffic."""
        return self.flops / np.maximum(self.bytes, 1.0)


def _f(x: ArrayLike) -> F:
    return np.asarray(x, dtype=np.float64)


def gemm(name: str, m: ArrayLike, n: ArrayLike, k: ArrayLike, *, dtype: str, a_bytes: float,
         w_bytes: float, out_bytes: float, calls: float = 1.0) -> Op:
    """C[m,n] = A[m,k] @ W[k,n]: 2mnk FLOPs; reads A and W once, writes C once."""
    m, n, k = _f(m), _f(n), _f(k)
    return Op(OpKind.GEMM, name, dtype, 2 * m * n * k,
              m * k * a_bytes + k * n * w_bytes + m * n * out_bytes, calls, rows=m, dims=(m, n, k))


def expected_experts_hit(tokens: ArrayLike, experts: int, top_k: int) -> F:
    """Distinct experts a batch touches under uniform top-k routing: E * (1 - (1 - k/E)^tokens)."""
    return experts * (1.0 - (1.0 - top_k / experts) ** _f(tokens))


def grouped_gemm(name: str, tokens: ArrayLike, n: ArrayLike, k: ArrayLike, experts_active: ArrayLike, *,
                 dtype: str, a_bytes: float, w_bytes: float, out_bytes: float, calls: float = 1.0) -> Op:
    """MoE expert GEMMs: `tokens` routed rows (tokens x top_k), each multiplied by its expert's
    W[k, n]; only the `experts_active` experts' weights are read."""
    t, n, k, e = _f(tokens), _f(n), _f(k), _f(experts_active)
    rows_per_expert = t / np.maximum(e, 1.0)
    return Op(OpKind.GROUPED_GEMM, name, dtype, 2 * t * n * k,
              t * k * a_bytes + e * k * n * w_bytes + t * n * out_bytes, calls, rows=rows_per_expert,
              dims=(t, n, k, e))


def attention_prefill(name: str, tokens: ArrayLike, context: ArrayLike, *, heads: float, qk_dim: float,
                      v_dim: float, kv_elems_per_token: float, dtype: str, act_bytes: float,
                      kv_bytes: float, calls: float = 1.0) -> Op:
    """Flash-style attention for `tokens` new queries, each attending to `context` positions on
    average (causal within a prompt: prefix + tokens/2). K/V are read once (tiled on chip), the
    new tokens' K/V are written to the cache."""
    t, c = _f(tokens), _f(context)
    flops = 2 * t * c * heads * (qk_dim + v_dim)
    nbytes = t * heads * (qk_dim + v_dim) * act_bytes + (c + t) * kv_elems_per_token * kv_bytes
    return Op(OpKind.ATTN_PREFILL, name, dtype, flops, nbytes, calls, rows=t,
              dims=(t, c, _f(heads), _f(kv_elems_per_token)))


def attention_decode(name: str, batch: ArrayLike, context: ArrayLike, *, heads: float, qk_dim: float,
                     v_dim: float, kv_elems_per_token: float, dtype: str, act_bytes: float,
                     kv_bytes: float, calls: float = 1.0) -> Op:
    """One new query per sequence attending to `context` cached positions: reads the whole KV."""
    b, c = _f(batch), _f(context)
    flops = 2 * b * c * heads * (qk_dim + v_dim)
    nbytes = b * c * kv_elems_per_token * kv_bytes + b * heads * (qk_dim + v_dim) * act_bytes
    return Op(OpKind.ATTN_DECODE, name, dtype, flops, nbytes, calls, rows=b,
              dims=(b, c, _f(heads), _f(kv_elems_per_token)))


def embedding_bag(name: str, samples: ArrayLike, lookups: float, tables: float, dim: float, *,
                  dtype: str, row_bytes: float, out_bytes: float, calls: float = 1.0,
                  sram_hit: ArrayLike = 0.0) -> Op:
    """Sum-pooled lookups: `lookups` random rows of `dim` per sample, pooled into `tables` vectors.
    A fraction `sram_hit` of the rows are hot rows held in on-chip SRAM: they are read there
    (`sram_bytes`) instead of from off-chip memory (`bytes`, `gather_rows`)."""
    s, hit = _f(samples), _f(sram_hit)
    looked_up = s * lookups
    row = dim * row_bytes
    off_chip = looked_up * (1.0 - hit)
    return Op(OpKind.EMBEDDING_BAG, name, dtype, looked_up * dim,
              off_chip * row + s * tables * dim * out_bytes, calls,
              rows=s, gather_bytes=row, gather_rows=off_chip, sram_bytes=looked_up * hit * row)


def all_reduce(name: str, payload_bytes: ArrayLike, group: int, *, dtype: str, calls: float = 1.0) -> Op:
    """Ring all-reduce of `payload_bytes` per chip: each chip sends 2(g-1)/g of it in 2(g-1) steps."""
    p = _f(payload_bytes)
    if group <= 1:
        return Op(OpKind.ALL_REDUCE, name, dtype, p * 0, p * 0, calls)
    frac = 2 * (group - 1) / group
    # reduction adds (g-1)/g of the payload; memory traffic reads and writes each chunk once
    return Op(OpKind.ALL_REDUCE, name, dtype, p * (group - 1) / group / 2, 2 * p, calls,
              comm_bytes=frac * p, comm_steps=2 * (group - 1), group=group, dims=(p, _f(group)))


def all_to_all(name: str, payload_bytes: ArrayLike, group: int, *, dtype: str, calls: float = 1.0) -> Op:
    """All-to-all of `payload_bytes` per chip: (g-1)/g leaves the chip, through a switch in one step."""
    p = _f(payload_bytes)
    if group <= 1:
        return Op(OpKind.ALL_TO_ALL, name, dtype, p * 0, p * 0, calls)
    return Op(OpKind.ALL_TO_ALL, name, dtype, p * 0, 2 * p, calls,
              comm_bytes=(group - 1) / group * p, comm_steps=1.0, group=group, dims=(p, _f(group)))


def elementwise(name: str, elems: ArrayLike, *, dtype: str, bytes_per_elem: float,
                flops_per_elem: float = 1.0, calls: float = 1.0) -> Op:
    """Streaming element-wise work (norms, activations, residual adds, the MoE combine)."""
    e = _f(elems)
    return Op(OpKind.ELEMENTWISE, name, dtype, e * flops_per_elem, e * bytes_per_elem, calls,
              dims=(e, _f(bytes_per_elem)))


def fused_moe_ops(m: ArrayLike, hidden: int, intermediate: int, experts: int, top_k: int, *,
                  act_bytes: float, weight_bytes: float, dtype: str = "bf16",
                  experts_active: ArrayLike | None = None, calls: float = 1.0) -> list[Op]:
    """A fused MoE layer as the kernels implement it (vLLM convention, per chip).

    GEMM1 gathers each routed row and computes gate|up [*, 2I] with SiLU(gate)*up fused in its
    epilogue (writes [*, I]); GEMM2 computes [*, H] with the routing weight applied; the combine
    sums the top_k rows of each token. Routing uses the expected distinct experts unless given.
    """
    routed = _f(m) * top_k
    active = expected_experts_hit(m, experts, top_k) if experts_active is None else _f(experts_active)
    return [
        grouped_gemm("moe_gemm1", routed, 2 * intermediate, hidden, active, dtype=dtype, a_bytes=act_bytes,
                     w_bytes=weight_bytes, out_bytes=act_bytes / 2, calls=calls),
        grouped_gemm("moe_gemm2", routed, hidden, intermediate, active, dtype=dtype, a_bytes=act_bytes,
                     w_bytes=weight_bytes, out_bytes=act_bytes, calls=calls),
        elementwise("moe_combine", routed * hidden, dtype=dtype, bytes_per_elem=act_bytes * (1 + 1 / top_k),
                    calls=calls),
    ]


def fused_moe_counts(m: int, hidden: int, intermediate: int, experts: int, top_k: int,
                     act_bytes: float, weight_bytes: float) -> tuple[float, float]:
    """(FLOPs, bytes) of a whole fused-MoE layer call, for the kernel benchmark's roofline."""
    ops = fused_moe_ops(m, hidden, intermediate, experts, top_k, act_bytes=act_bytes,
                        weight_bytes=weight_bytes)
    return float(sum(o.flops for o in ops)), float(sum(o.bytes for o in ops))
