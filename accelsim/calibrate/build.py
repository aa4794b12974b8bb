"""Build the shipped profiles (`hwmodels/calibrated/`) from the imported GPU op database, and measure
how well calibration carries to chips it did not see. One command: `accelsim calibrate-gpu`.

Per framework (trtllm, vllm):
  1. every system with data: measurement rows of its fullest tables (`accelsim.gpudata`), at most
     `sample` rows drawn per table, as engine rows (`gpu.engine_rows`), split by weight shape;
  2. per chip: curves fitted on its training shapes; its held-out shapes predicted through
     `accelsim.perf.cost` by roofline, the analytical stack and the profile; band = held-out median
     |ln error| per class (`band_from`); written as `<chip>_<framework>.json.gz` (fidelity calibrated);
  3. leave-one-chip-out: curves fitted on the training shapes of every other chip, pooled, predict
     the left-out chip's held-out shapes (unseen chip and unseen shapes). Scenarios: all-but-one ->
     each chip; Hopper (H100, H200) -> Blackwell (B200, GB200, B300, GB300); Ampere (A100) -> Hopper;
  4. `projected_<framework>.json.gz`: curves fitted on every chip's training shapes pooled, with band =
     per class the median over left-out chips of their median |ln error| in the all-but-one
     predictions (`loco_band`; the worst-carried chip is recorded beside it): the band printed
     with every projected prediction is this measured error, not an assumption.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.calibrate import gpu as G
from accelsim.calibrate.profile import CalibratedEfficiency, Profile, save_profile
from accelsim.calibrate.shipped import PROJECTED
from accelsim.perf import Efficiency, Fidelity, Roofline
from accelsim.spec import load_chip
from accelsim.spec.chip import Chip

HOPPER = ("h100-sxm", "h200-sxm")
BLACKWELL = ("b200", "gb200", "b300", "gb300")
AMPERE = ("a100-sxm",)
SAMPLE = 12000  # rows drawn per database table: enough shapes per class, minutes not hours to build
MODELS = ("roofline", "analytical", "calibrated")


@dataclass
class ChipData:
    chip: Chip
    system: str
    train: list[dict[str, Any]]
    test: list[dict[str, Any]]
    all_rows: list[dict[str, Any]]
    tables: list[dict[str, Any]]


def load_framework(framework: str, systems: Sequence[str] | None = None, *, sample: int = SAMPLE,
                   test_fraction: float = 0.25, seed: int = 0,
                   say: Callable[[str], None] = lambda s: None) -> dict[str, ChipData]:
    """Engine rows of every system with `framework` data, split by weight shape, keyed by chip."""
    from accelsim.gpudata import aiconfigurator as A

    out = {}
    for system, chip_name in A.SYSTEM_CHIPS.items():
        if systems and system not in systems and chip_name not in systems:
            continue
        tables = [t for t in A.select(system) if t.framework in (framework, "nccl")]
        if not any(t.framework == framework for t in tables):
            continue
        rows, summary = A.import_rows(tables, sample=sample)
        rows = G.engine_rows(rows, add_quantize=G.quantize_with_gemm(framework))
        tr, te = G.split_by_weight(rows, test_fraction, seed)
        out[chip_name] = ChipData(load_chip(chip_name), system, [rows[i] for i in tr], [rows[i] for i in te],
                                  rows, summary["tables"])
        say(f"  {framework} {system}: {len(rows)} engine rows ({len(tr)} train, {len(te)} held out)")
    return out


def _device_chips(data: Mapping[str, ChipData]) -> dict[str, Chip]:
    out: dict[str, Chip] = {}
    for d in data.values():
        for r in d.all_rows:
            out.setdefault(str(r["device"]), d.chip)
    return out


def band_from(table: Mapping[str, Mapping[str, Any]], model: str = "calibrated") -> dict[str, float]:
    """ln half-width per operator class from an error table: the median |ln(predicted / measured)|,
    the typical error of one kernel of that class ('*' = the largest over classes). The p90 stays in
    the profile's report; as a band it would move every kernel of a step by its worst tenth at once."""
    band = {}
    for cls, e in table.items():
        if ":" in cls:  # skewed routings are reported, not banded
            continue
        key = "grouped_gemm" if cls == "fused_moe" else cls
        band[key] = float(e[model]["median_abs_ln"])
    if band:
        band["*"] = max(band.values())
    return band


def _provenance(data: Mapping[str, ChipData], framework: str, chips: Sequence[str], **extra: Any) -> dict[str, Any]:
    from accelsim.gpudata import aiconfigurator as A

    return {"source": f"{A.PACKAGE} {A.package_version()} ({A.LICENSE}), measured kernel latencies",
            "framework": framework, "chips": list(chips),
            "tables": [t for c in chips for t in data[c].tables],
            "fitted_on": "training weight shapes only (accelsim.calibrate.gpu.split_by_weight)",
            "fitted_date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tool": "accelsim calibrate-gpu", **extra}


def fit_chips(data: Mapping[str, ChipData], chips: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """Curves fitted on the training rows of `chips` pooled."""
    rows = [r for c in chips for r in data[c].train]
    return G.fit_rows(rows, _device_chips({c: data[c] for c in chips}), seed=seed)


def evaluate_on(data: Mapping[str, ChipData], target: str, curves: Mapping[str, Any], base: Efficiency, *,
                fitted_chips: Sequence[str], seed: int = 0) -> dict[str, dict[str, Any]]:
    """Error table of `target`'s held-out rows: roofline, analytical `base`, and the curves."""
    chip = data[target].chip
    prof = Profile(chip, dict(curves), {}, {}, {}, chips=tuple(fitted_chips))
    fid = Fidelity.CALIBRATED if target in fitted_chips else Fidelity.PROJECTED
    models = {"roofline": Roofline(), "analytical": base,
              "calibrated": CalibratedEfficiency(prof, base, fidelity=fid)}
    return G.error_table(data[target].test, chip, models, seed=seed)


def build(framework: str, out_dir: str | Path | None, base: Efficiency, *, systems: Sequence[str] | None = None,
          sample: int = SAMPLE, seed: int = 0, say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Fit, evaluate and (when out_dir) write every profile of one framework; returns the report:
    {"calibrated": {chip: table}, "loco": {scenario: {chip: table}}, "routing": {chip: factors}}."""
    data = load_framework(framework, systems, sample=sample, seed=seed, say=say)
    if not data:
        return {}
    report: dict[str, Any] = {"framework": framework, "calibrated": {}, "loco": {}, "routing": {}}
    for name, d in data.items():
        curves = fit_chips(data, [name], seed=seed)
        table = evaluate_on(data, name, curves, base, fitted_chips=[name], seed=seed)
        report["calibrated"][name] = table
        report["routing"][name] = G.routing_factors(d.all_rows)
        say(f"  {framework} {name}: calibrated " + _brief(table))
        if out_dir is not None:
            prof = Profile(d.chip, {k: c.compact() for k, c in curves.items()}, band_from(table),
                           {"per_class": table, "moe_routing_factors": report["routing"][name]},
                           _provenance(data, framework, [name]), chips=(name,))
            save_profile(prof, Path(out_dir) / f"{name}_{framework}.json.gz")
    scenarios = loco_scenarios(list(data))
    for scen, (train, targets) in scenarios.items():
        curves = fit_chips(data, train, seed=seed)
        report["loco"][scen] = {}
        for t in targets:
            table = evaluate_on(data, t, curves, base, fitted_chips=train, seed=seed)
            report["loco"][scen][t] = table
            say(f"  {framework} {scen} -> {t}: projected " + _brief(table))
    band, worst = loco_band(report["loco"])
    report["projection_band"] = band
    report["projection_band_worst"] = worst
    if out_dir is not None and len(data) >= 2:
        names = sorted(data)
        curves = fit_chips(data, names, seed=seed)
        ref = data["h100-sxm" if "h100-sxm" in data else names[0]].chip
        loco = {s: {t: _compact_table(tb) for t, tb in v.items()} for s, v in report["loco"].items()}
        why = ("per class, the median over left-out chips of the median |ln error| of all-but-one "
               "leave-one-chip-out predictions of held-out shapes")
        prof = Profile(ref, {k: c.compact() for k, c in curves.items()}, band,
                       {"leave_one_chip_out": loco, "band_worst_chip": worst},
                       _provenance(data, framework, names, band=why), chips=tuple(names))
        save_profile(prof, Path(out_dir) / f"{PROJECTED}_{framework}.json.gz")
    return report


def loco_scenarios(chips: Sequence[str]) -> dict[str, tuple[list[str], list[str]]]:
    """scenario -> (chips fitted, chips predicted), for the chips that have data."""
    out = {}
    for c in chips:
        others = [o for o in chips if o != c]
        if others:
            out[f"all-but-{c}"] = (others, [c])
    hop = [c for c in HOPPER if c in chips]
    bw = [c for c in BLACKWELL if c in chips]
    if hop and bw:
        out["hopper->blackwell"] = (hop, bw)
    amp = [c for c in AMPERE if c in chips]
    if amp and hop:
        out["ampere->hopper"] = (amp, hop)
    return out


def loco_band(loco: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> tuple[dict[str, float], dict[str, Any]]:
    """(band, worst) per class over the all-but-one targets: band = the median over left-out chips
    of their median |ln error| (the typical kernel on a typical unmeasured chip; '*' = the largest
    class); worst = the chip carried worst and its median |ln error|, kept beside the band."""
    per: dict[str, list[tuple[float, str]]] = {}
    for scen, targets in loco.items():
        if not scen.startswith("all-but-"):
            continue
        for chip, table in targets.items():
            for cls, v in band_from(table).items():
                if cls != "*":
                    per.setdefault(cls, []).append((v, chip))
    band = {c: float(np.median([v for v, _ in vals])) for c, vals in per.items()}
    worst = {c: {"chip": max(vals)[1], "median_abs_ln": max(vals)[0]} for c, vals in per.items()}
    if band:
        band["*"] = max(band.values())
    return band, worst


def _compact_table(table: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {cls: {"n": e["n"], **{m: {k: e[m][k] for k in ("median_ape", "p90_ape", "median_ape_ge20us",
                                                              "p90_ape_ge20us")} for m in MODELS}}
            for cls, e in table.items()}


def _brief(table: Mapping[str, Mapping[str, Any]]) -> str:
    return "  ".join(f"{cls} {e['calibrated']['median_ape']:.0f}/{e['calibrated']['p90_ape']:.0f}%"
                     for cls, e in table.items() if ":" not in cls)
