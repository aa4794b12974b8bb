"""The learned part of the fused-MoE cost model: a correction to the analytical model (costmodel),
fitted on the winners of shipped vLLM/SGLang config files (pairwise: each winner must be faster than
the other configs of the pruned space for its problem).

For a config c of a case (problem, device):

    log t(c) = alpha * log t_an(c) + sum_k W_k[value_k(c)] . b + sum_(k,l) P_kl[value_k(c), value_l(c)] . b2

t_an is the analytical model (costmodel.model_terms at its start factors); W_k holds one row per
value of config key k and P_kl one row per pair of values of two keys (``PAIRS``); b and b2 are
small vectors describing the case (``case_basis``): tokens per expert, batch size, N and H, the
device generation (ampere / hopper / blackwell) and dtype class, and their products with tokens
per expert. So a value's effect moves smoothly with the problem and differs per GPU generation and
dtype, and a fitted model applies to shapes it never saw.

Fit: ``fit`` minimises the mean pairwise logistic loss softplus(log t(winner) - log t(other)) over
configs drawn uniformly from each case's pruned space, plus a ridge penalty, with L-BFGS. The
winner's expected percentile in the model's order equals the mean of 1[other ranked above winner]
over uniform draws, which the logistic loss bounds: the loss is the metric's smooth surrogate.
Parameters are plain arrays, saved as JSON with their provenance (``Ranker.to_json``).
NumPy + SciPy; importable on the GPU box.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.errors import UserError
from accelsim.tune.space import CONFIG_KEYS, TUNE_SPACE, DeviceLimits, Problem

GENERATIONS = ("ampere", "hopper", "blackwell")
DTYPE_CLASSES = {"bf16": 0, "fp16": 0, "fp32": 1, "fp8": 2, "fp8_block": 3}
PAIRS = (("BLOCK_SIZE_M", "BLOCK_SIZE_N"), ("BLOCK_SIZE_N", "BLOCK_SIZE_K"), ("BLOCK_SIZE_M", "BLOCK_SIZE_K"),
         ("BLOCK_SIZE_M", "num_warps"), ("BLOCK_SIZE_N", "num_warps"), ("BLOCK_SIZE_K", "num_stages"),
         ("num_warps", "num_stages"), ("BLOCK_SIZE_M", "GROUP_SIZE_M"), ("BLOCK_SIZE_M", "num_stages"))
N_BASIS = 20
N_PAIR_BASIS = 9
DEFAULT_PARAMS = Path(__file__).resolve().parent / "data" / "costmodel-params.json"


def case_basis(problem: Problem, limits: DeviceLimits) -> tuple[np.ndarray, np.ndarray]:
    """(b [N_BASIS], b2 [N_PAIR_BASIS]) for one case; see the module doc."""
    x = np.log2(max(problem.m * problem.top_k / problem.experts, 1 / 16)) / 4
    gen = np.array([limits.generation == g for g in GENERATIONS], dtype=float)
    dt = np.zeros(4)
    dt[DTYPE_CLASSES[problem.dtype]] = 1.0
    b = np.concatenate([[1.0, x, x * x, np.log2(problem.m) / 8, np.log2(2 * problem.inter) / 12,
                         np.log2(problem.hidden) / 12], gen, dt, x * gen, x * dt])
    b2 = np.concatenate([[1.0, x], gen, dt])
    return b, b2


def value_indices(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """[C, 6] position of each config's value in TUNE_SPACE's list for each key (UserError for a
    value outside the space)."""
    out = np.empty((len(arrays[CONFIG_KEYS[0]]), len(CONFIG_KEYS)), dtype=np.int64)
    for j, k in enumerate(CONFIG_KEYS):
        values = np.asarray(TUNE_SPACE[k])
        pos = np.searchsorted(values, arrays[k])
        if (pos >= len(values)).any() or (values[np.minimum(pos, len(values) - 1)] != arrays[k]).any():
            raise UserError(f"{k} has values outside the tuning space {values.tolist()}")
        out[:, j] = pos
    return out


_SIZES = [len(TUNE_SPACE[k]) for k in CONFIG_KEYS]
_PAIR_IDX = [(CONFIG_KEYS.index(a), CONFIG_KEYS.index(b)) for a, b in PAIRS]


@dataclass
class Ranker:
    """Fitted parameters (see module doc) and their provenance."""

    alpha: float
    w: list[np.ndarray]  # per key: [values, N_BASIS]
    p: list[np.ndarray]  # per pair: [values_a * values_b, N_PAIR_BASIS]
    provenance: dict[str, Any] = field(default_factory=dict)

    def correction(self, vidx: np.ndarray, b: np.ndarray, b2: np.ndarray) -> np.ndarray:
        """The learned part of log t for configs with value indices ``vidx`` [C, 6] in one case."""
        out = np.zeros(len(vidx))
        for j in range(len(CONFIG_KEYS)):
            out += (self.w[j] @ b)[vidx[:, j]]
        for q, (i, j) in enumerate(_PAIR_IDX):
            out += (self.p[q] @ b2)[vidx[:, i] * _SIZES[j] + vidx[:, j]]
        return out

    def log_time(self, log_analytical: np.ndarray, vidx: np.ndarray, problem: Problem,
                 limits: DeviceLimits) -> np.ndarray:
        """log t(c) up to a per-case constant: what orders a case's configs."""
        b, b2 = case_basis(problem, limits)
        return self.alpha * log_analytical + self.correction(vidx, b, b2)

    def to_json(self) -> dict[str, Any]:
        return {"keys": list(CONFIG_KEYS), "values": {k: list(TUNE_SPACE[k]) for k in CONFIG_KEYS},
                "pairs": [list(pr) for pr in PAIRS], "alpha": self.alpha,
                "w": [np.round(w, 6).tolist() for w in self.w], "p": [np.round(p, 6).tolist() for p in self.p],
                "provenance": self.provenance}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Ranker:
        """UserError if the file was fitted for another space or feature layout."""
        if doc.get("values") != {k: list(TUNE_SPACE[k]) for k in CONFIG_KEYS} or \
                doc.get("pairs") != [list(pr) for pr in PAIRS]:
            raise UserError("cost-model parameters were fitted for another tuning space; refit them "
                            "(benchmarks/bench_tune_real_labels.py --write-params)")
        w = [np.asarray(x, dtype=float) for x in doc["w"]]
        p = [np.asarray(x, dtype=float) for x in doc["p"]]
        if any(x.shape[1] != N_BASIS for x in w) or any(x.shape[1] != N_PAIR_BASIS for x in p):
            raise UserError("cost-model parameters have another feature layout; refit them")
        return cls(float(doc["alpha"]), w, p, dict(doc.get("provenance", {})))


def _unpack(theta: np.ndarray) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    alpha = theta[0]
    pos, w, p = 1, [], []
    for n in _SIZES:
        w.append(theta[pos: pos + n * N_BASIS].reshape(n, N_BASIS))
        pos += n * N_BASIS
    for i, j in _PAIR_IDX:
        n = _SIZES[i] * _SIZES[j]
        p.append(theta[pos: pos + n * N_PAIR_BASIS].reshape(n, N_PAIR_BASIS))
        pos += n * N_PAIR_BASIS
    return float(alpha), w, p


def _n_params() -> int:
    return 1 + sum(_SIZES) * N_BASIS + sum(_SIZES[i] * _SIZES[j] for i, j in _PAIR_IDX) * N_PAIR_BASIS


@dataclass
class PairData:
    """Training rows: per case, column 0 is the winner and columns 1.. are other configs.
    vidx [cases, J, 6]; log_an [cases, J] (analytical log time); b [cases, N_BASIS]; b2 [cases, 9]."""

    vidx: np.ndarray
    log_an: np.ndarray
    b: np.ndarray
    b2: np.ndarray


def _scores(theta: np.ndarray, d: PairData) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    alpha, w, p = _unpack(theta)
    cases = d.log_an.shape[0]
    s = alpha * d.log_an
    rows = np.arange(cases)[:, None]
    tw = [d.b @ wk.T for wk in w]  # [cases, values]
    for j in range(len(CONFIG_KEYS)):
        s = s + tw[j][rows, d.vidx[:, :, j]]
    pidx = [d.vidx[:, :, i] * _SIZES[j] + d.vidx[:, :, j] for i, j in _PAIR_IDX]
    for q in range(len(_PAIR_IDX)):
        s = s + (d.b2 @ p[q].T)[rows, pidx[q]]
    return s, [d.vidx[:, :, j] for j in range(len(CONFIG_KEYS))], pidx


def _loss_grad(theta: np.ndarray, d: PairData, ridge: float) -> tuple[float, np.ndarray]:
    s, idx, pidx = _scores(theta, d)
    cases, cols = s.shape
    margin = s[:, :1] - s[:, 1:]  # log t(winner) - log t(other): want negative
    loss = np.logaddexp(0.0, margin).mean()
    sig = 0.5 * (1 + np.tanh(0.5 * margin)) / margin.size  # d loss / d margin
    g = np.zeros_like(s)
    g[:, 0] = sig.sum(axis=1)
    g[:, 1:] = -sig
    grad = np.zeros_like(theta)
    grad[0] = (g * d.log_an).sum()
    pos = 1
    rows = np.repeat(np.arange(cases), cols)
    for j, n in enumerate(_SIZES):
        h = np.bincount(rows * n + idx[j].ravel(), weights=g.ravel(), minlength=cases * n).reshape(cases, n)
        grad[pos: pos + n * N_BASIS] = (h.T @ d.b).ravel()
        pos += n * N_BASIS
    for q, (i, j) in enumerate(_PAIR_IDX):
        n = _SIZES[i] * _SIZES[j]
        h = np.bincount(rows * n + pidx[q].ravel(), weights=g.ravel(), minlength=cases * n).reshape(cases, n)
        grad[pos: pos + n * N_PAIR_BASIS] = (h.T @ d.b2).ravel()
        pos += n * N_PAIR_BASIS
    reg = theta.copy()
    reg[0] = theta[0] - 1.0  # alpha is pulled toward the analytical model as it is
    return loss + ridge * float(reg @ reg), grad + 2 * ridge * reg


def fit(data: PairData, ridge: float = 1e-4, max_iter: int = 300,
        provenance: Mapping[str, Any] | None = None) -> Ranker:
    """Fit the parameters on pairwise data (see module doc); returns a Ranker."""
    from scipy.optimize import minimize

    theta0 = np.zeros(_n_params())
    theta0[0] = 1.0
    # alpha stays 1: the correction is then a plain factor on the analytical time, which the model
    # strategy can refit the analytical factors under (strategies.ModelGuided).
    bounds = [(1.0, 1.0)] + [(None, None)] * (len(theta0) - 1)
    sol = minimize(_loss_grad, theta0, args=(data, ridge), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": max_iter})
    alpha, w, p = _unpack(sol.x)
    prov = dict(provenance or {})
    prov.update({"train_loss": round(float(sol.fun), 5), "iterations": int(sol.nit), "ridge": ridge})
    return Ranker(alpha, [x.copy() for x in w], [x.copy() for x in p], prov)


def load(path: str | Path | None = None) -> Ranker | None:
    """The fitted parameters (default: data/costmodel-params.json), or None when there is no file."""
    path = Path(path) if path is not None else DEFAULT_PARAMS
    if not path.is_file():
        return None
    doc = json.loads(path.read_text())
    return Ranker.from_json(doc["ranker"])


def stack(rows: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> PairData:
    """PairData from per-case (vidx [J, 6], log_an [J], b, b2) tuples with equal J."""
    return PairData(np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
                    np.stack([r[2] for r in rows]), np.stack([r[3] for r in rows]))


def log_times(problem: Problem, limits: DeviceLimits, chip: Any, arrays: Mapping[str, np.ndarray],
              ranker: Ranker | None) -> np.ndarray:
    """Predicted log time of each config in ``arrays`` up to a per-problem constant: the analytical
    model alone when ``ranker`` is None, else with the learned correction."""
    from accelsim.tune.costmodel import CostModel

    log_an = np.log(CostModel(problem, limits, chip).terms(arrays).predict())
    if ranker is None:
        return log_an
    return ranker.log_time(log_an, value_indices(arrays), problem, limits)


def correction(problem: Problem, limits: DeviceLimits, arrays: Mapping[str, np.ndarray],
               ranker: Ranker | None) -> np.ndarray:
    """The learned log correction of each config (zeros without a ranker), shifted so its minimum is 0."""
    if ranker is None:
        return np.zeros(len(arrays[CONFIG_KEYS[0]]))
    b, b2 = case_basis(problem, limits)
    corr = ranker.correction(value_indices(arrays), b, b2)
    return corr - corr.min()


def load_factors(generation: str, path: str | Path | None = None) -> np.ndarray | None:
    """The analytical model's five factors fitted on AIConfigurator's measured fused-MoE latencies
    for a GPU generation (data/costmodel-params.json), or None."""
    path = Path(path) if path is not None else DEFAULT_PARAMS
    if not path.is_file():
        return None
    got = json.loads(path.read_text()).get("factors", {}).get(generation)
    return None if got is None else np.asarray(got["factors"], dtype=float)


def predict_seconds(problem: Problem, limits: DeviceLimits, chip: Any, arrays: Mapping[str, np.ndarray],
                    ranker: Ranker | None, factors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(predicted seconds per call [C], learned log correction [C]) for the configs in ``arrays``.

    Order: the analytical time at its start factors times the learned correction (what the ranker
    was fitted with). Level: the best-ranked config gets the analytical time at ``factors`` (the
    generation's fit to AIConfigurator's measured latencies; start factors when None), the others
    keep their predicted ratio to it. The correction alone has no level: it was fitted on orders."""
    from accelsim.tune.costmodel import CostModel

    terms = CostModel(problem, limits, chip).terms(arrays)
    t0 = terms.predict()
    corr = correction(problem, limits, arrays, ranker)
    lt = np.log(t0) + corr
    top = int(np.argmin(lt))
    level = float(terms.take(np.array([top])).predict(factors)[0])
    return np.exp(lt - lt[top]) * level, corr
