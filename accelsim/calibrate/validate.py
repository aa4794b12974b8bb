"""Fit on a training split, report on the held-out split, next to the uncalibrated models.

For every held-out row three predictions of its time are compared with the measured median:
  calibrated   the fitted curve (most specific of class / class+dtype / class+dtype+config)
  roofline     max(flops / peak, bytes / bw) on the same chip (`accelsim.perf.Roofline`)
  analytical   the default software stack (`accelsim.stacks.load_stack()`), as `--fidelity analytical` uses
Errors: absolute percentage error |pred - meas| / meas x 100; median and p90 over held-out rows.
Ranking: Spearman correlation of predicted vs measured time across the kernel configs of one shape,
averaged over shapes with >= 3 configs; when the measurements carry no configs (the CPU's torch
operators) it is taken across all held-out shapes instead, and `spearman_scope` says which.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.calibrate.data import config_key, gather_of, row_ops, rows_of, unit_key
from accelsim.calibrate.fit import Curve, fit_curves, pick_curve
from accelsim.calibrate.profile import Profile
from accelsim.errors import UserError
from accelsim.perf import Efficiency, HwVec, Roofline, cost
from accelsim.spec.chip import Chip

TARGETS = {"median_ape": 5.0, "p90_ape": 15.0, "spearman": 0.9}  # issue 5's acceptance targets


@dataclass(frozen=True)
class Calibration:
    profile: Profile
    report: dict[str, Any]  # the JSON `accelsim calibrate --json` prints
    points: list[dict[str, Any]]  # one per row: measured and predicted seconds, split (for plots)


def _peak(chip: Chip, dtype: str) -> float:
    return chip.flops(dtype)  # dtypes were checked when the rows were read (data.load_rows)


def _ape(meas: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return 100.0 * np.abs(pred - meas) / meas


def _summary(meas: np.ndarray, pred: np.ndarray) -> tuple[float | None, float | None]:
    if len(meas) == 0:
        return None, None
    ape = _ape(meas, pred)
    return float(np.median(ape)), float(np.percentile(ape, 90))


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(spearmanr(x, y).statistic)


def ranking(rows: Sequence[Mapping[str, Any]], idx: Sequence[int], meas: np.ndarray,
            preds: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Spearman per model: across configs of a shape where >= 3 configs exist, else across shapes."""
    groups: dict[str, list[int]] = {}
    for j, i in enumerate(idx):
        if config_key(rows[i]):
            groups.setdefault(unit_key(rows[i]), []).append(j)
    groups = {k: v for k, v in groups.items() if len({config_key(rows[idx[j]]) for j in v}) >= 3}
    out: dict[str, Any] = {}
    if groups:
        out["spearman_scope"] = "across kernel configs of the same shape (mean over shapes)"
        out["spearman_groups"] = len(groups)
        for name, pred in preds.items():
            vals = [s for g in groups.values() if (s := _spearman(pred[g], meas[g])) is not None]
            out[name] = float(np.mean(vals)) if vals else None
    else:
        out["spearman_scope"] = "across held-out shapes (the measurements carry no kernel configs)"
        out["spearman_groups"] = 0
        for name, pred in preds.items():
            out[name] = _spearman(pred, meas)
    return out


def _file_digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return ""


def calibrate(rows: Sequence[Mapping[str, Any]], chip: Chip, train: Sequence[int], test: Sequence[int], *,
              base: Efficiency, base_name: str, chip_source: str = "", seed: int = 0,
              test_fraction: float = 0.25) -> Calibration:
    """Fit curves on rows[train] for `chip`, predict rows[test]; returns the profile, report, points."""
    if len(train) < 3:
        raise UserError(f"only {len(train)} training measurements after the split; need >= 3 to fit a curve")
    n = len(rows)
    t = np.asarray([r["median_s"] for r in rows])
    t_c = np.asarray([r["flops"] / _peak(chip, r["dtype"]) for r in rows])
    t_m = np.asarray([r["bytes"] / chip.mem_bw_bytes_per_s for r in rows])
    g_rows = np.asarray([rows_of(r) for r in rows])
    gather = np.asarray([gather_of(r) for r in rows])
    cls = [str(r["op"]) for r in rows]
    dts = [str(r["dtype"]) for r in rows]
    cfg = [dict(r.get("config") or {}) for r in rows]
    units = [unit_key(r) for r in rows]
    tr = np.asarray(train, dtype=int)
    curves = fit_curves([cls[i] for i in tr], [dts[i] for i in tr], [cfg[i] for i in tr], [units[i] for i in tr],
                        t_c[tr], t_m[tr], g_rows[tr], t[tr], gather[tr])

    hw = HwVec.from_chips([chip], shape=(1,))
    roof = np.empty(n)
    ana = np.empty(n)
    cal = np.empty(n)
    used = [""] * n
    for i, r in enumerate(rows):
        ops = row_ops(r)
        roof[i] = float(np.ravel(cost(ops, hw, Roofline()).total_s)[0])
        ana[i] = float(np.ravel(cost(ops, hw, base).total_s)[0])
        hit = pick_curve(curves, cls[i], dts[i], with_config=bool(cfg[i]))
        if hit is None:  # no curve for this class: the profile falls back to the base stack too
            cal[i], used[i] = ana[i], "base"
        else:
            used[i] = hit[0]
            cal[i] = float(hit[1].time_s(t_c[i], t_m[i], g_rows[i], cfg[i] if hit[1].cfg_keys else None,
                                         gather=gather[i]))

    te = np.asarray(test, dtype=int)
    report: dict[str, Any] = {"chip": chip.name, "chip_source": chip_source, "n_rows": n, "n_train": len(tr),
                              "n_test": len(te), "n_chip_rows": n - len(tr) - len(te), "ape_units": "percent"}
    for name, pred in (("", cal), ("roofline_", roof), ("analytical_", ana)):
        med, p90 = _summary(t[te], pred[te])
        report[f"{name}median_ape"], report[f"{name}p90_ape"] = med, p90
    rank = ranking(rows, list(te), t[te], {"spearman": cal[te], "roofline_spearman": roof[te],
                                           "analytical_spearman": ana[te]})
    report.update(rank)
    report["n_test_fallback"] = int(sum(used[i] == "base" for i in te))
    report["analytical_stack"] = base_name
    report["targets"] = TARGETS
    report["per_class"] = _per_class(cls, tr, te, t, cal, roof, ana, curves)

    band = {}
    for c in sorted(set(cls)):
        sel = [i for i in te if cls[i] == c]
        if sel:
            band[c] = float(np.percentile(np.abs(np.log(cal[sel] / t[sel])), 90))
    if len(te):
        band["*"] = float(np.percentile(np.abs(np.log(cal[te] / t[te])), 90))
    files = sorted({str(r.get("source_file", "")) for r in rows})
    first = rows[0]
    prov = {"measurement_files": [{"path": f, "sha256_16": _file_digest(f)} for f in files],
            "device": first["device"], "device_kind": first["device_kind"],
            "torch_version": first.get("torch_version", ""), "triton_version": first.get("triton_version", ""),
            "measured_git_commit": first.get("git_commit", ""), "measured_date_utc": first.get("date_utc", ""),
            "fitted_date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seed": seed, "test_fraction": test_fraction, "fitted_on": "training split only",
            "chip_source": chip_source, "tool": "accelsim calibrate"}
    profile = Profile(chip, curves, band, report, prov)
    split_of = {int(i): "train" for i in tr} | {int(i): "test" for i in te}
    points = [{"op": cls[i], "name": rows[i]["name"], "dtype": dts[i], "shape": rows[i]["shape"],
               "config": rows[i].get("config") or {}, "split": split_of.get(i, "chip"), "measured_s": float(t[i]),
               "calibrated_s": float(cal[i]), "roofline_s": float(roof[i]), "analytical_s": float(ana[i]),
               "flops": float(rows[i]["flops"]), "bytes": float(rows[i]["bytes"]), "curve": used[i]}
              for i in range(n)]
    return Calibration(profile, report, points)


def _per_class(cls: list[str], tr: np.ndarray, te: np.ndarray, t: np.ndarray, cal: np.ndarray, roof: np.ndarray,
               ana: np.ndarray, curves: Mapping[str, Curve]) -> dict[str, Any]:
    out = {}
    for c in sorted(set(cls)):
        sel = np.asarray([i for i in te if cls[i] == c], dtype=int)
        entry: dict[str, Any] = {"n_train": int(sum(cls[i] == c for i in tr)), "n_test": len(sel)}
        for name, pred in (("", cal), ("roofline_", roof), ("analytical_", ana)):
            entry[f"{name}median_ape"], entry[f"{name}p90_ape"] = _summary(t[sel], pred[sel])
        if c in curves:
            cv = curves[c]
            entry["curve"] = {"e_c": cv.e_c, "e_m": cv.e_m, "t0_s": cv.t0_s, "r_half": cv.r_half,
                              "g_half": cv.g_half, "h_decades": cv.h}
        out[c] = entry
    return out


def validate_profile(profile_path: str, measurement_paths: Sequence[str], *, hw: str | None = None,
                     stack: str | None = None) -> dict[str, Any]:
    """`accelsim validate`: a profile's error on measurements of any chip, through `perf.cost` (the
    path predictions take). On one of the profile's own chips the profile is used as calibrated; on
    another chip it is projected (curves in that chip's coordinates, efficiency capped at 1).
    Rows are taken as the engine runs them (`gpu.engine_rows`). Errors in percent."""
    from accelsim.calibrate import gpu as G
    from accelsim.calibrate.data import load_rows, require_real_device, resolve_chip
    from accelsim.calibrate.profile import CalibratedEfficiency, read_profile
    from accelsim.perf import Fidelity
    from accelsim.stacks import DEFAULT_STACK, load_stack

    profile = read_profile(profile_path)
    rows = load_rows(measurement_paths)
    require_real_device(rows)
    chip, source, chip_rows = resolve_chip(rows, hw)
    framework = str(profile.provenance.get("framework", ""))
    rows = G.engine_rows([r for i, r in enumerate(rows) if i not in chip_rows],
                         add_quantize=G.quantize_with_gemm(framework))
    if not rows:
        raise UserError("no measurement rows left to validate on (fp8 GEMM rows need their quantize rows)")
    own = chip.name in profile.own_chips
    eff = CalibratedEfficiency(profile, load_stack(stack or DEFAULT_STACK),
                               fidelity=Fidelity.CALIBRATED if own else Fidelity.PROJECTED)
    meas = np.asarray([float(r["median_s"]) for r in rows])
    pred = G.predict_rows(rows, chip, eff)
    cls = np.asarray([G.row_class(r) for r in rows])
    ape = _ape(meas, pred)
    per_class = {}
    for c in sorted(set(cls.tolist())):
        sel = cls == c
        per_class[c] = {"n": int(sel.sum()), "median_ape": float(np.median(ape[sel])),
                        "p90_ape": float(np.percentile(ape[sel], 90))}
    return {"chip": chip.name, "chip_source": source, "profile": str(profile_path),
            "profile_chips": list(profile.own_chips), "fidelity": str(eff.fidelity), "n": len(rows),
            "ape_units": "percent", "median_ape": float(np.median(ape)), "p90_ape": float(np.percentile(ape, 90)),
            "per_class": per_class}
