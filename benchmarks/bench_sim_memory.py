"""Peak memory (max RSS) of `accelsim simulate` against simulated duration, and what the bounds refuse.

Each run is a fresh process (`accelsim.cli.main` in a child Python), so its max RSS is its own.
Llama 3 8B, bf16, 4 H100 replicas of one chip, 1000 prompt / 250 output tokens, Poisson arrivals at
half the fleet's predicted saturated capacity (a stable queue: memory is not a backlog).

  fixed-requests   the same number of requests spread over a duration 1e3 .. 1e6 s: memory must not
                   depend on the duration itself (time-series bins, failure processes, steps)
  fixed-rate       a constant rate, so requests grow with the duration: memory grows with requests
                   only (a few NumPy values each), and `accelsim.serve.bounds.MAX_REQUESTS` caps it
  refused          hostile durations, rates and intervals: refused before simulating (exit 2)

Prints a table and writes a CSV (default benchmarks/results/sim_memory.csv).

    python benchmarks/bench_sim_memory.py [--quick] [--out benchmarks/results/sim_memory.csv]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from accelsim.io import write_csv

HW, MODEL, REPLICAS, IN, OUT = "h100-sxm", "llama3-8b", 4, 1000, 250
CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from accelsim.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "wall_s": time.perf_counter() - t0,
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""


def capacity_rps() -> float:
    """Requests/s one replica sustains at 256 running sequences (the engine default), predicted."""
    import numpy as np

    from accelsim.graph import Parallel, Precision
    from accelsim.perf import HwVec
    from accelsim.predict import llm_metrics
    from accelsim.spec import load_chip, load_model
    from accelsim.stacks import load_stack

    m = llm_metrics(HwVec.from_chips([load_chip(HW)], shape=(1,)), load_model(MODEL), Parallel(),
                    Precision.for_serving("bf16"), IN, OUT, np.asarray([256.0]), load_stack())
    return float(m.throughput_replica[0]) / OUT


def run(scenario: str, duration: str, rate: float, *extra: str) -> dict[str, object]:
    argv = ["simulate", "--hw", HW, "--model", MODEL, "--chips", str(REPLICAS), "--tp", "1", "--input-len", str(IN),
            "--output-len", str(OUT), "--arrival-rate", repr(rate), "--duration", duration, "--json", *extra]
    p = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True, timeout=3600)
    lines = p.stderr.strip().splitlines() or ["{}"]
    try:
        stats = json.loads(lines[-1])
    except json.JSONDecodeError:  # the child crashed: say so in the table instead of a number
        stats = {"code": p.returncode, "wall_s": float("nan"), "max_rss_mb": float("nan")}
    summary = json.loads(p.stdout) if stats["code"] == 0 else {}
    err = "" if stats["code"] == 0 else lines[0][:110] if stats["code"] == 2 else f"CRASHED: {lines[-1][:100]}"
    return {"scenario": scenario, "duration": duration, "rate_per_s": round(rate, 4),
            "requests": summary.get("requests_arrived", 0), "exit": stats["code"],
            "max_rss_mb": round(stats["max_rss_mb"], 1), "wall_s": round(stats["wall_s"], 2), "refusal": err}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter series (about a minute)")
    ap.add_argument("--out", default="benchmarks/results/sim_memory.csv")
    args = ap.parse_args()
    rate = 0.5 * REPLICAS * capacity_rps()
    n_fixed = 4_000 if args.quick else 20_000
    rows = [run("fixed-requests", f"{d:g}", n_fixed / d) for d in (1e3, 1e4, 1e5, 1e6)]
    durations = (250, 1000, 2000) if args.quick else (250, 1000, 4000, 16000)
    rows += [run("fixed-rate", f"{d:g}", rate) for d in durations]
    rows += [run("refused", "1e30", rate), run("refused", "3650d", 1e7),
             run("refused", "60", rate, "--interval", "1e-9"), run("refused", "3650d", rate)]
    ok = [r for r in rows if r["exit"] in (0, 2)]
    base = min(r["max_rss_mb"] for r in ok)
    fr = [r for r in ok if r["scenario"] == "fixed-rate"]
    slope = ((fr[-1]["max_rss_mb"] - fr[0]["max_rss_mb"]) * 2**20 / max(fr[-1]["requests"] - fr[0]["requests"], 1))
    print(f"{'scenario':15s} {'duration':>9s} {'rate/s':>9s} {'requests':>9s} {'exit':>4s} {'max RSS MB':>10s} "
          f"{'wall s':>7s}  refusal")
    for r in rows:
        print(f"{r['scenario']:15s} {r['duration']:>9s} {r['rate_per_s']:>9.4g} {r['requests']:>9,} {r['exit']:>4} "
              f"{r['max_rss_mb']:>10.1f} {r['wall_s']:>7.2f}  {r['refusal']}")
    fq = [r["max_rss_mb"] for r in ok if r["scenario"] == "fixed-requests"]
    print(f"fixed requests: max RSS {min(fq):.1f} .. {max(fq):.1f} MB over durations 1e3 .. 1e6 s; "
          f"fixed rate: +{slope:.0f} bytes per request; refused runs stop at {base:.1f} MB")
    write_csv(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
