#!/usr/bin/env python
"""Tune the fused-MoE Triton kernel on a GPU, exhaustively and model-guided; write measurements,
exported vLLM configs and a summary (tuning-time speed-up, kernel time vs vLLM's published times).

Ready for an H100 (needs torch, triton, numpy, scipy; no rich/optuna/simpy):

  python benchmarks/gpu_tune_moe.py --out-dir reports/gpu_tune_moe
  python benchmarks/gpu_tune_moe.py --shapes mixtral-tp2 --batch-sizes 1,16,128 --strategies model
  python benchmarks/gpu_tune_moe.py --cpu-smoke   # no GPU: interpreter, tiny shape, 2 configs

Per shape (Mixtral 8x7B TP2, Llama 4 Scout, Llama 4 Maverick; sizes from workloads/) and batch
size, each strategy runs against bench.GpuDevice (correctness gate, then CUDA-graph timing with L2
flush and fresh routing per repetition). `model` runs first, exhaustive second: the exhaustive
sweep then finds the model's configs already compiled in Triton's cache, so the reported
tuning-time speed-up is conservative. Each strategy has its own SQLite store so neither reuses
the other's measurements. Expect the first batch size of a shape to be dominated by compilation
(~1,000+ configs x 2 kernels); later batch sizes reuse the compiled kernels.

Outputs in --out-dir: measurements.csv (accelsim.measurements schema, tool=gpu_tune_moe, one row
per ok config and strategy; calibration and replay data), configs/<strategy>/E=..,N=..,device_name=..json,
summary.csv (per shape, batch size, strategy: best time, measured configs, wall time; the vLLM
published time where one exists).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHAPES = ("mixtral-tp2", "scout", "maverick")
BATCHES = (1, 16, 128, 1024, 1536, 4096)
# vLLM PR #24700, tuned config, H100, Mixtral bf16 TP2, whole fused_moe call (kernels_and_tuners.md §5.2).
VLLM_PUBLISHED_US = {("mixtral-tp2", 1): 144.0, ("mixtral-tp2", 16): 471.5, ("mixtral-tp2", 128): 491.4,
                     ("mixtral-tp2", 1024): 833.7, ("mixtral-tp2", 1536): 1122.9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--batch-sizes", default=",".join(map(str, BATCHES)))
    parser.add_argument("--strategies", default="model,exhaustive")
    parser.add_argument("--budget", default=None, help="model budget per batch size (default: 10%% of the space)")
    parser.add_argument("--timer", choices=("cuda_graph", "do_bench"), default="cuda_graph")
    parser.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp8"))
    parser.add_argument("--out-dir", default="reports/gpu_tune_moe")
    parser.add_argument("--cpu-smoke", action="store_true", help="interpreter, tiny shape, 2 configs (no GPU)")
    args = parser.parse_args(argv)
    if args.cpu_smoke:
        os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton
    from accelsim.tune.core import Budget, tune
    from accelsim.tune.space import Problem, named_shape, parse_batch_sizes, prune, vllm_space
    from accelsim.tune.store import ResultStore
    from accelsim.tune.strategies import default_budget, make_strategy

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device, limits, chip = _device(args)
    if args.cpu_smoke:
        problems = {"smoke": [Problem(4, 64, 64, 2, "fp16", 4)]}
    else:
        batches = parse_batch_sizes(args.batch_sizes)
        problems = {s: [named_shape(s, m, args.dtype) for m in batches] for s in args.shapes.split(",")}
    measurements, summary = [], []
    for strategy in args.strategies.split(","):
        store = ResultStore(out_dir / f"tune-{strategy}.sqlite", device.fingerprint)
        for shape, plist in problems.items():
            best: dict[int, dict[str, int]] = {}
            for problem in plist:
                candidates, _ = prune(vllm_space(), problem, limits)
                if args.cpu_smoke:
                    candidates = candidates[:2]
                strat = make_strategy(strategy, candidates, problem=problem, limits=limits, chip=chip)
                budget = Budget.parse(args.budget) if args.budget and strategy != "exhaustive" else \
                    Budget(evaluations=default_budget(strategy, len(candidates)))
                result = tune(problem, strat, device, budget=budget, sink=store)
                if result.best_config is not None:
                    best[problem.m] = result.best_config
                measurements += _rows(problem, result, strategy, device)
                published = VLLM_PUBLISHED_US.get((shape, problem.m))
                summary.append({
                    "shape": shape, "batch_size": problem.m, "strategy": strategy, "candidates": len(candidates),
                    "measured": result.measured, "from_store": result.from_store, "not_ok": str(result.not_ok),
                    "wall_s": round(result.wall_s, 2),
                    "best_us": None if result.best_time_s is None else round(result.best_time_s * 1e6, 2),
                    "best_config": result.best_config, "vllm_published_us": published,
                    "device": device.fingerprint.get("device", "")})
                print(f"{shape} M={problem.m} {strategy}: best {summary[-1]['best_us']} us, "
                      f"{result.measured} measured, {result.wall_s:.1f} s", flush=True)
            if best:
                from accelsim.tune.export import write_file

                plist0 = plist[0]
                path = write_file(out_dir / "configs" / strategy, plist0.experts, plist0.inter,
                                  device.fingerprint.get("device", "unknown"), plist0.dtype, best,
                                  device.fingerprint.get("triton"))
                print(f"wrote {path}")
        store.close()
    from accelsim.io import write_csv
    from accelsim.measurements import write

    write(out_dir / "measurements.csv", measurements)
    write_csv(out_dir / "summary.csv", summary)
    _print_speedup(summary)
    print(f"wrote {len(measurements)} measurements and {len(summary)} summary rows to {out_dir}")
    return 0


def _device(args: argparse.Namespace):
    from accelsim.spec import load_chip
    from accelsim.tune.space import device_limits

    if args.cpu_smoke:
        from accelsim.tune.fingerprint import kernel_source_hash
        from accelsim.tune.gate import Gate, GatedDevice

        timer = _WallClockTimer({"device": "cpu-interpreter", "kernel_hash": kernel_source_hash(),
                                 "tool": "gpu_tune_moe --cpu-smoke"})
        return GatedDevice(timer, Gate("cpu")), device_limits("h100-sxm"), load_chip("h100-sxm")
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("gpu_tune_moe: no CUDA GPU (use --cpu-smoke to check the pipeline on a CPU)")
    from accelsim.tune.bench import GpuDevice
    from accelsim.tune.jobs import chip_for, limits_for

    device = GpuDevice("cuda", timer=args.timer)
    limits = limits_for(device)
    return device, limits, chip_for(limits)


class _WallClockTimer:
    """CPU smoke only: wall time of one interpreted call. Not a kernel timing; labelled as such."""

    timed = True

    def __init__(self, fingerprint: dict[str, str]) -> None:
        self.fingerprint = fingerprint

    def measure(self, problem, config):
        from accelsim.tune.core import Measurement
        from accelsim.tune.gate import make_inputs
        from kernels.moe import fused_moe

        inputs = make_inputs(problem, "cpu", 0)
        t0 = time.perf_counter()
        fused_moe(top_k=problem.top_k, config=dict(config), impl="triton", **inputs)
        t = time.perf_counter() - t0
        return Measurement("ok", t, t, t, 1, message="cpu interpreter wall time (not a kernel timing)")


def _rows(problem, result, strategy: str, device) -> list[dict]:
    from accelsim.measurements import provenance, row
    from accelsim.ops import fused_moe_counts

    fp = device.fingerprint
    prov = provenance("gpu_tune_moe" if "cpu" not in fp.get("device", "") else "gpu_tune_moe --cpu-smoke",
                      device=fp.get("device", ""), device_kind="cpu" if "cpu" in fp.get("device", "") else "gpu",
                      compute_capability=fp.get("compute_capability", ""), driver=fp.get("driver", ""))
    flops, nbytes = fused_moe_counts(problem.m, problem.hidden, problem.inter, problem.experts, problem.top_k,
                                     problem.elem_bytes, problem.elem_bytes)
    shape = {"E": problem.experts, "H": problem.hidden, "I": problem.inter, "top_k": problem.top_k, "M": problem.m}
    return [row(op="fused_moe", name=f"triton_fused_moe[{strategy}]", dtype=problem.dtype, shape=shape,
                config=cfg, flops=flops, bytes=nbytes, median_s=m.median_s, p20_s=m.p20_s, p80_s=m.p80_s,
                reps=m.reps, **prov)
            for cfg, m, source in result.history if m.ok and source == "measured"]


def _print_speedup(summary: list[dict]) -> None:
    by = {(s["shape"], s["batch_size"], s["strategy"]): s for s in summary}
    print(f"{'shape':>12} {'M':>5} {'exh us':>9} {'model us':>9} {'model/exh':>9} {'meas ratio':>10} "
          f"{'wall speed-up':>13} {'vLLM us':>8}")
    for (shape, m, strategy), s in by.items():
        if strategy != "exhaustive" or (shape, m, "model") not in by:
            continue
        mod = by[(shape, m, "model")]
        if not s["best_us"] or not mod["best_us"]:
            continue
        print(f"{shape:>12} {m:>5} {s['best_us']:>9.1f} {mod['best_us']:>9.1f} {mod['best_us'] / s['best_us']:>9.3f} "
              f"{mod['measured'] / max(s['measured'], 1):>10.3f} {s['wall_s'] / max(mod['wall_s'], 1e-9):>12.1f}x "
              f"{s['vllm_published_us'] or '-':>8}")


if __name__ == "__main__":
    sys.exit(main())
