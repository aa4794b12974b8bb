"""`accelsim measure`, `calibrate`, `calibrate-gpu` and `validate`. Argument parsing only: torch, scipy and
plotly are imported inside the handlers, so registering these commands costs `accelsim predict` nothing."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from accelsim import validate as V
from accelsim.errors import UserError

MAX_REPS = 10_000  # timed repetitions per shape: beyond this a quick grid runs for hours


def register(sub: Any) -> None:
    p = sub.add_parser("measure", help="time real operators on a device and write a measurement CSV")
    p.add_argument("--device", required=True, choices=("cpu",),
                   help="device to time on (GPU measurements come from the kernel benchmark and the tuner)")
    p.add_argument("--out", required=True, type=V.output_file,
                   help="measurement CSV to write (accelsim.measurements schema)")
    p.add_argument("--quick", action="store_true", help="a smaller grid (< 15 s on 2 cores)")
    p.add_argument("--threads", type=V.count(hi=os.cpu_count() or 1), default=None,
                   help="torch threads, at most this machine's cores (default 1; part of the device name)")
    p.add_argument("--reps", type=V.count(lo=3, hi=MAX_REPS), default=None,
                   help=f"timed repetitions per shape, 3 to {MAX_REPS} (default 7, quick 5)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_measure)

    p = sub.add_parser("calibrate", help="fit efficiency curves to measurements and report held-out error")
    p.add_argument("--measurements", nargs="+", required=True, metavar="PATH", type=V.input_file,
                   help="measurement CSV file(s)")
    p.add_argument("--hw", default=None,
                   help="catalog chip the measurements ran on (default: from the device fingerprint; "
                        "a CPU's peaks are measured)")
    p.add_argument("--out", required=True, type=V.output_file, help="calibration profile to write (JSON)")
    p.add_argument("--test-fraction", type=V.number(0.0, 0.9), default=0.25,
                   help="share of shapes held out, in (0, 0.9] (default 0.25)")
    p.add_argument("--seed", type=V.seed, default=0, help="seed of the held-out split")
    p.add_argument("--stack", default=None, type=V.name, help="analytical stack to compare with (default trtllm-fp8)")
    p.add_argument("--plots", default=None, metavar="DIR", type=V.output_dir,
                   help="write predicted-vs-measured and roofline HTML")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("calibrate-gpu", help="build the shipped GPU profiles from the imported op database "
                                             "(pip install 'accelsim[gpudata]') and measure leave-one-chip-out error")
    p.add_argument("--out-dir", default=None, metavar="DIR", type=V.output_dir,
                   help="write <chip>_<framework>.json.gz and projected_<framework>.json.gz here (hwmodels/calibrated)")
    p.add_argument("--framework", default="trtllm,vllm", help="comma-separated frameworks (default trtllm,vllm)")
    p.add_argument("--systems", default=None, help="comma-separated systems or chips (default: all with data)")
    p.add_argument("--sample", type=V.count(lo=100, hi=10_000_000), default=None,
                   help="rows drawn per database table (default 12000)")
    p.add_argument("--report", default=None, metavar="FILE", type=V.output_file,
                   help="write the full error report (JSON)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_calibrate_gpu)

    p = sub.add_parser("validate", help="per-class error of a calibration profile against measurements of any chip")
    p.add_argument("--calibration", required=True, metavar="PROFILE", type=V.input_file,
                   help="calibration profile (JSON)")
    p.add_argument("--measurements", nargs="+", required=True, metavar="FILE", type=V.input_file,
                   help="measurement CSV file(s)")
    p.add_argument("--hw", default=None, help="catalog chip the measurements ran on (default: from the device name)")
    p.add_argument("--stack", default=None, type=V.name,
                   help="analytical stack for unmeasured classes (default trtllm-fp8)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_validate)


def _measure(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json

    threads = 1 if args.threads is None else args.threads
    if threads < 1:
        raise UserError(f"--threads must be >= 1, got {threads}")
    if args.reps is not None and args.reps < 3:
        raise UserError(f"--reps must be >= 3 (median and p20/p80 need a few), got {args.reps}")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise UserError("accelsim measure needs torch (pip install 'accelsim[kernels]')") from None
    from accelsim import measurements as M
    from accelsim.calibrate.measure_cpu import measure_cpu

    start = time.perf_counter()
    say = None if args.json else (lambda s: print(s, file=sys.stderr))
    rows = measure_cpu("quick" if args.quick else "default", threads=threads, reps=args.reps, progress=say)
    n = M.write(args.out, rows)
    wall = time.perf_counter() - start
    summary = {"out": args.out, "rows": n, "device": rows[0]["device"], "threads": threads,
               "grid": "quick" if args.quick else "default", "wall_s": round(wall, 2)}
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {n} measurements of {summary['device']} to {args.out} in {wall:.1f} s")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from accelsim.calibrate.data import load_rows, require_real_device, resolve_chip, split
    from accelsim.calibrate.profile import save_profile
    from accelsim.calibrate.validate import calibrate
    from accelsim.cli import print_json
    from accelsim.stacks import DEFAULT_STACK, load_stack

    rows = load_rows(args.measurements)
    require_real_device(rows)
    chip, source, chip_rows = resolve_chip(rows, args.hw)
    train, test = split(rows, args.test_fraction, args.seed, exclude=chip_rows)
    stack = args.stack or DEFAULT_STACK
    result = calibrate(rows, chip, train, test, base=load_stack(stack), base_name=stack, chip_source=source,
                       seed=args.seed, test_fraction=args.test_fraction)
    save_profile(result.profile, args.out)
    report = {**result.report, "profile": args.out}
    if args.plots:
        from accelsim.calibrate.plots import write_plots

        report["plots"] = [str(p) for p in write_plots(result.points, chip, args.plots)]
    if args.json:
        print_json(report)
        return 0
    _print_report(report)
    return 0


def _calibrate_gpu(args: argparse.Namespace) -> int:
    from accelsim.calibrate.build import SAMPLE, build
    from accelsim.calibrate.shipped import FRAMEWORKS
    from accelsim.cli import print_json
    from accelsim.io import write_json
    from accelsim.stacks import load_stack

    frameworks = [f.strip() for f in args.framework.split(",") if f.strip()]
    bad = sorted(set(frameworks) - set(FRAMEWORKS))
    if bad or not frameworks:
        raise UserError(f"--framework {','.join(bad) or args.framework!r}: choose from {', '.join(FRAMEWORKS)}")
    if args.sample is not None and args.sample < 100:
        raise UserError(f"--sample must be >= 100 rows per table, got {args.sample}")
    systems = [s.strip() for s in args.systems.split(",")] if args.systems else None
    say = None if args.json else (lambda s: print(s, file=sys.stderr))
    reports = {f: build(f, args.out_dir, load_stack(), systems=systems, sample=args.sample or SAMPLE,
                        say=say or (lambda s: None)) for f in frameworks}
    if not any(reports.values()):
        raise UserError("no measured data for the chosen systems and frameworks")
    if args.report:
        write_json(args.report, reports)
    if args.json:
        print_json(reports)
    else:
        for f, rep in reports.items():
            if not rep:
                continue
            band = rep.get("projection_band", {})
            print(f"{f}: calibrated {', '.join(rep['calibrated'])}; " + (
                "projection band (ln) " + ", ".join(f"{k} {v:.2f}" for k, v in band.items()) if band
                else "no leave-one-chip-out projection (needs >= 2 chips)"))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from accelsim.calibrate.validate import validate_profile
    from accelsim.cli import print_json

    r = validate_profile(args.calibration, args.measurements, hw=args.hw, stack=args.stack)
    if args.json:
        print_json(r)
        return 0
    print(f"profile fitted on {', '.join(r['profile_chips'])} -> measurements of {r['chip']} "
          f"({r['fidelity']}): {r['n']} rows")
    print(f"  {'class':26s} {'n':>6s} {'median %':>9s} {'p90 %':>8s}")
    for cls, e in r["per_class"].items():
        print(f"  {cls:26s} {e['n']:6d} {_fmt(e['median_ape']):>9s} {_fmt(e['p90_ape']):>8s}")
    print(f"  {'all':26s} {r['n']:6d} {_fmt(r['median_ape']):>9s} {_fmt(r['p90_ape']):>8s}")
    return 0


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def _print_report(r: dict[str, Any]) -> None:
    print(f"calibrated {r['chip']} ({r['chip_source']}): {r['n_train']} training, {r['n_test']} held-out rows"
          f" ({r['n_chip_rows']} chip-defining) -> {r['profile']}")
    print(f"  {'held-out':12s} {'median %':>9s} {'p90 %':>8s} {'spearman':>9s}")
    for label, key in (("calibrated", ""), ("roofline", "roofline_"), (r["analytical_stack"], "analytical_")):
        print(f"  {label:12s} {_fmt(r[f'{key}median_ape']):>9s} {_fmt(r[f'{key}p90_ape']):>8s} "
              f"{_fmt(r[f'{key}spearman' if key else 'spearman'], '.3f'):>9s}")
    print(f"  spearman: {r['spearman_scope']}")
    for cls, e in r["per_class"].items():
        print(f"  {cls:14s} train {e['n_train']:3d} test {e['n_test']:3d}  median {_fmt(e['median_ape'])}% "
              f"(roofline {_fmt(e['roofline_median_ape'])}%)")
    for path in r.get("plots", []):
        print(f"  plot: {path}")
