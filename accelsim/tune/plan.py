"""`accelsim tune --dry-run`: what a run would measure first, with the cost model's predicted times.

For each batch size: the search space (a replay's recorded configs, else `space.tune_space`), the
pruned candidates, the priors mapped to their equivalents, and the strategy's ``plan()`` (its
order without feedback) cut to the run's budget. Each planned config carries the cost model's
predicted seconds per call (`ranker.predict_seconds`: analytical model x learned correction;
fidelity "calibrated" when the device's GPU generation has factors fitted on measured fused-MoE
latencies, else "analytical"). Nothing is measured or stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from accelsim.errors import UserError
from accelsim.tune.core import Budget
from accelsim.tune.space import Problem, as_config, config_arrays, device_limits, prune


def dry_run(problem: Problem, batches: Sequence[int], strategy: str, device: str, *, budget: Budget | None = None,
            prior_files: Sequence[Any] = (), seed: int = 0, replay: Any = None) -> dict[str, Any]:
    """The JSON of `accelsim tune --dry-run --json` (see module doc)."""
    from accelsim.tune.jobs import chip_for, map_priors, search_space
    from accelsim.tune.ranker import load, load_factors, predict_seconds
    from accelsim.tune.strategies import default_budget, make_strategy

    limits = device_limits(device)
    chip = chip_for(limits)
    if chip is None:
        raise UserError(f"--dry-run needs chip peaks for '{device}' (no hwmodels/ chip for {limits.name})")
    synthetic = bool(getattr(replay, "synthetic", False))  # a made-up GPU: the analytical model alone
    ranker, factors = (None, None) if synthetic else (load(), load_factors(limits.generation))
    out: dict[str, Any] = {"strategy": strategy, "device": limits.name, "shape": problem.shape,
                           "fidelity": "calibrated" if factors is not None else "analytical",
                           "cost_model": (ranker.provenance.get("source", "fitted parameters") if ranker
                                          else "analytical model only (no fitted parameters)"),
                           "batch_sizes": []}
    for m in batches:
        p = problem.with_m(m)
        space = search_space(replay, p) if replay is not None else search_space(None, p)
        candidates, _ = prune(space, p, limits)
        if not candidates:
            raise UserError(f"no candidate configs left after pruning at M={m}")
        priors = map_priors([c for f in prior_files for c in f.priors(m)], p, candidates)
        strat = make_strategy(strategy, candidates, problem=p, limits=limits, chip=chip, priors=priors, seed=seed,
                              ranker=None if synthetic else "default")
        order = strat.plan()
        n = (budget.evaluations if budget else None) or default_budget(strategy, len(candidates))
        pred, _ = predict_seconds(p, limits, chip, config_arrays(candidates), ranker, factors)
        plan = [{"config": as_config(tuple(candidates[i].values())), "predicted_s": float(f"{pred[i]:.4e}")}
                for i in order[:n]]
        out["batch_sizes"].append({"batch_size": m, "space_size": len(space), "pruned_size": len(candidates),
                                   "priors_mapped": len(priors), "planned": len(plan),
                                   "order_note": _ORDER_NOTE.get(strategy, ""), "plan": plan})
    if len(out["batch_sizes"]) == 1:  # one batch size: its plan at the top level too
        only = out["batch_sizes"][0]
        out.update({k: only[k] for k in ("plan", "space_size", "pruned_size")})
    return out


_ORDER_NOTE = {
    "model": "after the first round, measurements re-rank the rest (refitted factors and corrections)",
    "bayes": "after the priors, TPE's order depends on measurements; shown: its candidates in list order",
    "random": "seeded permutation after the priors",
    "exhaustive": "space order",
}
