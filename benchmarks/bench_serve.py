"""Benchmark of the serving simulator: simulated requests per wall-clock second and peak memory.

Scenarios (Llama 3 8B, bf16, one H100 per replica, lognormal lengths around 1000 in / 250 out, Poisson
arrivals at 80% of the replica's predicted saturated capacity from `accelsim.predict.llm_metrics`):
  one-replica       1 replica
  64-replicas       64 replicas behind the least-outstanding router
  memory            64 replicas, `--requests` requests in total (default 1,000,000): peak RSS growth

Target (issue 6): >= 20,000 simulated requests per second on 2 cores, so a million requests take
under a minute. Prints a table and writes a CSV (default benchmarks/results/serve.csv). Wall time
counts other processes sharing the cores; CPU time (time.process_time) is this process's own.

    python benchmarks/bench_serve.py [--requests 1000000] [--out benchmarks/results/serve.csv]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time

import numpy as np

from accelsim.graph import Parallel, Precision
from accelsim.io import write_csv
from accelsim.perf import HwVec
from accelsim.predict import llm_metrics
from accelsim.serve.cluster import simulate
from accelsim.serve.config import ReplicaGroup, SimConfig, Traffic
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack

HW, MODEL, IN, OUT, LOAD = "h100-sxm", "llama3-8b", 1000, 250, 0.8


def capacity_rps(max_seqs: int = 256) -> float:
    chip, model, eff = load_chip(HW), load_model(MODEL), load_stack()
    m = llm_metrics(HwVec.from_chips([chip], shape=(1,)), model, Parallel(), Precision.for_serving("bf16"), IN, OUT,
                    np.asarray([float(max_seqs)]), eff)
    return float(m.throughput_replica[0]) / OUT


def run(replicas: int, requests: int, rps_per_replica: float) -> dict[str, float]:
    rate = rps_per_replica * replicas
    cfg = SimConfig(groups=(ReplicaGroup(HW, MODEL, replicas=replicas),),
                    traffic=Traffic(rate_per_s=rate, input_len=IN, output_len=OUT), duration_s=requests / rate,
                    seed=1)
    gc.collect()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    s = simulate(cfg).summary
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"replicas": replicas, "requests": s["requests_arrived"], "steps": s["simulated_steps"],
            "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "requests_per_wall_s": round(s["requests_arrived"] / wall),
            "requests_per_cpu_s": round(s["requests_arrived"] / cpu),
            "steps_per_wall_s": round(s["simulated_steps"] / wall),
            "peak_rss_growth_mb": round(max(rss1 - rss0, 0) / 1024, 1), "peak_rss_mb": round(rss1 / 1024, 1),
            "ttft_p99_s": round(s["ttft_p99_s"], 4), "tpot_p50_s": round(s["tpot_p50_s"], 5)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1_000_000, help="requests in the memory run")
    ap.add_argument("--out", default="benchmarks/results/serve.csv", help="CSV path")
    args = ap.parse_args(argv)
    rps = LOAD * capacity_rps()
    rows = [dict(scenario="one-replica", **run(1, min(args.requests, 100_000), rps)),
            dict(scenario="64-replicas", **run(64, min(args.requests, 200_000), rps)),
            dict(scenario="memory", **run(64, args.requests, rps))]
    print(f"{MODEL} on {HW}, {IN}/{OUT} tokens, {rps:.2f} req/s per replica ({LOAD:.0%} of predicted capacity)")
    print(f"{'scenario':12s} {'replicas':>8s} {'requests':>10s} {'wall s':>8s} {'req/wall s':>10s} "
          f"{'req/CPU s':>10s} {'steps/wall s':>12s} {'RSS +MB':>8s} {'RSS MB':>8s}")
    for r in rows:
        print(f"{r['scenario']:12s} {r['replicas']:8d} {r['requests']:10,d} {r['wall_s']:8.2f} "
              f"{r['requests_per_wall_s']:10,d} {r['requests_per_cpu_s']:10,d} {r['steps_per_wall_s']:12,d} "
              f"{r['peak_rss_growth_mb']:8.1f} {r['peak_rss_mb']:8.1f}")
    print("(wall time counts other processes sharing the cores; CPU time is this process's own)")
    write_csv(args.out, rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
