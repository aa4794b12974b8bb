#!/usr/bin/env python
"""The tuner against real GPU results: shipped vLLM (and SGLang) fused-MoE config files as labels.

Each (file, batch size) entry of a shipped config file is the config an exhaustive tuning run found
fastest on that GPU. For every such label this script reports, per device x dtype x batch range
(M <= 16, 17-256, > 256):
  in space   share of winners (or their launch-equivalent config) inside the pruned tuning space
  model      the winner's median percentile in the `model` strategy's order (its plan without
             feedback: first round, then the cost model's ranking), the share in its first 10%,
             the median position (0 = measured first) and the share in its first 64
  random     the same for a seeded random order of the same pruned space
  analytical the winner's median percentile in the order of the analytical model alone (the cost
             model before this fit), on every --baseline-every-th judged label
Cost-model numbers are on shapes held out from the fit: labels are split into --folds folds by
model family (every TP size and dtype of a model, and SGLang's E+1 fused-shared-expert variant,
held out together); each fold is judged by a model fitted on the others. Targets: in space 100%;
median percentile <= 5% and >= 80% in the first 10%, in every batch range.

It also fits the analytical model's five factors per GPU generation on AIConfigurator's measured
fused-MoE latencies (hwmodels/measured/aiconfigurator/*_vllm_moe.csv.gz) and reports their error on
held-out shapes. --write-params refits everything on all data and writes
accelsim/tune/data/costmodel-params.json (what `accelsim tune` uses), with provenance.

Data: --vllm DIR_OR_WHEEL (default: an installed vllm's config folder), --sglang DIR_OR_WHEEL
(optional). Get them without installing: pip download --no-deps vllm -d /tmp/vllm_whl.

  python benchmarks/bench_tune_real_labels.py --vllm /tmp/vllm_whl/vllm-*.whl \\
      [--sglang /tmp/sglang_whl/sglang-*.whl] [--every 2] [--write-params]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from accelsim.io import write_csv, write_json  # noqa: E402
from accelsim.tune import ranker as R  # noqa: E402
from accelsim.tune.labels import Case, case_space, cases, group_folds, vllm_config_dir  # noqa: E402
from accelsim.tune.realfit import aic_terms, chip_of, fit_aic_factors, pair_data, winner_position  # noqa: E402
from accelsim.tune.space import DEVICE_LIMITS  # noqa: E402

AIC_DIR = REPO / "hwmodels" / "measured" / "aiconfigurator"
RANGES = (("M<=16", 1, 16), ("17-256", 17, 256), (">256", 257, 1 << 30))
AIC_BATCHES = (1, 16, 128, 1024, 8192)  # of AIConfigurator's 27 batch sizes: enough to fit 5 factors, 5x faster
FIRST = 64
BUDGET = 256  # the default budget of a non-exhaustive run (strategies.default_budget's cap)


# provenance of the fitted factors, written beside them in accelsim/tune/data/costmodel-params.json
FACTORS_NOTE = ("costmodel factors (a, b, c, d, e) per GPU generation fitted on AIConfigurator measured fused-MoE "
                "latencies: hwmodels/measured/aiconfigurator/{h100_sxm,h200_sxm,b200_sxm}_vllm_moe.csv.gz "
                "(aiconfigurator-core 0.12.0, Apache-2.0; framework vllm, tables 0.24.0 on H100/H200 and 0.22.0 "
                "on B200; Triton fused-MoE kernels, balanced routing)")


def _wheel_dirs(path: Path, package: str, tmp: Path) -> list[tuple[Path, str]]:
    """Config folders (and a source label) from a wheel, extracted to tmp; only the config files."""
    version = re.match(rf"{package}-([^-]+)-", path.name)
    label = f"{package} {version.group(1) if version else '?'} (wheel {path.name}, Apache-2.0)"
    pattern = {"vllm": r"vllm/model_executor/layers/fused_moe/configs/[^/]+\.json$",
               "sglang": r"sglang/srt/layers/moe/moe_runner/triton_utils/configs/triton_[^/]+/[^/]+\.json$"}[package]
    with zipfile.ZipFile(path) as zf:
        members = [n for n in zf.namelist() if re.search(pattern, n)]
        zf.extractall(tmp / package, members)
    dirs = sorted({(tmp / package / m).parent for m in members})
    return [(d, f"{label} {d.name}" if package == "sglang" else label) for d in dirs]


def sources(args: argparse.Namespace, tmp: Path) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    for path, package in ((args.vllm, "vllm"), (args.sglang, "sglang")):
        if path is None:
            continue
        p = Path(path)
        if p.suffix == ".whl":
            out += _wheel_dirs(p, package, tmp)
        elif package == "sglang" and any(p.glob("triton_*")):
            out += [(d, f"sglang {args.sglang_version} {d.name} (Apache-2.0)") for d in sorted(p.glob("triton_*"))]
        else:
            out.append((p, f"{package} {args.vllm_version if package == 'vllm' else args.sglang_version} "
                           "(Apache-2.0)"))
    if not out:
        found = vllm_config_dir()
        if found is None:
            raise SystemExit("no vLLM config folder: pass --vllm DIR_OR_WHEEL (pip download --no-deps vllm)")
        from importlib.metadata import version

        out.append((found, f"vllm {version('vllm')} (installed, Apache-2.0)"))
    return out


def holdout_key(case: Case) -> object:
    """Whole models are held out: the family (without its '?' of an E-only match); unknown shapes by
    E with SGLang's E+1 variant merged."""
    if case.family != "unknown":
        return case.family.rstrip("?")
    e = case.problem.experts
    return ("E", e - 1 if e % 2 and e > 1 else e)


def batch_range(m: int) -> str:
    return next(name for name, lo, hi in RANGES if lo <= m <= hi)


def aic_rows() -> dict[str, list[dict]]:
    """AIConfigurator fused-MoE rows by generation (h100/h200: hopper, b200: blackwell)."""
    from accelsim.measurements import read

    out: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(AIC_DIR.glob("*_vllm_moe.csv*")):
        gen = "blackwell" if path.name.startswith("b200") else "hopper"
        device = {"h100": "h100-sxm", "h200": "h200-sxm", "b200": "b200"}[path.name[:4]]
        out[gen] += [dict(r, _device=device, _file=path.name) for r in read(path) if r["shape"]["M"] in AIC_BATCHES]
    return out


def aic_fit(rows_by_gen: dict[str, list[dict]], ranker, folds: int) -> tuple[dict, list[dict]]:
    """Factors per generation on all rows, and held-out errors (whole shapes) per generation."""
    factors, report = {}, []
    for gen, rows in rows_by_gen.items():
        terms, measured, keys = [], [], []
        for device in sorted({r["_device"] for r in rows}):
            t, m, k = aic_terms([r for r in rows if r["_device"] == device], DEVICE_LIMITS[device], ranker)
            terms += t
            measured = np.concatenate([measured, m])
            keys += [(device, *kk) for kk in k]
        fold_of = group_folds([k[1:] for k in keys], folds)
        fold = np.array([fold_of[k[1:]] for k in keys])
        held = np.zeros(len(measured))
        start = np.zeros(len(measured))
        for f in range(folds):
            tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
            if len(tr) == 0 or len(te) == 0:
                continue
            fac = fit_aic_factors([terms[i] for i in tr], measured[tr])
            held[te] = [terms[i].predict(fac)[0] for i in te]
            start[te] = [terms[i].predict()[0] for i in te]
        err = np.abs(np.log(held / measured))
        err0 = np.abs(np.log(start / measured))
        fac = fit_aic_factors(terms, measured)
        factors[gen] = {"factors": [round(float(x), 5) for x in fac], "rows": len(measured),
                        "shapes": len(set(k[1:] for k in keys)),
                        "held_out_median_abs_log_error": round(float(np.median(err)), 4),
                        "unfitted_median_abs_log_error": round(float(np.median(err0)), 4),
                        "source": sorted({r["tool"] for r in rows})}
        pct = lambda e, q=0.5: 100 * (np.exp(np.quantile(e, q)) - 1)
        report.append({"generation": gen, "rows": len(measured), "held_out_median_err_pct": pct(err),
                       "held_out_p90_err_pct": pct(err, 0.9), "unfitted_median_err_pct": pct(err0)})
    return factors, report


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["device"], r["dtype"], r["range"])].append(r)
        groups[("all", "all", r["range"])].append(r)
    out = []
    for key in sorted(groups, key=lambda k: (k[0] == "all", k)):
        rs = groups[key]
        pos = [r for r in rs if r["model_pct"] is not None]
        row = {"device": key[0], "dtype": key[1], "range": key[2], "labels": len(rs),
               "in_space_pct": 100 * sum(r["in_space"] for r in rs) / len(rs), "judged": len(pos)}
        if pos:
            row.update({
                "model_median_pct": 100 * statistics.median(r["model_pct"] for r in pos),
                "model_first10_pct": 100 * sum(r["model_pct"] <= 0.1 for r in pos) / len(pos),
                "model_median_position": statistics.median(r["model_pos"] for r in pos),
                f"model_first{FIRST}_pct": 100 * sum(r["model_pos"] < FIRST for r in pos) / len(pos),
                f"model_first{BUDGET}_pct": 100 * sum(r["model_pos"] < BUDGET for r in pos) / len(pos),
                "random_median_pct": 100 * statistics.median(r["random_pct"] for r in pos),
                "random_first10_pct": 100 * sum(r["random_pct"] <= 0.1 for r in pos) / len(pos),
                "median_pruned_size": statistics.median(r["size"] for r in pos)})
        base = [r["analytical_pct"] for r in rs if r["analytical_pct"] is not None]
        row["analytical_median_pct"] = 100 * statistics.median(base) if base else None
        row["analytical_first10_pct"] = 100 * sum(b <= 0.1 for b in base) / len(base) if base else None
        out.append(row)
    return out


def print_table(summary: list[dict]) -> None:
    print(f"{'device':>9} {'dtype':>9} {'range':>7} {'labels':>6} {'in sp%':>6} {'judged':>6} | {'model med%':>10} "
          f"{'<=10%':>6} {'med pos':>7} {'<' + str(FIRST):>5} {'<' + str(BUDGET):>5} | {'rand med%':>9} {'<=10%':>6} | "
          f"{'anal med%':>9} {'<=10%':>6} | {'pruned':>6}")
    for r in summary:
        if "model_median_pct" not in r:
            print(f"{r['device']:>9} {r['dtype']:>9} {r['range']:>7} {r['labels']:>6} {r['in_space_pct']:>6.1f} "
                  f"{r['judged']:>6} | (no chip file: not judged)")
            continue
        print(f"{r['device']:>9} {r['dtype']:>9} {r['range']:>7} {r['labels']:>6} {r['in_space_pct']:>6.1f} "
              f"{r['judged']:>6} | {r['model_median_pct']:>10.2f} {r['model_first10_pct']:>6.1f} "
              f"{r['model_median_position']:>7.0f} {r[f'model_first{FIRST}_pct']:>5.1f} "
              f"{r[f'model_first{BUDGET}_pct']:>5.1f} | "
              f"{r['random_median_pct']:>9.1f} {r['random_first10_pct']:>6.1f} | "
              f"{_num(r['analytical_median_pct'], 9)} {_num(r['analytical_first10_pct'], 6)} | "
              f"{r['median_pruned_size']:>6.0f}")


def _num(x: float | None, width: int) -> str:
    return f"{x:>{width}.1f}" if x is not None else f"{'-':>{width}}"


def _commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO,
                              timeout=10).stdout.strip()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--vllm", default=None, help="vLLM fused_moe/configs folder or a vllm wheel")
    ap.add_argument("--vllm-version", default="?", help="version label when --vllm is a folder")
    ap.add_argument("--sglang", default=None, help="SGLang triton_utils/configs folder or an sglang wheel")
    ap.add_argument("--sglang-version", default="?")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--negatives", type=int, default=64, help="configs drawn per winner for the pairwise fit")
    ap.add_argument("--every", type=int, default=1, help="judge every k-th held-out label (speed)")
    ap.add_argument("--baseline-every", type=int, default=5, help="analytical-only order on every k-th judged label")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "tune_real_labels.csv"))
    ap.add_argument("--write-params", action="store_true", help="refit on all data and write the params file")
    args = ap.parse_args(argv)

    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        dirs = sources(args, Path(tmp))
        labels = cases(dirs)
    print(f"labels: {len(labels.cases)} usable (file, M) entries from {len(dirs)} folders; skipped entries: "
          f"{dict(labels.skipped)}; rejected files: {len(labels.rejected_files)}")
    data, used = pair_data(labels.cases, args.negatives)
    used_cases = [labels.cases[i] for i in used]
    fold_of = group_folds([holdout_key(c) for c in used_cases], args.folds)
    fold = np.array([fold_of[holdout_key(c)] for c in used_cases])
    position: dict[int, object] = {}
    baseline: dict[int, object] = {}
    for f in range(args.folds):
        train = fold != f
        model = R.fit(R.PairData(data.vidx[train], data.log_an[train], data.b[train], data.b2[train]))
        for n, j in enumerate(np.flatnonzero(fold == f)[:: args.every]):
            position[used[j]] = winner_position(labels.cases[used[j]], model)
            if n % args.baseline_every == 0:
                baseline[used[j]] = winner_position(labels.cases[used[j]], None)
        print(f"fold {f}: trained on {int(train.sum())} labels, judged {len(np.flatnonzero(fold == f)[::args.every])}"
              f" ({time.time() - t_start:.0f} s)")
    rows = []
    for n, c in enumerate(labels.cases):
        in_space = case_space(c)[1] >= 0
        p, q = position.get(n), baseline.get(n)
        rows.append({"analytical_pct": None if q is None else q.model_pct, "device": c.device,
                     "dtype": c.problem.dtype, "range": batch_range(c.problem.m),
                     "m": c.problem.m, "E": c.problem.experts, "N": c.problem.inter, "family": c.family,
                     "file": c.file, "source": c.source, "in_space": in_space,
                     "model_pct": None if p is None else p.model_pct, "model_pos": None if p is None else p.model,
                     "random_pct": None if p is None else p.random_pct, "size": None if p is None else p.size,
                     "has_chip": chip_of(DEVICE_LIMITS[c.device]) is not None})
    rows = [r for r in rows if r["model_pct"] is not None or not r["has_chip"] or args.every == 1]
    summary = summarise(rows)
    print_table(summary)
    full = fit_all = None
    aic_report: list[dict] = []
    if args.write_params or AIC_DIR.is_dir():
        full = R.fit(data, provenance={})
        factors, aic_report = aic_fit(aic_rows(), full, args.folds)
        print("AIConfigurator fused-MoE latencies (vLLM Triton kernel), analytical level of the best-ranked "
              "config, whole shapes held out:")
        for r in aic_report:
            print(f"  {r['generation']:>9}: {r['rows']} rows, held-out median error {r['held_out_median_err_pct']:.0f}%"
                  f" (p90 {r['held_out_p90_err_pct']:.0f}%), unfitted {r['unfitted_median_err_pct']:.0f}%")
        fit_all = factors
    provenance = {"labels_from": "; ".join(sorted({s.split(" (")[0] for _, s in dirs})) + " (Apache-2.0)",
                  "held_out": f"whole model families, {args.folds} folds", "accelsim_commit": _commit()}
    write_csv(args.out, [{**r, **provenance} for r in summary])
    print(f"wrote {len(summary)} rows to {args.out} ({time.time() - t_start:.0f} s)")
    if fit_all is not None:
        level_out = Path(args.out).with_name(Path(args.out).stem + "_level.csv")
        level_prov = {**provenance, "held_out": f"whole shapes (E, H, I, top_k, dtype), {args.folds} folds"}
        write_csv(level_out, [{**r, "measurements": "aiconfigurator-core 0.12.0 fused-MoE (Apache-2.0), "
                               f"M in {list(AIC_BATCHES)}", **level_prov} for r in aic_report])
        print(f"wrote {level_out}")
    if args.write_params and full is not None:
        full.provenance = {
            "source": "pairwise fit on shipped fused-MoE config winners: "
                      + "; ".join(sorted({s.split(" triton_")[0] for _, s in dirs})),
            "labels": len(used), "negatives_per_label": args.negatives, "license": "labels: Apache-2.0 (vllm, sglang)",
            "fitted_by": "benchmarks/bench_tune_real_labels.py --write-params",
            "held_out": {f"{r['range']}": {k: round(r[k], 2) for k in ("model_median_pct", "model_first10_pct")}
                         for r in summary if r["device"] == "all" and "model_median_pct" in r},
            **{k: v for k, v in full.provenance.items()}}
        doc = {"ranker": full.to_json(), "factors": fit_all or {},
               "factors_note": FACTORS_NOTE}
        write_json(R.DEFAULT_PARAMS, doc)
        print(f"wrote {R.DEFAULT_PARAMS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
