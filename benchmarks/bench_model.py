"""Benchmark the analytical model: op-level evaluations per second in a vectorised sweep, and the
end-to-end wall time of `accelsim predict` (a fresh process each run), with a pinned layout
(--tp/--ep) and with the layout searched (accelsim.search: every replica layout that fits).

Targets (issue 2): >= 1e6 op-level evaluations/s on 2 cores; `accelsim predict` under 1 s.
Usage: python benchmarks/bench_model.py [--out benchmarks/results/model.csv] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from accelsim.graph import Parallel, Precision, llm_ops
from accelsim.io import write_csv
from accelsim.perf import HwVec, cost
from accelsim.spec import list_chips, load_chip, load_model
from accelsim.stacks import load_stack


def sweep_rate(model_name: str, n_batch: int, n_ctx: int, repeats: int) -> dict:
    chips = [load_chip(n) for n in list_chips()]
    hw = HwVec.from_chips(chips, shape=(len(chips), 1, 1))
    batch = np.geomspace(1, 1024, n_batch).reshape(1, -1, 1)
    ctx = np.geomspace(128, 32768, n_ctx).reshape(1, 1, -1)
    model, eff = load_model(model_name), load_stack()
    par, prec = Parallel(tp=8, ep=8 if model.moe else 1), Precision("fp8", kv="fp8")
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ops = llm_ops(model, par, prec, "decode", batch, ctx)
        c = cost(ops, hw, eff)
        c.total_s.sum()
        times.append(time.perf_counter() - t0)
    points = len(chips) * n_batch * n_ctx
    evals = points * len(ops)
    t = statistics.median(times)
    return {"benchmark": f"decode sweep {model_name}", "design_points": points, "ops_per_point": len(ops),
            "median_s": t, "op_evals_per_s": evals / t, "design_points_per_s": points / t,
            "target": ">= 1e6 op-evals/s"}


def predict_wall(repeats: int, searched: bool = False) -> dict:
    """A fresh `accelsim predict` process: a pinned layout, or (searched) every layout that fits."""
    argv = [sys.executable, "-m", "accelsim", "predict", "--hw", "mtia-450", "--model", "llama4-maverick",
            "--chips", "64", *([] if searched else ["--tp", "8", "--ep", "8"]), "--dtype", "fp8", "--json"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        times.append(time.perf_counter() - t0)
    what = "layout searched" if searched else "layout pinned"
    return {"benchmark": f"accelsim predict end to end ({what})", "median_s": statistics.median(times),
            "max_s": max(times), "target": "< 1 s"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/model.csv")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rows = [sweep_rate("llama3-70b", 128, 64, args.repeats), sweep_rate("llama4-maverick", 128, 64, args.repeats),
            predict_wall(args.repeats), predict_wall(args.repeats, searched=True)]
    for r in rows:
        extra = (f"{r['design_points']:,} points x {r['ops_per_point']} ops in {r['median_s'] * 1e3:.0f} ms: "
                 f"{r['op_evals_per_s']:.3g} op-evals/s" if "op_evals_per_s" in r
                 else f"median {r['median_s']:.3f} s, max {r['max_s']:.3f} s")
        print(f"{r['benchmark']:48s} {extra}   (target {r['target']})")
    write_csv(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
