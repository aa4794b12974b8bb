#!/usr/bin/env python
"""Time the fused-MoE Triton layer against its peers on a GPU; print a table and write a CSV.

Peers (each a whole MoE layer call: routing, GEMMs, activation, combine):
  triton      kernels.moe.fused_moe(impl="triton")
  grouped_mm  kernels.moe.baselines.grouped_mm_moe (two torch._grouped_mm calls)
  loop        kernels.moe.baselines.per_expert_loop_moe (eager per-expert GEMMs)
  reference   kernels.moe.fused_moe(impl="reference") (fp32 compute; the test oracle)

Timing (median): every impl with triton.testing.do_bench (clears L2 before each call; includes
host launch overhead) -> eager_us. triton and grouped_mm never sync the host, so they are also
captured in a CUDA graph (do_bench_cudagraph: device time, as vLLM's published numbers are taken;
no L2 flush, but every shape streams >= 352 MB of weights, far beyond a 50 MB L2) -> time_us.
loop and reference sync the host, so their time_us is the eager time; column `timer` says which.
FLOPs and bytes come from accelsim.ops.fused_moe_counts, the project's single operator count;
% of roofline is max(FLOPs / peak FLOP/s, bytes / peak B/s) / time_us. Every row has provenance.

  python benchmarks/bench_moe_kernel.py [--quick] [--out reports/bench_moe_kernel.csv]
  python benchmarks/bench_moe_kernel.py --cpu-smoke   # no GPU: one tiny shape, Triton interpreter
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # runnable as a plain script from any directory
    sys.path.insert(0, str(REPO))

# Only accelsim.ops/spec/measurements (and the stdlib accelsim.io they use) on the GPU box.
from accelsim import measurements  # noqa: E402
from accelsim.io import write_csv  # noqa: E402
from accelsim.ops import fused_moe_counts  # noqa: E402
from accelsim.spec import load_chip  # noqa: E402


class MoEShape(NamedTuple):
    experts: int
    hidden: int
    inter: int
    top_k: int
    scoring: str
    renormalize: bool


SHAPES = {
    "mixtral_tp2": MoEShape(8, 4096, 7168, 2, "softmax", True),
    "llama4_scout": MoEShape(16, 5120, 8192, 1, "sigmoid", False),
    "llama4_maverick": MoEShape(128, 5120, 8192, 1, "sigmoid", False),
    "deepseek_v3": MoEShape(256, 7168, 2048, 8, "sigmoid", True),
}
M_VALUES = [2**i for i in range(13)]  # 1 .. 4096
QUICK_SHAPES = ("mixtral_tp2", "deepseek_v3")
QUICK_M = (1, 64, 1024)
IMPLS = ("triton", "grouped_mm", "loop", "reference")
GRAPH_SAFE = ("triton", "grouped_mm")  # no host syncs: capturable in a CUDA graph
SMOKE_SHAPE = MoEShape(4, 32, 32, 2, "softmax", True)
H100_SXM = load_chip("h100-sxm")  # default roofline: dense bf16 peak and HBM bandwidth from the catalog

FIELDS = ["model", "impl", "m", "experts", "hidden", "inter", "top_k", "dtype", "time_us", "p20_us", "p80_us",
          "timer", "eager_us",
          "tflops", "tbps", "pct_roofline", "flops", "bytes", "rel_err_vs_ref", "config", "config_source", "note",
          "device_name", "compute_capability", "driver_version", "cuda_runtime", "torch_version",
          "triton_version", "git_commit", "date_utc"]


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20, cwd=REPO).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def provenance(device: torch.device) -> dict[str, str]:
    """Device, driver, library versions, commit and date for every CSV row: the measurement schema's
    ``accelsim.measurements.provenance`` under this CSV's column names, plus the CUDA runtime."""
    if device.type == "cuda":
        dev = {"device": torch.cuda.get_device_name(device),
               "compute_capability": "{}.{}".format(*torch.cuda.get_device_capability(device)),
               "driver": _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]).split("\n")[0]}
    else:
        dev = {"device": "cpu (TRITON_INTERPRET=1)"}
    p = measurements.provenance("bench_moe_kernel", **dev)
    return {"device_name": p["device"], "compute_capability": p["compute_capability"],
            "driver_version": p["driver"] or "unknown", "cuda_runtime": str(torch.version.cuda),
            "torch_version": p["torch_version"], "triton_version": p["triton_version"],
            "git_commit": p["git_commit"], "date_utc": p["date_utc"]}


def make_inputs(shape: MoEShape, m: int, dtype: torch.dtype, device: torch.device, seed: int):
    """Weights scaled 1/sqrt(fan_in) so activations stay O(1); fresh router logits per seed."""
    gen = torch.Generator(device=device).manual_seed(seed)
    e, h, i = shape.experts, shape.hidden, shape.inter
    x = torch.randn(m, h, device=device, dtype=dtype, generator=gen)
    w1 = torch.randn(e, 2 * i, h, device=device, dtype=dtype, generator=gen).mul_(h**-0.5)
    w2 = torch.randn(e, h, i, device=device, dtype=dtype, generator=gen).mul_(i**-0.5)
    logits = torch.randn(m, e, device=device, dtype=torch.float32, generator=gen)
    return x, w1, w2, logits


def impl_fn(impl: str, shape: MoEShape, x, w1, w2, logits) -> Callable[[], torch.Tensor]:
    from kernels.moe import fused_moe, topk_route
    from kernels.moe.baselines import grouped_mm_moe, per_expert_loop_moe

    k, renorm, scoring = shape.top_k, shape.renormalize, shape.scoring
    if impl in ("triton", "reference"):
        return lambda: fused_moe(x, w1, w2, logits, k, renorm, scoring=scoring, impl=impl)
    peer = grouped_mm_moe if impl == "grouped_mm" else per_expert_loop_moe
    return lambda: peer(x, w1, w2, *topk_route(logits, k, renorm, scoring))


QUANTILES = [0.5, 0.2, 0.8]  # median, p20, p80: the spread the measurement schema records


def time_us(fn: Callable[[], object], device: torch.device, graph: bool,
            args) -> tuple[tuple[float, float, float], float, str]:
    """((median, p20, p80) of `timer`, eager median, timer) in us; see the module docstring. On CPU
    (smoke only) the quantiles are of the wall-clock time of five calls."""
    if device.type != "cuda":
        fn()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e6)
        q = statistics.quantiles(times, n=10, method="inclusive")  # deciles: q[1] = p20, q[7] = p80
        return (statistics.median(times), q[1], q[7]), statistics.median(times), "wall"
    from triton.testing import do_bench, do_bench_cudagraph

    eager_q = tuple(1e3 * float(x) for x in do_bench(fn, warmup=args.warmup_ms, rep=args.rep_ms,
                                                      quantiles=QUANTILES))
    if not graph:
        return eager_q, eager_q[0], "do_bench"
    try:
        q = tuple(1e3 * float(x) for x in do_bench_cudagraph(fn, rep=args.rep_ms, quantiles=QUANTILES))
        return q, eager_q[0], "cudagraph"
    except RuntimeError:  # capture refused: report the eager time, labelled as such
        torch.cuda.synchronize()
        return eager_q, eager_q[0], "do_bench(graph capture failed)"


def bench_cell(model: str, shape: MoEShape, m: int, impls: list[str], args, device, dtype, prov) -> list[dict]:
    """All impls at one (model, M): outputs checked against the reference, then timed."""
    from kernels.moe import resolve_config
    from kernels.moe.reference import rel_err

    x, w1, w2, logits = make_inputs(shape, m, dtype, device, seed=zlib.crc32(f"{model}:{m}".encode()))
    ref = impl_fn("reference", shape, x, w1, w2, logits)()
    flops, nbytes = fused_moe_counts(m, shape.hidden, shape.inter, shape.experts, shape.top_k,
                                     act_bytes=x.element_size(), weight_bytes=w1.element_size())
    roof_s = max(flops / (args.peak_tflops * 1e12), nbytes / (args.peak_tbps * 1e12))
    cfg, source = resolve_config(m, shape.experts, shape.inter, shape.hidden, shape.top_k, dtype, device)
    rows = []
    for impl in impls:
        row = {"model": model, "impl": impl, "m": m, "experts": shape.experts, "hidden": shape.hidden,
               "inter": shape.inter, "top_k": shape.top_k, "dtype": str(dtype).removeprefix("torch."),
               "flops": flops, "bytes": nbytes, "note": "", **prov}
        if impl == "triton":
            row.update(config=json.dumps(cfg, separators=(",", ":")), config_source=source)
        try:
            fn = impl_fn(impl, shape, x, w1, w2, logits)
            out = fn()
            row["rel_err_vs_ref"] = rel_err(out, ref)
            (t_us, p20_us, p80_us), eager_us, timer = time_us(fn, device, impl in GRAPH_SAFE, args)
            t_s = t_us / 1e6
            row.update(time_us=t_us, p20_us=p20_us, p80_us=p80_us, eager_us=eager_us, timer=timer,
                       config_dict=cfg if impl == "triton" else None, tflops=flops / t_s / 1e12,
                       tbps=nbytes / t_s / 1e12, pct_roofline=100 * roof_s / t_s)
        except RuntimeError as exc:  # OOM, or torch._grouped_mm unsupported on this GPU
            row["note"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        rows.append(row)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _fmt(row: dict, key: str, spec: str) -> str:
    value = row.get(key)
    return format(value, spec) if isinstance(value, float) else "-"


def print_table(rows: list[dict]) -> None:
    print(f"{'model':16} {'impl':10} {'M':>5} {'us':>10} {'eager us':>10} {'TFLOP/s':>8} {'TB/s':>6} "
          f"{'%roof':>6} {'relerr':>8}")
    for r in rows:
        print(f"{r['model']:16} {r['impl']:10} {r['m']:>5} {_fmt(r, 'time_us', '10.1f')} "
              f"{_fmt(r, 'eager_us', '10.1f')} {_fmt(r, 'tflops', '8.1f')} {_fmt(r, 'tbps', '6.2f')} "
              f"{_fmt(r, 'pct_roofline', '6.1f')} "
              f"{_fmt(r, 'rel_err_vs_ref', '8.1e')} {r['note']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help=f"only {QUICK_SHAPES} at M in {QUICK_M}")
    p.add_argument("--cpu-smoke", action="store_true", help="no GPU: one tiny shape under TRITON_INTERPRET=1")
    p.add_argument("--models", nargs="+", choices=sorted(SHAPES), default=None)
    p.add_argument("--m", nargs="+", type=int, default=None, help="batch sizes (tokens)")
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    p.add_argument("--peak-tflops", type=float, default=H100_SXM.flops("bf16") / 1e12, help="dense bf16 peak")
    p.add_argument("--peak-tbps", type=float, default=H100_SXM.mem_bw_bytes_per_s / 1e12, help="HBM bandwidth, TB/s")
    p.add_argument("--warmup-ms", type=float, default=25.0)
    p.add_argument("--rep-ms", type=float, default=100.0)
    p.add_argument("--out", type=Path, default=REPO / "reports" / "bench_moe_kernel.csv")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.cpu_smoke:
        # Must precede the first import of kernels.moe.triton_impl: triton fixes the mode at decoration.
        os.environ.setdefault("TRITON_INTERPRET", "1")
        device, dtype = torch.device("cpu"), torch.bfloat16
        plan = [("smoke", SMOKE_SHAPE, m) for m in (args.m or [1, 5])]
    elif not torch.cuda.is_available():
        print("bench_moe_kernel: needs a CUDA GPU (use --cpu-smoke for a tiny interpreter run); nothing done")
        return 0
    else:
        device, dtype = torch.device("cuda"), torch.bfloat16
        models = args.models or (list(QUICK_SHAPES) if args.quick else list(SHAPES))
        ms = args.m or (list(QUICK_M) if args.quick else M_VALUES)
        plan = [(name, SHAPES[name], m) for name in models for m in ms]
    prov = provenance(device)
    rows: list[dict] = []
    for model, shape, m in plan:
        cell = bench_cell(model, shape, m, args.impls, args, device, dtype, prov)
        print_table(cell)
        rows.extend(cell)
        # Atomic, after every cell: an interrupted run keeps what it measured, in FIELDS order.
        write_csv(args.out, [{k: r.get(k, "") for k in FIELDS} for r in rows])
        n_meas = measurements.write(measurements_path(args.out), schema_rows(rows, device))
    print(f"wrote {len(rows)} rows to {args.out} and {n_meas} Triton rows to {measurements_path(args.out)}")
    return 0


def measurements_path(out: Path) -> Path:
    return out.with_name(out.stem + ".measurements.csv")


def schema_rows(rows: list[dict], device: torch.device) -> list[dict]:
    """The Triton kernel's timed rows in the `accelsim.measurements` schema (calibration and replay
    data; the peers stay in the comparison CSV only, as they are not configs of this kernel)."""
    dev = {"device": rows[0]["device_name"], "device_kind": "gpu" if device.type == "cuda" else "cpu",
           "compute_capability": rows[0]["compute_capability"], "driver": rows[0]["driver_version"]} if rows else {}
    prov = measurements.provenance("bench_moe_kernel", **dev)
    return [measurements.row(op="fused_moe", name="triton_fused_moe", dtype=r["dtype"], config=r["config_dict"],
                             shape={"E": r["experts"], "H": r["hidden"], "I": r["inter"], "top_k": r["top_k"],
                                    "M": r["m"]},
                             flops=r["flops"], bytes=r["bytes"], median_s=r["time_us"] / 1e6,
                             p20_s=r["p20_us"] / 1e6, p80_s=r["p80_us"] / 1e6,
                             reps=0,  # do_bench picks the count from --rep-ms and does not report it
                             **prov)
            for r in rows if r["impl"] == "triton" and "time_us" in r]


if __name__ == "__main__":
    sys.exit(main())
