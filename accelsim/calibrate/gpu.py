"""Calibration on measured GPU op databases: per chip and serving framework, every operator class the
serving path uses, held out by weight shape; and projection to chips that were not measured.

Rows (accelsim measurement schema, e.g. from `accelsim import aiconfigurator`) become *engine rows*:
  - only real devices (`data.require_real_device`): synthetic and replayed rows never calibrate;
  - an fp8 GEMM pays its activation quantize where the engine runs one as its own kernel
    (`quantize_with_gemm`: vLLM's per-tensor fp8 linear), and not where the engine fuses it into the
    RMSNorm / activation kernel before the GEMM (TensorRT-LLM). AIConfigurator times the whole fp8
    linear module, quantize included (`row_has_quantize`): on one H200, its per-tensor fp8 GEMMs
    exceed cuBLAS fp8 GEMMs of the same shapes by about its own measured quantize time (compute_scale
    + scale_matrix; 30 shapes, hwmodels/measured/nvidia-h200_gpu-measure-ops_2026-11-30.csv). So an
    AIConfigurator row is taken as is where the engine pays the quantize and less its measured
    quantize where the engine fuses it; a row timing the GEMM alone gets the quantize added where the
    engine pays it;
  - collectives: the engine's own all-reduce table where it has one (TensorRT-LLM's custom all-reduce,
    2.3x slower than nccl-tests' back-to-back NCCL at 8 MB on 8 H100s), NCCL's rows elsewhere;
  - per shape, the fastest measured kernel (the engine picks its best kernel per shape); block-scaled
    fp8 only where per-tensor fp8 was not measured (accelsim's fp8 is per-tensor, as Llama-style FP8
    checkpoints are);
  - fused MoE: balanced routing calibrates; skewed routings are reported (`routing_factors`).

Fit (`fit_rows`): every row is lowered to operators (`data.row_ops`); its measured time is shared out
over its operators in proportion to their roofline times, and each operator class gets a curve
(`fit.fit_curves`) in the coordinates of the chip the row ran on. Collectives are fitted on the
network term: roofline time = bytes on the fabric / link bandwidth, GEMM-row coordinate = group size.
A fit may pool rows of several chips (the projection rule, `project_profile`): the coordinates are
relative to each chip's own peaks, which is what carries to another chip.

Evaluation (`evaluate`) always goes through `accelsim.perf.cost` with the profile as the Efficiency,
the same path `predict` takes, so the error reported is the error a prediction has.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim import ops as O
from accelsim.calibrate.data import require_real_device, row_ops
from accelsim.calibrate.fit import Curve, fit_curves
from accelsim.calibrate.profile import CalibratedEfficiency, Profile
from accelsim.perf import Efficiency, Fidelity, HwVec, Roofline, cost, link_bw
from accelsim.spec.chip import Chip

BALANCED = "balanced"
QUANTIZE = "quantize_scale_matrix"
QUANTIZE_PARTS = ("quantize_compute_scale", QUANTIZE)  # dynamic per-tensor quantize: find the scale, then scale
TRAIN_CAP = 3000  # training points per (class, dtype) curve: the residual smoother is O(n^2)
EVAL_CAP = 1500  # held-out rows evaluated per (chip, class)
SMALL_OP_S = 20e-6  # the accuracy targets apply to ops of at least this measured time


def row_class(row: Mapping[str, Any]) -> str:
    """The class a row is reported under: its op, with the MoE routing when not balanced."""
    op = str(row["op"])
    routing = row["shape"].get("routing", BALANCED) if op == "fused_moe" else BALANCED
    return op if routing == BALANCED else f"{op}:{routing}"


def weight_key(row: Mapping[str, Any]) -> str:
    """The held-out unit: the weight (layer) shape a row belongs to, over all its token counts,
    formats, shardings and routings. GEMM: n x k; MoE: H, I, E, top_k; attention: heads, KV heads,
    head dim, window; collectives (no weights): the message size; quantize: k."""
    s, op = row["shape"], str(row["op"])
    if op == "gemm":
        return f"gemm|{s['n']}x{s['k']}"
    if op == "fused_moe":
        return f"moe|{s['H']}|{s['I']}|{s['E']}|{s['top_k']}"
    if op.startswith("attn_"):
        return f"attn|{s['heads']}|{s.get('kv_heads')}|{s.get('head_dim')}|{s.get('window', 0)}"
    if op in (O.OpKind.ALL_REDUCE, O.OpKind.ALL_TO_ALL):
        return f"{op}|{s['bytes']}"
    return f"{op}|{s.get('k', json.dumps(s, sort_keys=True))}"


def split_by_weight(rows: Sequence[Mapping[str, Any]], test_fraction: float = 0.25,
                    seed: int = 0) -> tuple[list[int], list[int]]:
    """(train, test) row indices: a weight shape is held out when its seeded hash falls below
    test_fraction, so no weight shape is on both sides (and the split does not depend on which
    other rows are present)."""
    train, test = [], []
    for i, r in enumerate(rows):
        h = zlib.crc32(f"{seed}|{weight_key(r)}".encode()) / 2**32
        (test if h < test_fraction else train).append(i)
    return train, test


def quantize_with_gemm(framework: str) -> bool:
    """Whether the engine runs the fp8 activation quantize as a kernel of its own (see module doc)."""
    return framework != "trtllm"


def row_has_quantize(row: Mapping[str, Any]) -> bool:
    """Whether a per-tensor fp8 GEMM row's time includes the activation quantize: AIConfigurator's
    rows time the engine's whole fp8 linear module (module docstring); other tools time the GEMM."""
    return (str(row.get("tool", "")).startswith("aiconfigurator-core") and row["op"] == "gemm"
            and row["dtype"] in ("fp8", "fp4") and not str(row["name"]).endswith("_block"))


def engine_rows(rows: Sequence[Mapping[str, Any]], *, add_quantize: bool = True) -> list[dict[str, Any]]:
    """Rows as the engine runs them (module docstring): real devices only, fp8 GEMM with its
    activation quantize when `add_quantize` (the engine runs it as a kernel of its own) and without it
    otherwise, per-tensor fp8 first, the engine's own collectives before NCCL's, fastest kernel per
    shape. Input rows are not modified."""
    require_real_device(rows)
    quant: dict[tuple[str, int, int], dict[str, float]] = {}
    for r in rows:
        if r["name"] in QUANTIZE_PARTS:
            parts = quant.setdefault((str(r["device"]), int(r["shape"]["m"]), int(r["shape"]["k"])), {})
            parts[r["name"]] = min(parts.get(r["name"], np.inf), float(r["median_s"]))
    # per-tensor fp8 is what accelsim's fp8 means: where a device measured it for an op, that op's
    # block-scaled rows are left out (vLLM's block kernels have 180-350 us slow paths at small shapes)
    per_tensor = {(str(r["device"]), str(r["op"])) for r in rows
                  if r["dtype"] == "fp8" and not str(r["name"]).endswith("_block")}
    # the engine's own collective kernels, where measured: TensorRT-LLM runs its custom all-reduce for
    # tensor-parallel layers (as AIConfigurator's own TensorRT-LLM model does); nccl-tests rows, timed
    # back to back with all ranks in step, are kept only for (op, group size) the engine's table lacks
    own_coll = {(str(r["device"]), str(r["op"]), r["shape"].get("group")) for r in rows
                if r["op"] in O.COLLECTIVES and not str(r["name"]).endswith("_nccl")}
    best: dict[str, dict[str, Any]] = {}
    rank: dict[str, tuple[bool, float]] = {}
    for r in rows:
        r = dict(r)
        block = str(r["name"]).endswith("_block")
        if block and (str(r["device"]), str(r["op"])) in per_tensor:
            continue
        if str(r["name"]).endswith("_nccl") and (str(r["device"]), str(r["op"]), r["shape"].get("group")) in own_coll:
            continue
        if r["op"] == "gemm" and r["dtype"] in ("fp8", "fp4") and not block:
            has = row_has_quantize(r)
            if has != add_quantize:
                parts = quant.get((str(r["device"]), int(r["shape"]["m"]), int(r["shape"]["k"])), {})
                if QUANTIZE not in parts:
                    continue  # the engine's cost of this fp8 layer is not known without its quantize
                q = sum(parts.values()) if has else parts[QUANTIZE]
                t = float(r["median_s"]) + (-q if has else q)
                if has and t < 0.5 * float(r["median_s"]):
                    continue  # the quantize cannot be most of a linear layer's time: rows disagree
                r["median_s"] = t
            r["name"] = "gemm_quantized" if add_quantize else "gemm_fp8"
        key = "|".join((str(r["device"]), str(r["op"]), str(r["dtype"]), json.dumps(r["shape"], sort_keys=True)))
        if key not in best or (block, r["median_s"]) < rank[key]:
            best[key], rank[key] = r, (block, r["median_s"])
    return list(best.values())


@dataclass(frozen=True)
class Point:
    """One operator's share of one row, in the coordinates of the row's chip."""

    cls: str
    dtype: str
    unit: str
    t_c: float
    t_m: float
    rows: float
    gather: float
    t: float
    dims: tuple[float, ...]


def op_coords(op: O.Op, hw: HwVec) -> tuple[float, float, float, float]:
    """(t_c, t_m, rows, gather) an operator's curve is evaluated at on chip `hw` (one chip): the
    roofline terms, or for a collective the fabric time and the group size."""
    if op.kind in O.COLLECTIVES:
        return 0.0, float(np.ravel(op.comm_bytes / link_bw(op, hw))[0]), float(op.group), 0.0
    return (float(np.ravel(op.flops / hw.peak[op.dtype])[0]), float(np.ravel(op.bytes / hw.mem_bw)[0]),
            float(np.ravel(op.rows)[0]), float(op.gather_bytes))


def points(rows: Sequence[Mapping[str, Any]], chips: Mapping[str, Chip]) -> list[Point]:
    """Training points of balanced-routing rows; `chips`: device name -> catalog chip."""
    hws = {d: HwVec.from_chips([c], shape=(1,)) for d, c in chips.items()}
    out = []
    for r in rows:
        if row_class(r) != str(r["op"]):
            continue
        hw = hws[str(r["device"])]
        ops = [o for o in row_ops(r) if not (o.kind in O.COLLECTIVES and o.group <= 1)]
        coords = [op_coords(o, hw) for o in ops]
        roof = np.asarray([max(c[0], c[1]) for c in coords])
        share = roof / roof.sum() if roof.sum() > 0 else np.full(len(ops), 1 / len(ops))
        for o, c, w in zip(ops, coords, share):
            if w > 0:
                dims = tuple(float(np.ravel(x)[0]) for x in o.dims)
                out.append(Point(str(o.kind), o.dtype, weight_key(r), *c, float(r["median_s"]) * w, dims))
    return out


def _cap(pts: list[Point], cap: int, seed: int) -> list[Point]:
    """At most `cap` points per (class, dtype), drawn at random (seeded)."""
    groups: dict[tuple[str, str], list[Point]] = {}
    for p in pts:
        groups.setdefault((p.cls, p.dtype), []).append(p)
    out = []
    for key in sorted(groups):
        g = groups[key]
        if len(g) > cap:
            rng = np.random.default_rng([seed, zlib.crc32("|".join(key).encode())])
            g = [g[i] for i in sorted(rng.choice(len(g), cap, replace=False))]
        out += g
    return out


def fit_rows(rows: Sequence[Mapping[str, Any]], chips: Mapping[str, Chip], *, seed: int = 0,
             cap: int = TRAIN_CAP) -> dict[str, Curve]:
    """Curves per operator class and (class, dtype) from engine rows (see the module docstring)."""
    pts = _cap(points(rows, chips), cap, seed)
    if not pts:
        return {}
    arr = lambda f: np.asarray([f(p) for p in pts], dtype=np.float64)
    return fit_curves([p.cls for p in pts], [p.dtype for p in pts], [{}] * len(pts), [p.unit for p in pts],
                      arr(lambda p: p.t_c), arr(lambda p: p.t_m), arr(lambda p: p.rows), arr(lambda p: p.t),
                      arr(lambda p: p.gather), dims=[np.asarray(p.dims) for p in pts], pooled=False)


def routing_factors(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per skewed MoE routing: median and p90 of (time / balanced time at the same shape and format)."""
    base: dict[str, float] = {}
    skew: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        if r["op"] != "fused_moe":
            continue
        shape = {k: v for k, v in r["shape"].items() if k != "routing"}
        key = f"{r['device']}|{r['dtype']}|{json.dumps(shape, sort_keys=True)}"
        routing = r["shape"].get("routing", BALANCED)
        if routing == BALANCED:
            base[key] = float(r["median_s"])
        else:
            skew.setdefault(routing, []).append((key, float(r["median_s"])))
    out = {}
    for routing, vals in sorted(skew.items()):
        ratio = np.asarray([t / base[k] for k, t in vals if k in base])
        if len(ratio):
            out[routing] = {"n": len(ratio), "median": float(np.median(ratio)),
                            "p90": float(np.percentile(ratio, 90))}
    return out


def predict_rows(rows: Sequence[Mapping[str, Any]], chip: Chip, eff: Efficiency) -> np.ndarray:
    """Seconds per row through `accelsim.perf.cost` (the path `predict` takes) on `chip`."""
    hw = HwVec.from_chips([chip], shape=(1,))
    return np.asarray([float(np.ravel(cost(row_ops(r), hw, eff).total_s)[0]) for r in rows])


def error_table(rows: Sequence[Mapping[str, Any]], chip: Chip, models: Mapping[str, Efficiency], *,
                seed: int = 0, cap: int = EVAL_CAP) -> dict[str, dict[str, Any]]:
    """Per reported class (`row_class`) and model: n, median and p90 absolute % error, median signed
    ln error, and the same restricted to rows measured >= SMALL_OP_S (`*_ge20us`). At most `cap`
    rows per class are evaluated (seeded sample)."""
    by_cls: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_cls.setdefault(row_class(r), []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for cls in sorted(by_cls):
        sel = by_cls[cls]
        if len(sel) > cap:
            rng = np.random.default_rng([seed, zlib.crc32(cls.encode())])
            sel = [sel[i] for i in sorted(rng.choice(len(sel), cap, replace=False))]
        meas = np.asarray([float(r["median_s"]) for r in sel])
        entry: dict[str, Any] = {"n": len(sel), "n_ge20us": int((meas >= SMALL_OP_S).sum())}
        for name, eff in models.items():
            pred = predict_rows(sel, chip, eff)
            entry[name] = summarize(meas, pred)
        out[cls] = entry
    return out


def summarize(meas: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """median / p90 absolute % error (all rows and rows >= SMALL_OP_S); median signed, median and p90
    absolute ln error."""
    ape = 100 * np.abs(pred - meas) / meas
    big = meas >= SMALL_OP_S
    q = lambda a, p: float(np.percentile(a, p)) if len(a) else None
    return {"median_ape": q(ape, 50), "p90_ape": q(ape, 90), "median_ape_ge20us": q(ape[big], 50),
            "p90_ape_ge20us": q(ape[big], 90), "median_ln": q(np.log(pred / meas), 50),
            "median_abs_ln": q(np.abs(np.log(pred / meas)), 50), "p90_abs_ln": q(np.abs(np.log(pred / meas)), 90)}


def profile_from(curves: Mapping[str, Curve], chip: Chip, chips: Sequence[str], band_log: Mapping[str, float],
                 report: Mapping[str, Any], provenance: Mapping[str, Any]) -> Profile:
    return Profile(chip, dict(curves), dict(band_log), dict(report), dict(provenance), chips=tuple(chips))


def efficiency(profile: Profile, base: Efficiency, fidelity: Fidelity = Fidelity.CALIBRATED) -> CalibratedEfficiency:
    return CalibratedEfficiency(profile, base, fidelity=fidelity)


def roofline() -> Efficiency:
    return Roofline()
