"""Power, energy and step time against 243 measured vLLM serving runs on H100 (ML.ENERGY v3.0).

Every run whose model is in the catalog and whose task is text (chat, gpqa, code FIM) is replayed
at its measured average batch, layout (TP, or attention TP + EP for MoE), weight format and output
length; the prompt length is not published and is assumed per task (accelsim/calibrate/serving.py,
INPUT_LEN). Errors are HELD OUT: each catalog model is predicted by the step and power constants
fitted without it (leave one model out). Prints median / p90 |error| of per-GPU power, energy per
output token, throughput and median ITL by dense/MoE, family and batch range; the input-length
sensitivity (x0.5, x2 at the all-runs constants); the all-runs constants (what accelsim ships:
the `vllm` stack and accelsim.power's weights); and the B200 predictions of the same runs.

Targets (issue 11): power median <= 5%, energy/token <= 10%, ITL <= 10%, dense and MoE alike.

    python benchmarks/bench_power.py [--data PATH] [--out-dir benchmarks/results]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "reference" / "measured" / "mlenergy_v3_h100.csv"
METRICS = [("power_w", "power"), ("j_per_token", "J/token"), ("tokens_per_s", "throughput"), ("itl_s", "ITL")]


def _ape(pred: np.ndarray, meas: np.ndarray) -> np.ndarray:
    return 100 * np.abs(pred / meas - 1)


def _summary(runs: list, pred: dict[str, np.ndarray], mask: np.ndarray, label: str) -> dict[str, object]:
    row: dict[str, object] = {"group": label, "n": int(mask.sum())}
    for key, _ in METRICS:
        meas = np.array([getattr(r, key) for r in runs])
        e = _ape(pred[key][mask], meas[mask])
        row[f"{key}_median_pct"] = round(float(np.median(e)), 2) if len(e) else None
        row[f"{key}_p90_pct"] = round(float(np.percentile(e, 90)), 2) if len(e) else None
    return row


def _groups(runs: list) -> list[tuple[str, np.ndarray]]:
    moe = np.array([r.moe for r in runs])
    fam = np.array([r.family for r in runs])
    b = np.array([r.batch for r in runs])
    out = [("all", np.ones(len(runs), bool)), ("dense", ~moe), ("moe", moe)]
    out += [(f"family {f}", fam == f) for f in sorted(set(fam))]
    out += [("batch <= 16", b <= 16), ("batch 17-128", (b > 16) & (b <= 128)), ("batch > 128", b > 128)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA), help="measured runs CSV (mlenergy_v3_h100.csv)")
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--through-profile", choices=("trtllm", "vllm"), default=None,
                    help="replay through that framework's shipped H100 profile (engine terms refit on top) and "
                         "print its held-out errors only")
    args = ap.parse_args(argv)

    from accelsim.calibrate.serving import GRID, features, fit, leave_one_model_out, load_runs, replay
    from accelsim.io import write_csv
    from accelsim.spec import load_chip
    from accelsim.stacks import load_stack

    t0 = time.time()
    runs, skipped = load_runs(args.data)
    h100 = load_chip("h100-sxm")
    idle, tdp = h100.idle_w, h100.tdp_w
    base = load_stack("vllm")
    if args.through_profile:
        from accelsim.calibrate.shipped import for_chip

        wrap = lambda e: for_chip(h100, e, args.through_profile) or e
        feats = {(base.compute_eff, base.memory_eff): features(runs, base, wrap)}
        held = leave_one_model_out(runs, feats, idle, tdp)
        print(f"held-out |error| through the shipped {args.through_profile} profile, median / p90 in %:")
        for label, mask in _groups(runs)[:3]:
            s = _summary(runs, held, mask, label)
            print(f"  {label:8s} {s['n']:>4d}" + "".join(
                f"  {name} {s[f'{k}_median_pct']:.1f} / {s[f'{k}_p90_pct']:.1f}" for k, name in METRICS))
        return 0
    feats = {g: features(runs, replace(base, compute_eff=g[0], memory_eff=g[1])) for g in GRID}
    held = leave_one_model_out(runs, feats, idle, tdp)
    full = fit(runs, feats, np.arange(len(runs)), idle, tdp)
    print(f"{len(runs)} runs replayed ({len(skipped)} not mapped: vision/video tasks, hybrid Mamba), "
          f"features in {time.time() - t0:.0f} s")
    print("\nall-runs constants (shipped):")
    print(f"  vllm stack: compute_eff {full.compute_eff}  memory_eff {full.memory_eff}  "
          + "  ".join(f"{k} {v:.3g}" for k, v in full.time.items()))
    print("  power: W_FLOOR {:.3f}  W_BUSY {:.3f}  W_COMPUTE {:.3f}  W_MEMORY {:.3f}".format(*full.power))

    print("\nheld-out |error| (leave one model out), median / p90 in %:")
    head = f"  {'group':18s} {'n':>4s}" + "".join(f" {name:>16s}" for _, name in METRICS)
    print(head)
    summary = []
    for label, mask in _groups(runs):
        s = _summary(runs, held, mask, label)
        summary.append(s)
        print(f"  {label:18s} {s['n']:>4d}" + "".join(
            f" {s[f'{k}_median_pct']:>7.1f} / {s[f'{k}_p90_pct']:>6.1f}" for k, _ in METRICS))

    # input-length sensitivity at the shipped (all-runs) constants, through the shipped stack
    eff = load_stack("vllm")
    print("\ninput-length sensitivity (all-runs constants, median |error| %):")
    for scale in (0.5, 1.0, 2.0):
        rs, _ = load_runs(args.data, input_scale=scale)
        pr = [replay(r, eff) for r in rs]
        med = {k: float(np.median(_ape(np.array([p[k] for p in pr]), np.array([getattr(r, k) for r in rs]))))
               for k, _ in METRICS}
        summary.append({"group": f"input x{scale} (all-runs fit)", "n": len(rs),
                        **{f"{k}_median_pct": round(v, 2) for k, v in med.items()}})
        print(f"  input x{scale:<4} " + "  ".join(f"{name} {med[k]:.1f}" for k, name in METRICS))

    from accelsim.measurements import git_commit

    prov = {"data": "ML.ENERGY Leaderboard v3.0 (vLLM 0.11.1, H100 SXM): shared/reference/measured/"
                    "mlenergy_v3_h100.csv",
            "predicted_by": f"accelsim {git_commit(ROOT)} (stack vllm, accelsim.power)"}
    rows = []
    b200 = [replay(r, eff, chip="b200") for r in runs]
    for i, r in enumerate(runs):
        row = {"model": r.hf_model, "catalog": r.model, "task": r.task, "gpus": r.chips, "tp": r.par.tp,
               "ep": r.par.ep, "dtype": r.prec.weights, "batch": r.batch, "output_len": r.output_len,
               "input_len_assumed": r.input_len}
        for k, _ in METRICS:
            row[f"measured_{k}"] = getattr(r, k)
            row[f"heldout_{k}"] = float(held[k][i])
            row[f"heldout_{k}_err_pct"] = round(100 * (float(held[k][i]) / getattr(r, k) - 1), 2)
        row.update({f"b200_{k}": b200[i][k] for k in ("power_w", "j_per_token", "tokens_per_s", "itl_s")})
        row["b200_fidelity"] = b200[i]["fidelity"]
        rows.append({**row, **prov})
    h100 = [replay(r, eff) for r in runs]
    print("\nB200 versions of the runs (B200 spec + the vllm stack; nothing fitted on B200), B200 / H100 "
          "predictions at the same batch and GPUs, median:")
    print(f"  {'group':18s} {'n':>4s} {'tokens/s':>9s} {'J/token':>8s} {'W/GPU':>7s}")
    for label, mask in _groups(runs):
        idx = np.nonzero(mask)[0]
        rat = {k: float(np.median([b200[i][k] / h100[i][k] for i in idx])) for k in ("tokens_per_s", "j_per_token",
                                                                                    "power_w")}
        summary.append({"group": f"B200/H100 {label}", "n": len(idx),
                        **{f"b200_over_h100_{k}": round(v, 3) for k, v in rat.items()}})
        print(f"  {label:18s} {len(idx):>4d} {rat['tokens_per_s']:>9.2f} {rat['j_per_token']:>8.2f} "
              f"{rat['power_w']:>7.2f}")
    out = Path(args.out_dir)
    write_csv(out / "power_runs.csv", rows)
    consts = {"group": "constants (all runs)", "n": len(runs), "compute_eff": full.compute_eff,
              "memory_eff": full.memory_eff, **full.time, "w_floor": full.power[0], "w_busy": full.power[1],
              "w_compute": full.power[2], "w_memory": full.power[3]}
    write_csv(out / "power_summary.csv", [{**s, **prov} for s in [*summary, consts]])
    print(f"\nwrote {out / 'power_runs.csv'} and {out / 'power_summary.csv'} in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
