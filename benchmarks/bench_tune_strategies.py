#!/usr/bin/env python
"""Compare the tuner's search strategies on replay data: measurements needed to come within 3% of
the exhaustive best, per (shape, batch size, seed); print a table and write a CSV.

Data: by default SYNTHETIC replay data from accelsim/tune/synthetic.py ("synthetic-h100", not
measurements), generated in memory for three MoE shapes x 13 batch sizes, one noise realisation
per seed; with --replay FILE, a recorded measurements CSV instead (real GPU data when it exists).
Each strategy runs through the same path as `accelsim tune --replay` (pruned space, core.tune, a
ReplayDevice). "hit" = evaluations until the best-so-far is within 3% of the best recorded time of
that problem (the exhaustive optimum); the exhaustive strategy needs all candidates to know it has
it. Target for `model`: within 3% using <= 10% of the exhaustive measurements.

  python benchmarks/bench_tune_strategies.py [--quick] [--seeds 3] [--out reports/bench_tune_strategies.csv]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from accelsim.io import write_csv  # noqa: E402
from accelsim.tune.core import Budget, tune  # noqa: E402
from accelsim.tune.replay import ReplayDevice  # noqa: E402
from accelsim.tune.space import device_limits, named_shape, prune, vllm_space  # noqa: E402
from accelsim.tune.strategies import make_strategy  # noqa: E402
from accelsim.tune.synthetic import replay_rows  # noqa: E402

SHAPES = ("mixtral-tp2", "scout", "deepseek-v3")
BATCHES = tuple(2**i for i in range(13))  # 1 .. 4096
STRATEGIES = ("exhaustive", "random", "model", "bayes")
# Evaluation caps as a fraction of the pruned space: enough to see where each strategy gets to,
# without paying for a full sweep of the slower strategies (a miss is reported as "> cap").
CAPS = {"exhaustive": 1.0, "random": 1.0, "model": 0.35, "bayes": 0.25}
WITHIN = 1.03
TARGET_FRACTION = 0.10


def run_case(strategy: str, device: ReplayDevice, problem, candidates, best_s: float, seed: int, chip) -> dict:
    n = len(candidates)
    cap = max(1, math.ceil(CAPS[strategy] * n))
    # ranker=None: the learned correction describes real GPUs, not the synthetic one (as jobs.run_job)
    strat = make_strategy(strategy, candidates, problem=problem, limits=device_limits("h100-sxm"), chip=chip,
                          seed=seed, ranker=None)
    t0 = time.perf_counter()
    result = tune(problem, strat, device, budget=Budget(evaluations=cap))
    wall = time.perf_counter() - t0
    times = np.array([m.median_s if m.ok else np.inf for _, m, _ in result.history])
    running = np.minimum.accumulate(times) if times.size else np.array([np.inf])
    hits = np.flatnonzero(running <= best_s * WITHIN)
    hit = int(hits[0]) + 1 if hits.size else None
    at_target = max(1, math.ceil(TARGET_FRACTION * n))
    gap = running[min(at_target, running.size) - 1] / best_s - 1
    return {"hit": hit, "cap": cap, "gap_at_10pct": gap, "strategy_wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--batch-sizes", default=",".join(map(str, BATCHES)))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--replay", default=None, help="recorded measurements CSV instead of synthetic data")
    parser.add_argument("--quick", action="store_true", help="one shape, three batch sizes, one seed")
    parser.add_argument("--out", default="reports/bench_tune_strategies.csv")
    args = parser.parse_args(argv)
    shapes = ["mixtral-tp2"] if args.quick else args.shapes.split(",")
    batches = [1, 64, 1024] if args.quick else [int(b) for b in args.batch_sizes.split(",")]
    seeds = 1 if args.quick else args.seeds
    strategies = args.strategies.split(",")
    from accelsim.spec import load_chip

    chip = load_chip("h100-sxm")
    limits = device_limits("synthetic-h100")
    recorded = ReplayDevice(args.replay) if args.replay else None
    data = "replay of " + (args.replay if recorded else "SYNTHETIC data (synthetic-h100; not measurements)")
    print(f"data: {data}; within {100 * (WITHIN - 1):.0f}% of the exhaustive best; "
          f"{len(shapes)} shapes x {len(batches)} batch sizes x {seeds} seeds")
    rows = []
    for shape in shapes:
        for m in batches:
            problem = named_shape(shape, m)
            candidates, _ = prune(vllm_space(), problem, limits)
            for seed in range(seeds):
                device = recorded or ReplayDevice(rows=replay_rows([problem], limits, noise_seed=seed))
                recorded_times = [r.median_s for r in device.configs(problem).values()]
                if not recorded_times:
                    continue
                best_s = min(recorded_times)
                for strategy in strategies:
                    r = run_case(strategy, device, problem, candidates, best_s, seed, chip)
                    rows.append({"strategy": strategy, "shape": shape, "batch_size": m, "seed": seed,
                                 "space": len(vllm_space()), "candidates": len(candidates), "hit": r["hit"],
                                 "hit_fraction": None if r["hit"] is None else r["hit"] / len(candidates),
                                 "cap": r["cap"], "best_us": best_s * 1e6, "gap_at_10pct": r["gap_at_10pct"],
                                 "strategy_wall_s": r["strategy_wall_s"], "data": data})
    print_table(rows, strategies)
    write_csv(args.out, rows)
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


def print_table(rows: list[dict], strategies: list[str]) -> None:
    head = (f"{'strategy':>10} {'cases':>5} {'hit median':>10} {'hit worst':>9} {'% median':>8} {'% worst':>8} "
            f"{'<=10%':>6} {'gap@10% worst':>13} {'sum hit / sum N':>15} {'wall s':>7}")
    print(head)
    for s in strategies:
        rs = [r for r in rows if r["strategy"] == s]
        if not rs:
            continue
        hits = [r["hit"] if r["hit"] is not None else math.inf for r in rs]
        frac = [r["hit_fraction"] if r["hit_fraction"] is not None else math.inf for r in rs]
        ok10 = sum(r["gap_at_10pct"] <= WITHIN - 1 for r in rs) / len(rs)
        total = sum(r["candidates"] for r in rs)
        spent = sum(min(h, r["cap"]) for h, r in zip(hits, rs)) if s != "exhaustive" else total
        worst_hit = max(hits)
        print(f"{s:>10} {len(rs):>5} {statistics.median(hits):>10.0f} "
              f"{(str(worst_hit) if worst_hit != math.inf else '>cap'):>9} {100 * statistics.median(frac):>7.1f}% "
              f"{(f'{100 * max(frac):.1f}%' if max(frac) != math.inf else '>cap'):>8} {100 * ok10:>5.0f}% "
              f"{100 * max(r['gap_at_10pct'] for r in rs):>12.1f}% {spent:>7}/{total:<7} "
              f"{sum(r['strategy_wall_s'] for r in rs):>7.1f}")
    print("hit: evaluations until within 3% of the exhaustive best (exhaustive needs all to know); %: of the "
          "pruned space; <=10%: cases within 3% after 10% of the pruned space; sum hit: for exhaustive, "
          "every candidate")


if __name__ == "__main__":
    sys.exit(main())
