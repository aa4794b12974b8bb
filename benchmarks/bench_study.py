"""Benchmark the studies: wall time of the full `mtia_roadmap` study and of every shipped study at
its reduced size, each as a fresh `accelsim study` process (start-up, imports and report writing
included), plus the time the runner itself reported.

Target (issue 7): the full `mtia_roadmap` study under 60 s on 2 cores.
Usage: python benchmarks/bench_study.py [--out benchmarks/results/study.csv] [--repeats 3] [--studies a b]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from accelsim.io import write_csv

TARGET_S = {"mtia_roadmap (full)": 60.0}
DEFAULT = ("mtia_roadmap", "hbm_vs_flops", "power_budget_1gw", "moe_kernel_tuning")


def time_study(name: str, reduced: bool, repeats: int) -> dict:
    walls, inner = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            argv = [sys.executable, "-m", "accelsim", "study", name, "--out", out, "--json"]
            argv += ["--reduced"] if reduced else []
            t0 = time.perf_counter()
            done = subprocess.run(argv, check=True, capture_output=True, text=True,
                                  env={**os.environ, "PYTHONWARNINGS": "ignore"})
            walls.append(time.perf_counter() - t0)
            result = json.loads(done.stdout)
            inner.append(result["wall_s"])
            size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    case = f"{name} ({'reduced' if reduced else 'full'})"
    target = TARGET_S.get(case)
    med = statistics.median(walls)
    return {"case": case, "repeats": repeats, "wall_s_median": med, "wall_s_min": min(walls),
            "runner_s_median": statistics.median(inner), "tables": len(result["tables"]),
            "report_bytes": size, "target_s": target if target else "",
            "meets_target": (med < target) if target else ""}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results/study.csv")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--studies", nargs="+", default=list(DEFAULT))
    args = ap.parse_args()
    rows = [time_study("mtia_roadmap", False, args.repeats)]
    rows += [time_study(name, True, args.repeats) for name in args.studies]
    print(f"{'case':34s} {'wall s':>8s} {'min s':>8s} {'runner s':>9s} {'tables':>6s} {'MB':>6s}  target")
    for r in rows:
        tgt = f"< {r['target_s']:g} s: {'ok' if r['meets_target'] else 'MISSED'}" if r["target_s"] else ""
        print(f"{r['case']:34s} {r['wall_s_median']:8.2f} {r['wall_s_min']:8.2f} {r['runner_s_median']:9.2f} "
              f"{r['tables']:6d} {r['report_bytes'] / 1e6:6.1f}  {tgt}")
    write_csv(args.out, rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
