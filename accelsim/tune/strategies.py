"""Search strategies over a pruned candidate list, behind one ask/tell interface (core.Strategy).

  exhaustive  every candidate, in space order
  random      priors first, then a seeded permutation
  model       the cost model ranks all candidates: the analytical model (costmodel) times the
              correction learned from shipped winners (ranker), when its parameters are given;
              each round measures the best-ranked unmeasured configs plus one-step neighbours of
              the best measured ones, then refits the analytical model's five multiplicative
              factors and per-(key, value) corrections to what was measured
  bayes       optuna's TPE sampler (optional extra `tune`; imported only when chosen)

Priors (configs from an imported vLLM file, say) go first for every strategy but exhaustive.
A strategy never proposes a config twice and never proposes one outside its candidate list.
``plan()`` is the order a strategy would propose its candidates in if no measurement told it
anything (what `accelsim tune --dry-run` prints).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from accelsim.errors import UserError
from accelsim.tune.core import Measurement
from accelsim.tune.space import CONFIG_KEYS, Config, ConfigTuple, DeviceLimits, Problem, as_config, as_tuple

STRATEGIES = ("exhaustive", "random", "model", "bayes")


class _Listed:
    """Shared bookkeeping: candidates, their index, what has been proposed and told."""

    name = "base"

    def __init__(self, candidates: Sequence[Config], priors: Sequence[Config] = ()) -> None:
        if not candidates:
            raise UserError("no candidate configs left after pruning; widen the space or check the shape")
        self.candidates = [as_config(as_tuple(c)) for c in candidates]
        self.index: dict[ConfigTuple, int] = {as_tuple(c): i for i, c in enumerate(self.candidates)}
        seen: set[int] = set()
        self.priors = []
        for p in priors:
            i = self.index.get(as_tuple(p))
            if i is not None and i not in seen:
                seen.add(i)
                self.priors.append(i)
        self.proposed: set[int] = set()
        self.told: dict[int, Measurement] = {}

    def _take(self, order: Sequence[int] | np.ndarray, n: int) -> list[Config]:
        out = []
        for i in order:
            i = int(i)
            if i not in self.proposed:
                self.proposed.add(i)
                out.append(dict(self.candidates[i]))
                if len(out) == n:
                    break
        return out

    def tell(self, config: Config, measurement: Measurement) -> None:
        self.told[self.index[as_tuple(config)]] = measurement

    def plan(self) -> list[int]:
        """Candidate indices in the order they would be proposed without feedback."""
        return self.priors + [i for i in range(len(self.candidates)) if i not in set(self.priors)]


class Exhaustive(_Listed):
    name = "exhaustive"

    def ask(self, n: int) -> list[Config]:
        return self._take(range(len(self.candidates)), n)

    def plan(self) -> list[int]:
        return list(range(len(self.candidates)))


class RandomSearch(_Listed):
    name = "random"

    def __init__(self, candidates: Sequence[Config], priors: Sequence[Config] = (), seed: int = 0) -> None:
        super().__init__(candidates, priors)
        perm = np.random.default_rng(seed).permutation(len(self.candidates))
        self.order = self.priors + [int(i) for i in perm]

    def ask(self, n: int) -> list[Config]:
        return self._take(self.order, n)

    def plan(self) -> list[int]:
        seen: set[int] = set()
        return [i for i in self.order if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def _neighbours(candidates: Sequence[Config]) -> list[list[int]]:
    """For each candidate, the candidates that differ in exactly one key by one step of its values."""
    values = {k: sorted({c[k] for c in candidates}) for k in CONFIG_KEYS}
    pos = {k: {v: j for j, v in enumerate(vs)} for k, vs in values.items()}
    index = {as_tuple(c): i for i, c in enumerate(candidates)}
    out = []
    for c in candidates:
        near = []
        for k in CONFIG_KEYS:
            j = pos[k][c[k]]
            for step in (-1, 1):
                if 0 <= j + step < len(values[k]):
                    i = index.get(as_tuple({**c, k: values[k][j + step]}))
                    if i is not None:
                        near.append(i)
        out.append(near)
    return out


class ModelGuided(_Listed):
    """Model-ranked search with refitting (see module doc). The first round is the ``first`` best
    ranked configs plus a few that cover every (key, value) level; each later round takes half its
    configs from the model's ranking and half from one-step neighbours of the ``elite`` best
    measured configs, ordered by the model."""

    name = "model"

    def __init__(self, candidates: Sequence[Config], problem: Problem, limits: DeviceLimits, chip: Any,
                 priors: Sequence[Config] = (), first: int = 2, round_size: int = 4, elite: int = 2,
                 ranker: Any = None, factors: np.ndarray | None = None) -> None:
        from accelsim.tune.costmodel import START, CostModel, one_hot
        from accelsim.tune.ranker import predict_seconds
        from accelsim.tune.space import config_arrays

        super().__init__(candidates, priors)
        arrays = config_arrays(self.candidates)
        self.terms = CostModel(problem, limits, chip).terms(arrays)
        self.factors = START.copy() if factors is None else np.asarray(factors, dtype=float)
        self.pred, self.corr = predict_seconds(problem, limits, chip, arrays, ranker, self.factors)
        self.learned = ranker is not None
        self.tile = [(c["BLOCK_SIZE_M"], c["BLOCK_SIZE_N"], c["BLOCK_SIZE_K"]) for c in self.candidates]
        self.x = one_hot(arrays, {k: sorted(set(arrays[k].tolist())) for k in CONFIG_KEYS})
        self.first, self.round_size, self.elite = first, round_size, elite
        self._near: list[list[int]] | None = None
        self.queue: list[int] = []
        self._fitted_on = 0

    def _refit(self) -> None:
        """Refit the model's factors, then per-(key, value) corrections on what is left over."""
        from accelsim.tune.costmodel import fit_factors, fit_main_effects

        ok = [(i, m.median_s) for i, m in self.told.items() if m.ok]
        if len(ok) == self._fitted_on or not ok:
            return
        idx = np.array([i for i, _ in ok])
        measured = np.array([t for _, t in ok])
        gain = np.exp(self.corr)
        self.factors = fit_factors(self.terms.take(idx), measured / gain[idx], start=self.factors)
        base = self.terms.predict(self.factors) * gain
        effects = fit_main_effects(self.x[idx], np.log(measured) - np.log(base[idx]))
        self.pred = base * np.exp(self.x @ effects)
        self._fitted_on = len(ok)

    def _ranked(self) -> list[int]:
        """Unproposed candidates by prediction, best first. Without the learned correction, the
        first of each tile shape (BM, BN, BK) goes ahead of the rest: the analytical model cannot
        see GROUP_SIZE_M and barely sees warps and stages, so its ties are broken toward trying
        different tiles rather than near-copies of one."""
        order = [int(i) for i in np.argsort(self.pred, kind="stable") if int(i) not in self.proposed]
        if self.learned:
            return order
        seen: set[tuple[int, int, int]] = set()
        head, tail = [], []
        for i in order:
            (tail if self.tile[i] in seen else head).append(i)
            seen.add(self.tile[i])
        return head + tail

    @property
    def near(self) -> list[list[int]]:
        """One-step neighbours of each candidate, built on first use (only rounds after the first need them)."""
        if self._near is None:
            self._near = _neighbours(self.candidates)
        return self._near

    def _refill(self) -> None:
        if not self.told and not self.proposed:
            self.queue = first_round(self._ranked(), self.x, self.pred, self.priors, self.first)
            return
        self._refit()
        ranked = self._ranked()
        ok = sorted((m.median_s, i) for i, m in self.told.items() if m.ok)
        near = {j for _, i in ok[: self.elite] for j in self.near[i] if j not in self.proposed}
        near_ranked = sorted(near, key=lambda j: self.pred[j])
        n_model = self.round_size - min(self.round_size // 2, len(near_ranked))
        picks = ranked[:n_model]
        picks += [j for j in near_ranked if j not in picks][: self.round_size - len(picks)]
        picks += [i for i in ranked if i not in picks][: self.round_size - len(picks)]
        self.queue = picks

    def plan(self) -> list[int]:
        """The first round (priors, best predicted, level coverage), then the rest by prediction."""
        if self.told or self.proposed:
            raise RuntimeError("plan() describes a fresh strategy")
        self._refill()
        first, self.queue = list(self.queue), []
        return first + [i for i in self._ranked() if i not in set(first)]

    def ask(self, n: int) -> list[Config]:
        out: list[Config] = []
        while len(out) < n and len(self.proposed) < len(self.candidates):
            if not self.queue:
                self._refill()
                if not self.queue:
                    break
            out += self._take([self.queue.pop(0)], 1)
            if not self.queue:
                break  # let the caller measure this round before the next refit
        return out


def coverage_picks(x: np.ndarray, pred: np.ndarray, chosen: set[int]) -> list[int]:
    """Greedy picks, best predicted first, until every (key, value) level (a column of the one-hot
    matrix ``x``) appears in at least one chosen config: the per-level corrections then have data
    for every level, so a level the model undervalues can still be discovered."""
    covered = x[sorted(chosen)].sum(axis=0) > 0 if chosen else np.zeros(x.shape[1], bool)
    picks: list[int] = []
    while not covered.all() and len(picks) < x.shape[1]:
        gain = x[:, ~covered].sum(axis=1)
        gain[list(chosen | set(picks))] = -1
        if gain.max() <= 0:
            break
        best = np.flatnonzero(gain == gain.max())
        pick = int(best[np.argmin(pred[best])])
        picks.append(pick)
        covered |= x[pick] > 0
    return picks


def first_round(ranked: Sequence[int], x: np.ndarray, pred: np.ndarray, priors: Sequence[int], first: int) -> list[int]:
    """The model strategy's first round: priors, the ``first`` best ranked, then level coverage."""
    queue = list(priors) + [i for i in ranked if i not in set(priors)][:first]
    return queue + coverage_picks(x, pred, set(queue))


def model_plan(pred: np.ndarray, x: np.ndarray, priors: Sequence[int] = (), first: int = 2) -> list[int]:
    """The learned model strategy's order without feedback: its first round, then the rest by
    prediction (what `ModelGuided.plan` returns when it has the learned correction)."""
    ranked = [int(i) for i in np.argsort(pred, kind="stable")]
    head = first_round(ranked, x, pred, priors, first)
    seen = set(head)
    return head + [i for i in ranked if i not in seen]


class Bayes(_Listed):
    """optuna TPE over the six config keys (categorical, each over the values in the candidates).

    A sampled combination that is outside the candidate list (pruned) or already measured is told
    to optuna as failed and replaced by the nearest unmeasured candidate (L1 distance over each
    key's value positions, ties broken by the seeded generator), which is enqueued and asked as
    the next trial: at most two trials per measurement, so the study stays small and the
    strategy always ends. Sets optuna's logger to WARNING (it prints every trial at INFO)."""

    name = "bayes"

    def __init__(self, candidates: Sequence[Config], priors: Sequence[Config] = (), seed: int = 0) -> None:
        super().__init__(candidates, priors)
        try:
            import optuna
        except ImportError:
            raise UserError("strategy 'bayes' needs optuna: pip install 'accelsim[tune]' (or pip install optuna)") \
                from None
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.choices = {k: sorted({c[k] for c in self.candidates}) for k in CONFIG_KEYS}
        self.dists = {k: optuna.distributions.CategoricalDistribution(v) for k, v in self.choices.items()}
        self.pos = np.array([[self.choices[k].index(c[k]) for k in CONFIG_KEYS] for c in self.candidates])
        self.rng = np.random.default_rng(seed)
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=8)
        self.study = optuna.create_study(direction="minimize", sampler=sampler)
        for i in self.priors:
            self.study.enqueue_trial(dict(self.candidates[i]))
        self.pending: dict[int, Any] = {}

    def _nearest_unproposed(self, params: dict[str, Any]) -> int:
        here = np.array([self.choices[k].index(params[k]) for k in CONFIG_KEYS])
        dist = np.abs(self.pos - here).sum(axis=1).astype(float)
        dist[list(self.proposed)] = np.inf
        best = np.flatnonzero(dist == dist.min())
        return int(self.rng.choice(best))

    def ask(self, n: int) -> list[Config]:
        if len(self.proposed) >= len(self.candidates) or self.pending:
            return []
        trial = self.study.ask(self.dists)
        i = self.index.get(tuple(int(trial.params[k]) for k in CONFIG_KEYS))
        if i is None or i in self.proposed:
            j = self._nearest_unproposed(trial.params)
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
            self.study.enqueue_trial(dict(self.candidates[j]))
            trial = self.study.ask(self.dists)
            i = self.index.get(tuple(int(trial.params[k]) for k in CONFIG_KEYS))
            if i is None or i in self.proposed:  # not the enqueued config: measure j untracked
                self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
                return self._take([j], 1)
        self.pending[i] = trial
        return self._take([i], 1)

    def tell(self, config: Config, measurement: Measurement) -> None:
        super().tell(config, measurement)
        trial = self.pending.pop(self.index[as_tuple(config)], None)
        if trial is None:
            return
        if measurement.ok:
            self.study.tell(trial, math.log(measurement.median_s))
        else:
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)


def make_strategy(name: str, candidates: Sequence[Config], *, problem: Problem, limits: DeviceLimits,
                  chip: Any = None, priors: Sequence[Config] = (), seed: int = 0, ranker: Any = "default") -> Any:
    """Build a strategy by name. ``chip`` (an accelsim.spec.Chip) is needed by "model" only, and so
    is ``ranker``: "default" = the fitted parameters in accelsim/tune/data/costmodel-params.json
    (with the device generation's analytical factors), None = the analytical model alone, or a
    `ranker.Ranker`. Raises UserError for an unknown name or a missing optional dependency."""
    if name == "exhaustive":
        return Exhaustive(candidates, priors)
    if name == "random":
        return RandomSearch(candidates, priors, seed=seed)
    if name == "model":
        if chip is None:
            raise UserError(f"strategy 'model' needs chip peaks; no hwmodels/ chip for device '{limits.name}'")
        factors = None
        if isinstance(ranker, str):
            from accelsim.tune.ranker import load, load_factors

            ranker, factors = load(), load_factors(limits.generation)
        return ModelGuided(candidates, problem, limits, chip, priors, ranker=ranker, factors=factors)
    if name == "bayes":
        return Bayes(candidates, priors, seed=seed)
    raise UserError(f"unknown strategy '{name}' (valid: {', '.join(STRATEGIES)})")


DEFAULT_BUDGET_CAP = 256


def default_budget(name: str, n_candidates: int) -> int:
    """Evaluations when --budget is not given: all for exhaustive, else 10% of the pruned space,
    at least 16 and at most DEFAULT_BUDGET_CAP (the tuning space holds up to ~28k configs after
    pruning; on held-out shipped winners the learned model's order puts the winner within its
    first 256 in most cases: benchmarks/bench_tune_real_labels.py), and never more than all."""
    if name == "exhaustive":
        return n_candidates
    return min(n_candidates, DEFAULT_BUDGET_CAP, max(16, math.ceil(0.1 * n_candidates)))
