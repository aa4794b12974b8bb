"""Benchmark the Pareto front and the layout search: wall time of `accelsim pareto` and of
`accelsim predict` (layout searched) for each model x chip, each in a fresh process, plus the
disaggregated split search. Peers (AIConfigurator, GenZ, Vidur, llm-analysis) are timed side by
side only where they are installed; otherwise the table says so.

Target (issue 15): front + layout search <= 1 s per model x chip in a fresh process.
Usage: python benchmarks/bench_pareto.py [--out benchmarks/results/pareto.csv] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

from accelsim.io import write_csv

MODELS = ("llama4-maverick", "llama4-scout", "llama3-70b")
CHIPS = ("mtia-450", "h200-sxm", "b200")
# Python packages of the peers (PyPI / repo names); timed only when importable here.
PEERS = {"aiconfigurator": "aiconfigurator", "GenZ (genz-llm)": "GenZ", "vidur": "vidur",
         "llm-analysis": "llm_analysis"}


def wall(argv: list[str], repeats: int) -> tuple[float, float, float]:
    """(median wall s, max wall s, median CPU s) of a fresh process: the CPU time (user + system of
    the child) is what the command costs; the wall time also holds the wait for a busy machine's cores."""
    times, cpu = [], []
    for _ in range(repeats):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        if subprocess.run(argv, capture_output=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}).returncode:
            raise SystemExit(f"failed: {' '.join(argv[2:])}")
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
    return statistics.median(times), max(times), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/pareto.csv")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    py = [sys.executable, "-m", "accelsim"]
    rows = []
    for model in MODELS:
        for chip in CHIPS:
            for what, argv in (
                ("pareto front (all layouts x batches, SLO TPOT 50 ms)",
                 [*py, "pareto", "--hw", chip, "--model", model, "--max-tpot", "0.05", "--json"]),
                ("predict, layout searched (--chips 64)",
                 [*py, "predict", "--hw", chip, "--model", model, "--chips", "64", "--dtype", "fp8"]),
            ):
                med, mx, cpu = wall(argv, args.repeats)
                rows.append({"tool": "accelsim", "benchmark": what, "model": model, "hw": chip, "median_s": med,
                             "max_s": mx, "cpu_s": cpu, "target": "<= 1 s", "meets": med <= 1.0})
    split = [*py, "predict", "--model", "llama4-maverick", "--disagg", "mtia-400,mtia-450", "--chips", "64",
             "--dtype", "fp8", "--max-tpot", "0.05"]
    med, mx, cpu = wall(split, args.repeats)
    rows.append({"tool": "accelsim", "benchmark": "disaggregated split search (63 splits)", "model": "llama4-maverick",
                 "hw": "mtia-400 + mtia-450", "median_s": med, "max_s": mx, "cpu_s": cpu, "target": "<= 1 s",
                 "meets": med <= 1.0})
    for name, module in PEERS.items():
        installed = importlib.util.find_spec(module) is not None
        rows.append({"tool": name, "benchmark": "peer, side by side", "model": "", "hw": "",
                     "median_s": "" if not installed else "installed: add its command here",
                     "max_s": "", "cpu_s": "", "target": "",
                     "meets": "not installed on this machine" if not installed else ""})
    load = os.getloadavg()[0]
    for r in rows:
        r["machine"] = (f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
                        f"load average {load:.1f}")
    write_csv(args.out, rows)
    print(f"{'tool':16s} {'benchmark':52s} {'model':16s} {'hw':20s} {'median s':>9s} {'max s':>7s} {'CPU s':>6s}  "
          f"meets   (load average {load:.1f})")
    num = lambda v, w: f"{v:{w}.3f}" if isinstance(v, float) else f"{'-':>{w}s}"
    for r in rows:
        print(f"{r['tool']:16s} {r['benchmark']:52s} {r['model']:16s} {r['hw']:20s} {num(r['median_s'], 9)} "
              f"{num(r['max_s'], 7)} {num(r['cpu_s'], 6)}  {r['meets']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
