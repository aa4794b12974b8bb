"""`accelsim tune`: argument parsing and output only; the work is in accelsim.tune's modules.

Imports nothing but argparse and the stdlib at import time (the CLI loads every command module).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any

from accelsim import validate as V
from accelsim.errors import UserError

_DTYPES = ("bf16", "fp16", "fp32", "fp8", "fp8_block")
_STRATEGIES = ("exhaustive", "random", "model", "bayes")
_VLLM_BATCHES = "1,2,4,8,16,24,32,48,64,96,128,256,512,1024,1536,2048,3072,4096"
# The shape the CPU correctness gate runs at under the Triton interpreter (seconds per config).
_GATE_SHAPE = {"experts": 4, "hidden": 64, "inter": 64, "m": 8}
_GATE_CONFIGS = 3
MAX_DIM = 1 << 20  # E, H, I, top-k: far above any MoE layer (DeepSeek-V3: E=256, H=7168)
MAX_WORKERS = 1024


def register(sub: Any) -> None:
    p = sub.add_parser(
        "tune", help="autotune the fused-MoE Triton kernel (on a GPU, or --replay a recorded/synthetic file)",
        description="Search BLOCK_SIZE_M/N/K, GROUP_SIZE_M, num_warps, num_stages per batch size; every "
                    "config is checked against the PyTorch reference before its time counts.")
    p.add_argument("--kernel", choices=("moe",), default="moe")
    p.add_argument("--experts", type=V.count(hi=MAX_DIM),
                   help="E, experts on this GPU (required unless --check-configs)")
    p.add_argument("--hidden", type=V.count(hi=MAX_DIM), help="H, hidden size")
    p.add_argument("--intermediate", type=V.count(hi=MAX_DIM), help="I, intermediate size per shard (vLLM's N)")
    p.add_argument("--top-k", type=V.count(hi=MAX_DIM))
    p.add_argument("--dtype", choices=_DTYPES, default="bf16")
    p.add_argument("--batch-sizes", default=_VLLM_BATCHES, help="comma-separated M values (default: vLLM's 18)")
    p.add_argument("--strategy", choices=_STRATEGIES, default="model")
    p.add_argument("--budget", default=None,
                   help="per batch size: N configs (e.g. 200) or wall time (90s, 5m); default all for "
                        "exhaustive, else 10%% of the pruned space (at least 16, at most 256)")
    p.add_argument("--db", default=None, type=V.output_file,
                   help="SQLite results store (default $ACCELSIM_TUNE_DB or ~/.cache/accelsim/tune.sqlite)")
    p.add_argument("--export", default=None, metavar="DIR", type=V.output_dir,
                   help="write the vLLM-format config file here")
    p.add_argument("--prior", action="append", default=[], metavar="FILE",
                   help="vLLM-format config file whose configs (mapped to their equivalents in the pruned "
                        "space) are measured first (repeatable); 'vllm' = the nearest shipped vLLM file for "
                        "the device, E, N and dtype (from --prior-dir or an installed vllm)")
    p.add_argument("--prior-dir", default=None, metavar="DIR", type=V.input_dir,
                   help="a copy of vLLM's fused_moe/configs folder for --prior vllm")
    p.add_argument("--check-configs", default=None, metavar="DIR", type=V.input_dir,
                   help="read every vLLM/SGLang config file in DIR and report each (exit 1 if any is rejected)")
    p.add_argument("--dry-run", action="store_true",
                   help="measure nothing: print the pruned space in the order the strategy would measure it, "
                        "with the cost model's predicted time of each config")
    p.add_argument("--device", default=None, metavar="CHIP",
                   help="device for --dry-run (a name as torch reports it or a table key, e.g. h100-sxm)")
    p.add_argument("--replay", default=None, metavar="FILE", type=V.input_file,
                   help="measurements CSV standing in for the GPU (see accelsim/tune/data/README.md)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDR", type=V.ray_address,
                   help="spread (shape x batch size) jobs over Ray workers, one per GPU (no ADDR: local)")
    p.add_argument("--workers", type=V.count(hi=MAX_WORKERS), default=None,
                   help="local worker processes without --ray (default: one per GPU; 1 for --replay)")
    p.add_argument("--timer", choices=("cuda_graph", "do_bench"), default="cuda_graph", help="GPU timing method")
    p.add_argument("--seed", type=V.seed, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_tune)


def _problem(args: argparse.Namespace) -> Any:
    from accelsim.tune.space import Problem

    for flag in ("experts", "hidden", "intermediate", "top_k"):
        if getattr(args, flag) is None:
            raise UserError(f"--{flag.replace('_', '-')} is required (unless --check-configs DIR)")
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag.replace('_', '-')} must be a positive integer, got {getattr(args, flag)}")
    if args.top_k > args.experts:
        raise UserError(f"--top-k must be <= --experts ({args.experts}), got {args.top_k}")
    return Problem(args.experts, args.hidden, args.intermediate, args.top_k, args.dtype, 1)


def _tune(args: argparse.Namespace) -> int:
    from accelsim.tune.core import Budget
    from accelsim.tune.space import parse_batch_sizes

    if args.check_configs is not None:
        return _check_configs(args)
    problem = _problem(args)
    batches = parse_batch_sizes(args.batch_sizes)
    budget = Budget.parse(args.budget)
    if args.dry_run:
        return _dry_run(args, problem, batches, budget)
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    if args.strategy == "bayes":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise UserError("--strategy bayes needs optuna: pip install 'accelsim[tune]'") from None
    if args.ray is not None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UserError("--ray needs the optional package ray: pip install 'accelsim[ray]'") from None
        V.check_reachable(args.ray)
    if args.replay is not None:
        from accelsim.tune.jobs import DeviceSpec
        from accelsim.tune.replay import load

        replay = load(args.replay)
        replay.check(problem, batches)
        priors = _priors(args, problem, replay.recorded_device)
        spec, workers = DeviceSpec("replay", os.path.abspath(args.replay)), args.workers or 1
    else:
        import torch

        if not torch.cuda.is_available():
            return _gate_only(args, problem)
        from accelsim.tune.jobs import DeviceSpec

        priors = _priors(args, problem, torch.cuda.get_device_name(0))
        spec, workers = DeviceSpec("gpu", timer=args.timer), args.workers or torch.cuda.device_count()
    return _run(args, problem, batches, budget, spec, workers, priors)


def _dry_run(args: argparse.Namespace, problem: Any, batches: list[int], budget: Any) -> int:
    """--dry-run: the plan of each batch size (first configs a run would measure, with predicted
    times); nothing is measured or stored."""
    from accelsim.tune.plan import dry_run

    if args.device is None and args.replay is None:
        raise UserError("--dry-run needs --device CHIP (e.g. h100-sxm, 'NVIDIA H200') or --replay FILE")
    replay = None
    if args.replay is not None:
        from accelsim.tune.replay import load

        replay = load(args.replay)
        replay.check(problem, batches)
    device = args.device or replay.recorded_device  # type: ignore[union-attr]
    priors = _priors(args, problem, device)
    out = dry_run(problem, batches, args.strategy, device, budget=budget, prior_files=priors, seed=args.seed,
                  replay=replay)
    if args.json:
        from accelsim.cli import print_json

        print_json(out)
        return 0
    print(f"dry run: {args.strategy} on {out['device']} for {out['shape']} (nothing measured)")
    for b in out["batch_sizes"]:
        print(f"M={b['batch_size']}: space {b['space_size']}, pruned {b['pruned_size']}, "
              f"{len(b['plan'])} planned ({b['priors_mapped']} priors)")
        for j, step in enumerate(b["plan"][:10]):
            cfg = ",".join(str(v) for v in step["config"].values())
            print(f"  {j + 1:>4}  {step['predicted_s'] * 1e6:9.1f} us  {cfg}")
    return 0


def _check_configs(args: argparse.Namespace) -> int:
    """`--check-configs DIR`: one row per file; exit 0 when every file was read, 1 when some were not."""
    from accelsim.tune.export import check_file, config_files

    rows = [check_file(p) for p in config_files(args.check_configs)]
    if not rows:
        raise UserError(f"'{args.check_configs}' holds no .json config files")
    if args.json:
        from accelsim.cli import print_json

        print_json({"files": rows})
    else:
        for r in rows:
            where = f"{r['device'] or '(no device)'} {r['dtype']} E={r['E']} N={r['N']}" if r["E"] else ""
            print(f"{'ok ' if r['ok'] else 'BAD'} {r['file']}  {where}  {r['reason']}".rstrip())
        bad = sum(not r["ok"] for r in rows)
        print(f"{len(rows) - bad} of {len(rows)} files read, {bad} rejected")
    return 0 if all(r["ok"] for r in rows) else 1


def _priors(args: argparse.Namespace, problem: Any, device: str) -> list[Any]:
    """The --prior files, parsed. A named file for another E or N is a UserError (its configs were
    tuned for another shape); "vllm" is the shipped vLLM file nearest to this device and shape
    (--prior-dir, else an installed vllm's config folder)."""
    from accelsim.tune.export import nearest_file, read_file

    files = []
    for path in args.prior:
        if path != "vllm":
            f = read_file(path)
            if (f.experts, f.n) != (problem.experts, problem.inter):
                raise UserError(f"--prior {path} is for E={f.experts}, N={f.n}, not E={problem.experts}, "
                                f"N={problem.inter}")
            files.append(f)
            continue
        from accelsim.tune.labels import vllm_config_dir

        directory = args.prior_dir or vllm_config_dir()
        if directory is None:
            raise UserError("--prior vllm needs --prior-dir DIR (a copy of vLLM's fused_moe/configs) or vllm installed")
        found = nearest_file(directory, device, problem.experts, problem.inter, problem.dtype)
        if found is None:
            raise UserError(f"--prior vllm: no {problem.dtype} config file for device '{device}' in {directory}")
        files.append(found)
    return files


def _run(args: argparse.Namespace, problem: Any, batches: list[int], budget: Any, spec: Any, workers: int,
         files: list[Any]) -> int:
    from accelsim.tune.jobs import Job, run_jobs
    from accelsim.tune.store import ResultStore, default_db_path

    db = str(args.db or default_db_path())
    ResultStore(db).close()  # refuse another program's database here, before any job starts
    jobs = []
    for m in batches:
        prior_cfgs = [c for f in files for c in f.priors(m)]
        jobs.append(Job(problem.with_m(m), args.strategy, spec, budget, args.seed, db, Job.pack_priors(prior_cfgs)))
    start = time.monotonic()
    with _Progress(enabled=not args.json and sys.stderr.isatty(), total=len(jobs)) as progress:
        summaries = run_jobs(jobs, workers=workers, ray_address=args.ray, on_result=progress.result,
                             on_job=progress.job)
    wall = time.monotonic() - start
    fp = summaries[0]["fingerprint"] if summaries else {}
    out: dict[str, Any] = {
        "kernel": args.kernel,
        "shape": problem.shape,
        "strategy": args.strategy,
        "device": fp.get("device", ""),
        "fingerprint": fp,
        "fidelity": _fidelity(spec, fp),
        "db": db,
        "wall_s": round(wall, 3),
        "batch_sizes": [{k: v for k, v in s.items() if k != "fingerprint"} for s in summaries],
    }
    if args.export:
        from accelsim.tune.export import write_file

        best = {s["batch_size"]: s["best_config"] for s in summaries if s["best_config"] is not None}
        out["export"] = str(write_file(args.export, problem.experts, problem.inter, out["device"], problem.dtype,
                                       best, fp.get("triton") or None)) if best else None
    if args.json:
        from accelsim.cli import print_json

        print_json(out)
    else:
        _print_table(out)
    return 0


def _fidelity(spec: Any, fp: dict[str, str]) -> str:
    if spec.kind == "gpu":
        return "measured"
    if fp.get("tool") == "synthetic-replay" or "synthetic" in fp.get("device", ""):
        return "replay of synthetic data (synthetic-h100: NOT measurements)"
    return "replay of recorded measurements"


def _print_table(out: dict[str, Any]) -> None:
    print(f"tuned {out['kernel']} {out['shape']} on {out['device']} ({out['fidelity']}) with {out['strategy']}")
    print(f"{'M':>6} {'best us':>10} {'measured':>9} {'stored':>7} {'of':>6} {'wall s':>7}  best config")
    for s in out["batch_sizes"]:
        best = "-" if s["best_time_us"] is None else f"{s['best_time_us']:.1f}"
        cfg = "none passed" if s["best_config"] is None else ",".join(str(v) for v in s["best_config"].values())
        print(f"{s['batch_size']:>6} {best:>10} {s['configs_measured']:>9} {s['configs_from_store']:>7} "
              f"{s['candidates']:>6} {s['wall_s']:>7.2f}  {cfg}")
    if out.get("export"):
        print(f"wrote {out['export']}")
    print(f"results in {out['db']}")


def _gate_only(args: argparse.Namespace, problem: Any) -> int:
    """No GPU and no --replay: run the correctness gate under the Triton interpreter on a tiny shape
    (never pretend to tune), and say that timings need a GPU."""
    os.environ.setdefault("TRITON_INTERPRET", "1")  # must precede the first triton import
    from accelsim.tune.gate import Gate
    from accelsim.tune.space import Problem, device_limits, prune, vllm_space

    e = min(problem.experts, _GATE_SHAPE["experts"])
    dtype = "bf16" if problem.dtype in ("fp8", "fp8_block") else problem.dtype  # fp8 needs capability >= 8.9
    tiny = Problem(e, _GATE_SHAPE["hidden"], _GATE_SHAPE["inter"], min(problem.top_k, e), dtype, _GATE_SHAPE["m"])
    configs, _ = prune(vllm_space(), tiny, device_limits("h100-sxm"))
    picks = [configs[round(j * (len(configs) - 1) / (_GATE_CONFIGS - 1))] for j in range(_GATE_CONFIGS)]
    gate = Gate("cpu", seed=args.seed)
    results = []
    for cfg in picks:
        t0 = time.monotonic()
        g = gate.check(tiny, cfg)
        results.append({"config": cfg, "status": g.status, "rel_err": None if math.isnan(g.rel_err) else g.rel_err,
                        "tolerance": g.tolerance, "message": g.message, "wall_s": round(time.monotonic() - t0, 3)})
    passed = sum(r["status"] == "ok" for r in results)
    message = (f"no CUDA GPU: ran only the correctness gate, under the Triton interpreter, at a tiny shape "
               f"(E={tiny.experts}, H={tiny.hidden}, I={tiny.inter}, top_k={tiny.top_k}, M={tiny.m}, {tiny.dtype}): "
               f"{passed}/{len(results)} configs match the PyTorch reference. Timings need a GPU; nothing was "
               f"tuned. To compare strategies on CPU, pass --replay FILE (accelsim/tune/data/README.md).")
    if args.json:
        from accelsim.cli import print_json

        print_json({"status": "gate_only", "tuned": False, "timings": None, "message": message,
                    "gate_shape": tiny.shape | {"M": tiny.m}, "gate": results})
    else:
        print(message)
        for r in results:
            err = "-" if r["rel_err"] is None else f"{r['rel_err']:.1e}"
            print(f"  {r['status']:>16}  rel err {err} (bound {r['tolerance']:.0e})  {r['config']}")
    return 0


class _Progress:
    """A rich progress bar on stderr when interactive; a no-op otherwise (or without rich)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.bar: Any = None
        self.done = 0
        self.measured = 0
        if enabled:
            try:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            except ImportError:
                return
            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), transient=True)
            self.task = self.bar.add_task("batch sizes", total=total)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def result(self, config: Any, measurement: Any, source: str) -> None:
        self.measured += 1
        if self.bar is not None:
            self.bar.update(self.task, description=f"batch sizes ({self.measured} configs evaluated)")

    def job(self, index: int, summary: dict[str, Any]) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
