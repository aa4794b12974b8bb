"""Fitting and judging the cost model on real data: shipped winners (labels.Case) and
AIConfigurator's measured fused-MoE latencies.

- ``pair_data``: training rows for `ranker.fit` (each winner against configs drawn uniformly from
  its pruned space).
- ``winner_positions``: where each case's winner lands in the model strategy's order
  (`strategies.model_plan`) and in a seeded random order, over the whole pruned space.
- ``fit_aic_factors``: the analytical model's five factors per GPU generation, fitted on measured
  latencies of vLLM's Triton fused-MoE (which runs vLLM's tuned configs): each measurement is
  compared with the model's time of its best-ranked config.
Used by benchmarks/bench_tune_real_labels.py, which also writes data/costmodel-params.json.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.tune.labels import Case, case_space
from accelsim.tune.ranker import PairData, Ranker, case_basis, predict_seconds, stack, value_indices
from accelsim.tune.space import CONFIG_KEYS, DEVICE_LIMITS, DeviceLimits, Problem, tune_space_arrays


@functools.lru_cache(maxsize=8)
def _chip(name: str) -> Any:
    from accelsim.spec import load_chip

    return load_chip(name)


def chip_of(limits: DeviceLimits) -> Any:
    """The hwmodels/ chip of a device (None when there is none: no analytical model for it)."""
    return None if limits.chip is None else _chip(limits.chip)


def _take(idx: np.ndarray) -> dict[str, np.ndarray]:
    a = tune_space_arrays()
    return {k: a[k][idx] for k in CONFIG_KEYS}


def pair_data(cases: Sequence[Case], negatives: int = 64, seed: int = 0) -> tuple[PairData, list[int]]:
    """(PairData, indices of the cases used): per case the winner's canonical config and
    ``negatives`` configs drawn uniformly (seeded) from its pruned space. Cases whose device has no
    chip or whose winner is not in the pruned space are left out."""
    from accelsim.tune.costmodel import CostModel

    rng = np.random.default_rng(seed)
    vidx_all = value_indices(tune_space_arrays())
    rows, used = [], []
    for n, case in enumerate(cases):
        limits = DEVICE_LIMITS[case.device]
        chip = chip_of(limits)
        kept, w = case_space(case)
        if chip is None or w < 0:
            continue
        others = kept[kept != w]
        pick = np.concatenate([[w], rng.choice(others, negatives, replace=len(others) < negatives)])
        log_an = np.log(CostModel(case.problem, limits, chip).terms(_take(pick)).predict())
        b, b2 = case_basis(case.problem, limits)
        rows.append((vidx_all[pick], log_an, b, b2))
        used.append(n)
    return stack(rows), used


@dataclass(frozen=True)
class Position:
    """Where a winner lands: 0-based position in the model's order and in a random order, over
    ``size`` pruned candidates."""

    model: int
    random: int
    size: int

    @property
    def model_pct(self) -> float:
        return self.model / self.size

    @property
    def random_pct(self) -> float:
        return self.random / self.size


def winner_position(case: Case, ranker: Ranker | None, factors: np.ndarray | None = None,
                    seed: int = 0) -> Position | None:
    """The winner's position in the model strategy's plan and in a seeded random permutation of
    the pruned space (None when the device has no chip or the winner is not in the space)."""
    from accelsim.tune.costmodel import one_hot
    from accelsim.tune.strategies import model_plan

    limits = DEVICE_LIMITS[case.device]
    chip = chip_of(limits)
    kept, w = case_space(case)
    if chip is None or w < 0:
        return None
    arrays = _take(kept)
    pred, _ = predict_seconds(case.problem, limits, chip, arrays, ranker, factors)
    x = one_hot(arrays, {k: sorted(set(arrays[k].tolist())) for k in CONFIG_KEYS})
    order = model_plan(pred, x)
    wpos = int(np.searchsorted(kept, w))
    model = order.index(wpos)
    rng = np.random.default_rng([seed, case.problem.m, case.problem.experts, case.problem.inter])
    perm = rng.permutation(len(kept))
    return Position(model, int(np.flatnonzero(perm == wpos)[0]), len(kept))


def aic_problem(row: dict[str, Any]) -> Problem | None:
    """The per-GPU tuning problem of an AIConfigurator fused-MoE row (tp shards I, ep shards E), or
    None for a format accelsim's kernel does not run."""
    shape = row["shape"] if isinstance(row["shape"], dict) else json.loads(row["shape"])
    dtype = {"moe_bfloat16": "bf16", "moe_float16": "fp16", "moe_fp8": "fp8", "moe_fp8_block": "fp8_block"}.get(
        str(row["name"]))
    if dtype is None:
        return None
    tp, ep = int(shape.get("tp", 1)), int(shape.get("ep", 1))
    experts, inter = int(shape["E"]) // ep, int(shape["I"]) // tp
    top_k = min(int(shape["top_k"]), experts)
    if experts < 1 or inter < 1:
        return None
    return Problem(experts, int(shape["H"]), inter, top_k, dtype, int(shape["M"]))


def aic_terms(rows: Iterable[dict[str, Any]], limits: DeviceLimits, ranker: Ranker | None
              ) -> tuple[list[Any], np.ndarray, list[tuple[int, int, int, int, str]]]:
    """(Terms of each row's best-ranked config, measured seconds, shape key) for the usable rows."""
    from accelsim.tune.costmodel import CostModel
    from accelsim.tune.space import TUNE_SPACE, prune_mask

    chip = chip_of(limits)
    terms, measured, keys = [], [], []
    for row in rows:
        problem = aic_problem(row)
        if problem is None or not float(row["median_s"]) > 0:
            continue
        kept, _ = prune_mask(tune_space_arrays(), problem, limits, TUNE_SPACE["GROUP_SIZE_M"])
        arrays = _take(np.flatnonzero(kept))
        pred, _ = predict_seconds(problem, limits, chip, arrays, ranker)
        top = int(np.argmin(pred))
        terms.append(CostModel(problem, limits, chip).terms({k: v[top:top + 1] for k, v in arrays.items()}))
        measured.append(float(row["median_s"]))
        keys.append((problem.experts, problem.hidden, problem.inter, problem.top_k, problem.dtype))
    return terms, np.asarray(measured), keys


def concat_terms(terms: Sequence[Any]) -> Any:
    """One Terms-like object over single-config Terms of different problems (each keeps its own
    fixed_s, scaled by the same factor d)."""
    from accelsim.tune.costmodel import Terms

    comp = np.concatenate([t.compute_s for t in terms])
    mem = np.concatenate([t.memory_s for t in terms])
    over = np.concatenate([t.overhead_s for t in terms])
    fixed = np.array([t.fixed_s for t in terms])
    return _MultiTerms(Terms(comp, mem, over, 0.0), fixed)


class _MultiTerms:
    """Terms of configs from different problems: each row has its own fixed_s."""

    def __init__(self, terms: Any, fixed: np.ndarray) -> None:
        self.terms, self.fixed = terms, fixed

    def predict(self, factors: np.ndarray | None = None) -> np.ndarray:
        from accelsim.tune.costmodel import START

        f = START if factors is None else np.asarray(factors, dtype=float)
        return self.terms.predict(f) + f[3] * self.fixed

    def take(self, idx: np.ndarray) -> _MultiTerms:
        return _MultiTerms(self.terms.take(idx), self.fixed[idx])


def fit_aic_factors(terms: Sequence[Any], measured: np.ndarray) -> np.ndarray:
    """The five analytical factors fitted to measured seconds (costmodel.fit_factors, no prior pull)."""
    from accelsim.tune.costmodel import fit_factors

    return fit_factors(concat_terms(terms), measured, prior_weight=1e-3)  # type: ignore[arg-type]
