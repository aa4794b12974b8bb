"""Ranking (DLRM) deployment: what a sample is, where the embedding tables live, which rows are hot.

Units. A *pair* is one user-item pair (one row through the model, one prediction); a *query* is
one ranking request carrying `Ranking.candidates_per_query` pairs, the unit MLPerf's DLRM-v2
reports as a "sample" (mlcommons/inference issues #784, #1628: 100-700 pairs, mean 270).
The performance model counts pairs; `queries_from_pairs` / `pairs_from_queries` convert.

Placement (TorchRec's vocabulary). `shards` chips hold one copy of the tables between them and
each runs the dense layers on its own pairs (data parallel); the pooled embeddings move by an
all-to-all (row-wise: a reduce-scatter of partial sums):
  replicated   shards = 1: every chip holds every table; no collective.
  table_wise   whole tables on chips, balanced by lookups (longest-processing-time packing);
               the busiest chip sets the pace.
  row_wise     every table split into `shards` row blocks; lookups spread evenly, but every chip
               sends partial sums of every table for every pair of the global batch.
  column_wise  every table split into `shards` column blocks; every chip does every lookup with
               rows `shards` times narrower (which wastes DRAM granules).
  hybrid       per table: a table with more than a chip's fair share (1/shards) of the lookups or
               bytes is split row-wise over every chip, the others are packed table-wise.
The planner (`plan`) keeps replicas when the tables fit on one chip, and otherwise picks the
scheme with the least busiest-chip time (gather + collective) among those that fit.

Hot rows. A chip keeps the most frequently looked-up rows it holds in on-chip SRAM (MTIA's SRAM
and a GPU's L2 are used this way). Under Zipf(alpha) popularity within each table, caching the
top k of N rows serves H(k)/H(N) of its lookups (H: generalised harmonic number); the budget is
split over tables so that the last cached row of each is equally popular (`hot_hit_fraction`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike

from accelsim.errors import UserError
from accelsim.spec.chip import DTYPE_BYTES
from accelsim.spec.model import Ranking

# Share of on-chip SRAM an embedding kernel may fill with hot rows (assumed: the rest holds dense
# weights, activations and kernel buffers; GPUs also lose part of L1/shared memory to the kernel).
HOT_ROW_SRAM_FRACTION = 0.5
INDEX_BYTES = 4.0  # one int32 sparse id moved by the input all-to-all


class Placement(StrEnum):
    REPLICATED = "replicated"
    TABLE_WISE = "table_wise"
    ROW_WISE = "row_wise"
    COLUMN_WISE = "column_wise"
    HYBRID = "hybrid"  # per table, as TorchRec's planner mixes: heavy tables row-wise, the rest table-wise


SHARDED = (Placement.TABLE_WISE, Placement.ROW_WISE, Placement.COLUMN_WISE, Placement.HYBRID)


def parse_placement(name: str | None) -> Placement | None:
    """`--placement` (None or 'auto': the planner decides)."""
    if name is None or name == "auto":
        return None
    try:
        return Placement(name.replace("-", "_"))
    except ValueError:
        raise UserError(f"--placement '{name}' is not one of auto, {', '.join(p.value for p in Placement)}") from None


# -- units -----------------------------------------------------------------------------------------


def queries_from_pairs(pairs_per_s: ArrayLike, candidates_per_query: float) -> np.ndarray:
    """Queries/s (MLPerf DLRM-v2 'samples/s') from user-item pairs/s."""
    return np.asarray(pairs_per_s, dtype=np.float64) / candidates_per_query


def pairs_from_queries(queries_per_s: ArrayLike, candidates_per_query: float) -> np.ndarray:
    return np.asarray(queries_per_s, dtype=np.float64) * candidates_per_query


# -- sizes -----------------------------------------------------------------------------------------


def embedding_bytes_per_elem(model: Ranking, weights_dtype: str) -> float:
    """Bytes per stored table element: the workload's `embedding_dtype` when it names one (DLRM-v2
    as submitted), else the serving `--dtype`."""
    return DTYPE_BYTES[model.embedding_dtype or weights_dtype]


def table_bytes(model: Ranking, elem_bytes: float) -> np.ndarray:
    return np.asarray(model.table_rows, dtype=np.float64) * model.embedding_dim * elem_bytes


# -- hot rows --------------------------------------------------------------------------------------


_EXACT_TERMS = 16


def harmonic(n: ArrayLike, alpha: float) -> np.ndarray:
    """Generalised harmonic number H_alpha(n) = sum_{k<=n} k^-alpha, for real n >= 0: the first
    16 terms summed exactly (a fractional row counts its share of the next term), the rest by
    Euler-Maclaurin (relative error < 1e-6)."""
    n = np.maximum(np.asarray(n, dtype=np.float64), 0.0)
    a = float(_EXACT_TERMS)
    k = np.arange(1, _EXACT_TERMS + 1, dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(k ** -alpha)])
    head = np.minimum(n, a)
    whole = np.floor(head).astype(int)
    small = cum[whole] + (head - whole) * (whole + 1.0) ** -alpha
    m = np.maximum(n, a)
    if abs(alpha - 1.0) < 1e-9:
        integral = np.log(m / a)
    else:
        integral = (m ** (1.0 - alpha) - a ** (1.0 - alpha)) / (1.0 - alpha)
    tail = integral + 0.5 * (m ** -alpha - a ** -alpha) + alpha / 12.0 * (a ** (-alpha - 1.0) - m ** (-alpha - 1.0))
    return np.where(n <= a, small, cum[-1] + tail)


def hot_hit_fraction(rows: Sequence[float], lookups: Sequence[float], row_bytes: float, budget_bytes: ArrayLike,
                     alpha: float) -> np.ndarray:
    """Share of lookups served by the hottest rows that fit in `budget_bytes` (broadcast array).

    rows[t], lookups[t]: rows and lookups per pair of table t on this chip. alpha = 0: uniform
    popularity, whole tables are cached densest-first (lookups per row); alpha > 0: Zipf within
    each table, the budget split so the last cached row of each table is equally popular.
    """
    n = np.asarray(rows, dtype=np.float64)
    lk = np.asarray(lookups, dtype=np.float64)
    budget_rows = np.maximum(np.asarray(budget_bytes, dtype=np.float64), 0.0) / row_bytes
    total = lk.sum()
    if total <= 0:
        return np.zeros_like(budget_rows)
    if alpha <= 0:
        order = np.argsort(-(lk / n), kind="stable")
        cum_rows = np.concatenate([[0.0], np.cumsum(n[order])])
        cum_hits = np.concatenate([[0.0], np.cumsum(lk[order])])
        return np.interp(budget_rows, cum_rows, cum_hits) / total
    hn = harmonic(n, alpha)
    weight = lk / hn  # popularity of row k of table t is weight[t] * k^-alpha

    def cached(lam: np.ndarray) -> np.ndarray:  # rows cached per table at popularity threshold lam
        return np.minimum(n, (weight / lam[..., None]) ** (1.0 / alpha))

    flat = np.atleast_1d(budget_rows).ravel()
    # bisection on log(lambda) between "every row cached" and "under one row cached"
    lo = np.full(flat.shape, np.log(float(weight.min())) - alpha * np.log(float(n.max())) - 1.0)
    hi = np.full(flat.shape, np.log(float(weight.max())) + alpha * np.log(float(len(n))) + 1.0)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        over = cached(np.exp(mid)).sum(axis=-1) > flat
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    k = cached(np.exp(hi))
    hits = (lk * harmonic(k, alpha) / hn).sum(axis=-1) / total
    hits = np.where(flat >= n.sum(), 1.0, np.where(flat <= 0.0, 0.0, hits))
    return hits.reshape(np.shape(budget_rows))


# -- placement -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardPlan:
    """How one copy of the tables is laid out over `shards` chips, seen from the busiest chip.

    Per pair of the *global* batch (all `shards` chips' pairs): the busiest chip's `lookups`,
    its pooled output vectors `pooled` of width `dim`, and its tables' rows and lookups
    (`local_rows`, `local_lookups`, for the hot-row cache). `held_bytes` is the largest share of
    table bytes one chip holds; `a2a_elems` the pooled elements per global pair that chip sends.
    """

    placement: Placement
    shards: int
    lookups: float
    pooled: float
    dim: float
    local_rows: tuple[float, ...]
    local_lookups: tuple[float, ...]
    held_bytes: float
    total_bytes: float
    a2a_elems: float


def table_wise_owners(lookups: Sequence[float], tbytes: Sequence[float], shards: int) -> np.ndarray:
    """Chip of each table under table-wise placement: longest-processing-time packing by lookups
    (each table, most lookups first, to the chip with the fewest so far; ties by bytes held)."""
    lk, tb = np.asarray(lookups, dtype=np.float64), np.asarray(tbytes, dtype=np.float64)
    load, held = np.zeros(shards), np.zeros(shards)
    owner = np.zeros(len(lk), dtype=int)
    for t in sorted(range(len(lk)), key=lambda i: (-lk[i], -tb[i])):
        c = int(np.lexsort((held, load))[0])
        owner[t] = c
        load[c] += lk[t]
        held[c] += tb[t]
    return owner


def _table_wise(model: Ranking, shards: int, tb: np.ndarray) -> ShardPlan:
    lk = np.asarray(model.lookups_per_table, dtype=np.float64)
    owner = table_wise_owners(lk, tb, shards)
    load = np.bincount(owner, weights=lk, minlength=shards)
    held = np.bincount(owner, weights=tb, minlength=shards)
    busy = int(np.lexsort((held, load))[-1])
    mine = owner == busy
    rows = np.asarray(model.table_rows, dtype=np.float64)
    return ShardPlan(Placement.TABLE_WISE, shards, float(lk[mine].sum()), float(mine.sum()), model.embedding_dim,
                     tuple(rows[mine]), tuple(lk[mine]), float(held.max()), float(tb.sum()),
                     float(mine.sum()) * model.embedding_dim)


def heavy_tables(lookups: np.ndarray, tbytes: np.ndarray, shards: int) -> np.ndarray:
    """Tables a hybrid placement splits row-wise: more than 1/shards of the lookups or of the bytes."""
    return (lookups > lookups.sum() / shards) | (tbytes > tbytes.sum() / shards)


def _hybrid(model: Ranking, shards: int, tb: np.ndarray) -> ShardPlan:
    lk = np.asarray(model.lookups_per_table, dtype=np.float64)
    rows = np.asarray(model.table_rows, dtype=np.float64)
    heavy = heavy_tables(lk, tb, shards)
    if heavy.all() or not heavy.any():
        raise UserError(f"a hybrid placement of {model.name} over {shards} chips would be all row-wise or all "
                        "table-wise")
    light = ~heavy
    if shards > int(light.sum()):
        raise UserError(f"hybrid placement packs {int(light.sum())} light tables whole: they cannot fill "
                        f"{shards} chips")
    owner = table_wise_owners(lk[light], tb[light], shards)
    load = np.bincount(owner, weights=lk[light], minlength=shards) + lk[heavy].sum() / shards
    held = np.bincount(owner, weights=tb[light], minlength=shards) + tb[heavy].sum() / shards
    busy = int(np.lexsort((held, load))[-1])
    mine = owner == busy
    pooled = float(heavy.sum() + mine.sum())  # partial sums of every heavy table, own light tables pooled
    return ShardPlan(Placement.HYBRID, shards, float(load[busy]), pooled, model.embedding_dim,
                     tuple(rows[heavy] / shards) + tuple(rows[light][mine]),
                     tuple(lk[heavy] / shards) + tuple(lk[light][mine]), float(held.max()), float(tb.sum()),
                     pooled * model.embedding_dim)


def plan_for(model: Ranking, shards: int, placement: Placement, elem_bytes: float) -> ShardPlan:
    """The layout of `placement` over `shards` chips (shards = 1 is always replicated)."""
    tb = table_bytes(model, elem_bytes)
    rows = np.asarray(model.table_rows, dtype=np.float64)
    lk = np.asarray(model.lookups_per_table, dtype=np.float64)
    e, t = model.embedding_dim, model.num_tables
    if shards == 1 or placement == Placement.REPLICATED:
        if shards != 1:
            raise UserError(f"--placement replicated needs the tables on one chip, not {shards}")
        return ShardPlan(Placement.REPLICATED, 1, float(lk.sum()), t, e, tuple(rows), tuple(lk), float(tb.sum()),
                         float(tb.sum()), 0.0)
    if placement == Placement.TABLE_WISE:
        if shards > t:
            raise UserError(f"table-wise placement puts whole tables on chips: {t} tables cannot fill {shards} chips")
        return _table_wise(model, shards, tb)
    if placement == Placement.HYBRID:
        return _hybrid(model, shards, tb)
    if placement == Placement.ROW_WISE:
        return ShardPlan(Placement.ROW_WISE, shards, float(lk.sum()) / shards, t, e, tuple(rows / shards),
                         tuple(lk / shards), float(tb.sum()) / shards, float(tb.sum()), float(t * e))
    if e % shards:
        raise UserError(f"column-wise placement splits the {e} columns of each table; {shards} does not divide them")
    return ShardPlan(Placement.COLUMN_WISE, shards, float(lk.sum()), t, e / shards, tuple(rows), tuple(lk),
                     float(tb.sum()) / shards, float(tb.sum()), float(t * e) / shards)


def candidate_plans(model: Ranking, shards: int, elem_bytes: float,
                    placement: Placement | None) -> tuple[ShardPlan, ...]:
    """Plans the planner weighs at `shards` (one when pinned), in preference order."""
    if placement is not None:
        return (plan_for(model, shards, placement, elem_bytes),)
    if shards == 1:
        return (plan_for(model, 1, Placement.REPLICATED, elem_bytes),)
    out = []
    for p in SHARDED:
        try:
            out.append(plan_for(model, shards, p, elem_bytes))
        except UserError:
            continue
    return tuple(out)
