"""Measurement rows as calibration data: the chip they ran on, their operators, a held-out split.

Chip: `--hw NAME` names a catalog chip; otherwise the rows' device fingerprint decides. A GPU's
fingerprint maps to its catalog entry ("NVIDIA H100 80GB HBM3" -> h100-sxm). A CPU has no
datasheet: its peaks are the rates measured on the chip-defining rows (`matmul_peak` per dtype,
`copy_peak`) that `accelsim measure --device cpu` always writes. Those rows define the chip, so
they are kept out of both the training and the held-out split; everything else about the CPU chip
(power, fabric) is marked assumed.

Split: the unit is a shape (operator class, name, dtype, shape), with all kernel configs of a shape
on the same side, so "held out" means "a shape the fit never saw". Per operator class a fraction
of the shapes is held out, chosen by a seeded permutation: the same seed gives the same split.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from accelsim import measurements as M
from accelsim import ops as O
from accelsim.errors import UserError
from accelsim.spec import load_chip
from accelsim.spec.chip import DTYPE_BYTES, DTYPES, Chip, Value

PEAK_MATMUL, PEAK_COPY = "matmul_peak", "copy_peak"
# Format names other tools write -> the accelsim dtype whose peak applies.
DTYPE_ALIASES = {"fp16": "bf16", "float16": "bf16", "bfloat16": "bf16", "float32": "fp32", "e4m3": "fp8",
                 "float8_e4m3fn": "fp8"}
# What a CPU chip's non-measured fields are set to, each marked assumed with its reason.
CPU_ASSUMED: dict[str, tuple[float, str]] = {
    "tdp_w": (15.0, "one server core's share of socket power (~15 W/core); not measured here"),
    "idle_w": (5.0, "about a third of the per-core TDP share; not measured here"),
    "scale_up_domain_size": (1, "a single CPU is measured; no scale-up fabric"),
    "scale_out_bw_bytes_per_s": (1.25e9, "a 10 GbE NIC"),
}


def load_rows(paths: Sequence[str]) -> list[dict[str, Any]]:
    """Read every file (UserError on a missing file, a non-schema CSV or a non-positive time)."""
    if not paths:
        raise UserError("--measurements needs at least one measurement CSV")
    rows: list[dict[str, Any]] = []
    for path in paths:
        for line, r in enumerate(M.read(path), start=2):
            r["source_file"] = str(path)
            r["dtype"] = DTYPE_ALIASES.get(r["dtype"], r["dtype"])
            if r["dtype"] not in DTYPES:
                raise UserError(f"{Path(path).name}: line {line}: dtype '{r['dtype']}' is not one of "
                                f"{', '.join(DTYPES)}")
            if not (r["flops"] >= 0 and r["bytes"] >= 0) or r["flops"] + r["bytes"] <= 0:
                raise UserError(f"{Path(path).name}: line {line}: flops and bytes must be >= 0 and not both 0")
            rows.append(r)
    if not rows:
        raise UserError(f"no measurement rows in {', '.join(paths)}")
    return rows


# Measurement rows from these device kinds are real measurements; anything else (the tuner's
# "synthetic" replay data) is never calibrated on.
REAL_DEVICE_KINDS = ("cpu", "gpu")


def require_real_device(rows: Sequence[Mapping[str, Any]]) -> None:
    """UserError when a row is not a measurement of a real device (device_kind not cpu/gpu, or a
    replay tool wrote it): calibration would fit the model that generated the data."""
    for r in rows:
        kind, tool = str(r.get("device_kind", "")), str(r.get("tool", ""))
        if kind not in REAL_DEVICE_KINDS or "replay" in tool or "synthetic" in tool:
            where = Path(str(r.get("source_file", ""))).name or "measurements"
            raise UserError(f"{where}: rows from device '{r.get('device')}' (device_kind '{kind}', tool '{tool}') are "
                            "not measurements of a real device; calibration accepts only device_kind cpu or gpu")


def unit_key(row: Mapping[str, Any]) -> str:
    """The shape a row measured (its split unit): class, name, dtype and the JSON shape."""
    return f"{row['op']}|{row['name']}|{row['dtype']}|{json.dumps(row['shape'], sort_keys=True)}"


def config_key(row: Mapping[str, Any]) -> str:
    return json.dumps(row.get("config") or {}, sort_keys=True) if row.get("config") else ""


def row_ops(row: Mapping[str, Any]) -> list[O.Op]:
    """The operator(s) a row measured, rebuilt with `accelsim.ops` constructors from its shape (so
    the analytical model sees rows and gather sizes); a generic Op of the recorded FLOPs and bytes
    when the shape keys are not ones the constructors take."""
    s, dt, name = row["shape"], row["dtype"], row["name"]
    b = DTYPE_BYTES.get(dt, 2.0)
    # 8-bit and narrower weights meet bf16 activations and write bf16 (as accelsim.graph lowers them)
    a = b if b >= 2.0 else 2.0
    kind = row["op"]
    try:
        if kind == O.OpKind.GEMM and {"m", "n", "k"} <= set(s):
            return [O.gemm(name, s["m"], s["n"], s["k"], dtype=dt, a_bytes=a, w_bytes=b, out_bytes=a)]
        if kind == "fused_moe" and {"tp", "ep"} <= set(s) and (ms := M.moe_shape(s)) is not None:
            return moe_rank_ops(ms, int(s["tp"]), int(s["ep"]), dtype=dt)
        if kind in (O.OpKind.ATTN_PREFILL, O.OpKind.ATTN_DECODE) and {"batch", "seq", "heads"} <= set(s):
            return [attention_op(kind, s, dt)]
        if kind in (O.OpKind.ALL_REDUCE, O.OpKind.ALL_TO_ALL) and {"bytes", "group"} <= set(s):
            fn = O.all_reduce if kind == O.OpKind.ALL_REDUCE else O.all_to_all
            return [fn(name, s["bytes"], int(s["group"]), dtype="bf16")]
        if kind == O.OpKind.ELEMENTWISE and {"elems", "bytes_per_elem"} <= set(s):
            return [O.elementwise(name, s["elems"], dtype=dt, bytes_per_elem=s["bytes_per_elem"])]
        if kind == O.OpKind.GROUPED_GEMM and {"tokens", "n", "k", "experts"} <= set(s):
            return [O.grouped_gemm(name, s["tokens"], s["n"], s["k"], s["experts"], dtype=dt, a_bytes=b,
                                   w_bytes=b, out_bytes=b)]
        if kind == O.OpKind.EMBEDDING_BAG and {"samples", "lookups", "tables", "dim"} <= set(s):
            return [O.embedding_bag(name, s["samples"], s["lookups"], s["tables"], s["dim"], dtype=dt,
                                    row_bytes=b, out_bytes=b)]
        if kind == "fused_moe" and (ms := M.moe_shape(s)) is not None:
            return O.fused_moe_ops(ms["M"], ms["H"], ms["I"], ms["E"], ms["top_k"], act_bytes=2.0, weight_bytes=b,
                                   dtype=dt)
    except (TypeError, KeyError):
        pass
    op_kind = O.OpKind(kind) if kind in O.OpKind._value2member_map_ else O.OpKind.ELEMENTWISE
    return [O.Op(op_kind, name, dt, np.asarray(float(row["flops"])), np.asarray(float(row["bytes"])))]


def moe_rank_ops(shape: Mapping[str, Any], tp: int, ep: int, *, dtype: str) -> list[O.Op]:
    """A fused-MoE layer on one rank of a tp x ep expert group (accelsim.graph's sharding, no
    imbalance): the rank's share M/ep of the routed tokens, each expert's FFN split tp ways, the
    experts the batch touches spread over the ep ranks. shape: `measurements.MOE_SHAPE_KEYS`."""
    e, k, m = shape["E"], shape["top_k"], shape["M"]
    active = np.minimum(O.expected_experts_hit(m, e, k) / ep, e / ep)
    return O.fused_moe_ops(np.asarray(m, dtype=np.float64) / ep, shape["H"], shape["I"] / tp, e, k, act_bytes=2.0,
                           weight_bytes=DTYPE_BYTES.get(dtype, 2.0), dtype=dtype, experts_active=active)


def attention_op(kind: str, s: Mapping[str, Any], dtype: str) -> O.Op:
    """An attention row's operator: `batch` sequences of `seq` positions (prefill: all new, causal,
    so a token attends to seq/2 on average; decode: one new token over seq cached positions), a
    sliding `window` (> 0) caps the span as accelsim.graph caps local layers."""
    hd, kvh = s.get("head_dim", 128), s.get("kv_heads", s["heads"])
    span = s["seq"] / 2 if kind == O.OpKind.ATTN_PREFILL else s["seq"]
    if s.get("window", 0):
        span = min(span, s["window"])
    kw = dict(heads=s["heads"], qk_dim=hd, v_dim=hd, kv_elems_per_token=2 * kvh * hd, dtype=dtype, act_bytes=2.0,
              kv_bytes=DTYPE_BYTES.get(dtype, 2.0))
    if kind == O.OpKind.ATTN_PREFILL:
        return O.attention_prefill("attention", s["batch"] * s["seq"], span, **kw)
    return O.attention_decode("attention", s["batch"], span, **kw)


def rows_of(row: Mapping[str, Any]) -> float:
    """The GEMM-row count (tile-utilisation feature) of a row's main operator; inf when none."""
    return float(np.max(row_ops(row)[0].rows))


def gather_of(row: Mapping[str, Any]) -> float:
    """Bytes of one randomly gathered row (`Op.gather_bytes`) of a row's main operator; 0 = streaming."""
    return float(row_ops(row)[0].gather_bytes)


def split(rows: Sequence[Mapping[str, Any]], test_fraction: float, seed: int,
          exclude: set[int] | frozenset[int] = frozenset()) -> tuple[list[int], list[int]]:
    """(train, test) row indices. Per class, round(test_fraction x shapes) shapes are held out
    (at least one when the class has >= 3 shapes, none below); rows in `exclude` are in neither."""
    if not 0.0 < test_fraction < 1.0:
        raise UserError(f"--test-fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    units: dict[str, dict[str, list[int]]] = {}
    for i, r in enumerate(rows):
        if i not in exclude:
            units.setdefault(str(r["op"]), {}).setdefault(unit_key(r), []).append(i)
    train: list[int] = []
    test: list[int] = []
    for cls in sorted(units):
        keys = sorted(units[cls])
        # keep >= 2 shapes to fit on; a class of 1-2 shapes is only trained on
        n_test = min(max(1, round(test_fraction * len(keys))), len(keys) - 2) if len(keys) >= 3 else 0
        rng = np.random.default_rng([seed, zlib.crc32(cls.encode())])
        held = set(rng.permutation(len(keys))[:n_test].tolist())
        for j, key in enumerate(keys):
            (test if j in held else train).extend(units[cls][key])
    return sorted(train), sorted(test)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "cpu"


def cpu_chip(rows: Sequence[Mapping[str, Any]]) -> tuple[Chip, set[int]]:
    """The measured CPU as a Chip (peaks from the chip-defining rows) and those rows' indices."""
    peak_idx = {i for i, r in enumerate(rows) if r["name"] in (PEAK_MATMUL, PEAK_COPY)}
    peaks: dict[str, float] = {}
    prov: dict[str, Value] = {}
    bw = 0.0
    for i in sorted(peak_idx):
        r = rows[i]
        rate = (r["flops"] if r["name"] == PEAK_MATMUL else r["bytes"]) / r["median_s"]
        where = f"measured: {r['name']} {json.dumps(r['shape'], sort_keys=True)} median of {r['reps']} reps, " \
                f"{r['date_utc']} ({Path(r.get('source_file', '')).name})"
        if r["name"] == PEAK_MATMUL and rate > peaks.get(r["dtype"], 0.0):
            peaks[r["dtype"]] = rate
            prov[f"peak_flops.{r['dtype']}"] = Value(rate, source=where)
        elif r["name"] == PEAK_COPY and rate > bw:
            bw = rate
            prov["mem_bw_bytes_per_s"] = Value(rate, source=where)
    if not peaks or not bw:
        raise UserError("CPU measurements lack the chip-defining rows (matmul_peak and copy_peak, written by "
                        "`accelsim measure --device cpu`); re-measure or pass --hw NAME")
    if "bf16" not in peaks:  # every Chip needs a bf16 rate; a CPU without bf16 rows computes it as fp32
        peaks["bf16"] = peaks.get("fp32", max(peaks.values()))
        prov["peak_flops.bf16"] = Value(peaks["bf16"], assumed="no bf16 peak measured; the fp32 peak is used")
    device = str(rows[min(peak_idx)]["device"])
    mem = _phys_mem_bytes()
    prov["mem_capacity_bytes"] = Value(mem, assumed="physical memory of the machine running calibrate")
    prov["scale_up_bw_bytes_per_s"] = Value(bw, assumed="no fabric: set to the memory bandwidth")
    for key, (v, why) in CPU_ASSUMED.items():
        prov[key] = Value(v, assumed=why)
    year = int(str(rows[0].get("date_utc") or "2026")[:4] or 2026)
    prov["availability_year"] = Value(year, assumed="year of the measurement")
    chip = Chip(
        name=_slug(device.removeprefix("cpu:")), display_name=device, vendor="cpu",
        family="cpu", availability_year=year, peak_flops=MappingProxyType(peaks),
        mem_capacity_bytes=mem, mem_bw_bytes_per_s=bw, tdp_w=CPU_ASSUMED["tdp_w"][0],
        idle_w=CPU_ASSUMED["idle_w"][0], scale_up_bw_bytes_per_s=bw,
        scale_up_domain_size=int(CPU_ASSUMED["scale_up_domain_size"][0]),
        scale_out_bw_bytes_per_s=CPU_ASSUMED["scale_out_bw_bytes_per_s"][0],
        provenance=MappingProxyType(prov),
    )
    return chip, peak_idx


def _phys_mem_bytes() -> float:
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 16e9


def resolve_chip(rows: Sequence[Mapping[str, Any]], hw: str | None) -> tuple[Chip, str, set[int]]:
    """(chip, how it was chosen, indices of chip-defining rows to keep out of the split)."""
    if hw:
        return load_chip(hw), f"catalog chip '{hw}' (--hw)", set()
    devices = sorted({str(r["device"]) for r in rows})
    if len(devices) > 1:
        raise UserError(f"measurements come from {len(devices)} devices ({'; '.join(devices)}); calibrate one "
                        "device at a time or pass --hw NAME")
    device = devices[0]
    if all(r["device_kind"] == "cpu" for r in rows):
        chip, idx = cpu_chip(rows)
        return chip, f"CPU '{device}' with measured peaks", idx
    name = M.chip_for_device(device)
    if name:
        return load_chip(name), f"catalog chip '{name}' matched from device '{device}'", set()
    raise UserError(f"cannot tell which catalog chip device '{device}' is; pass --hw NAME")


def chip_from_dict(d: Mapping[str, Any]) -> Chip:
    """Inverse of `Chip.to_dict()` (the form a profile stores its chip in)."""
    prov = {k: Value(v["value"], v.get("source"), v.get("assumed")) for k, v in d.get("provenance", {}).items()}
    keys = ("mem_capacity_bytes", "mem_bw_bytes_per_s", "tdp_w", "idle_w", "scale_up_bw_bytes_per_s",
            "scale_out_bw_bytes_per_s", "sram_bytes", "sram_bw_bytes_per_s")
    try:
        return Chip(name=d["name"], display_name=d["display_name"], vendor=d["vendor"], family=d["family"],
                    availability_year=int(d["availability_year"]),
                    peak_flops=MappingProxyType({k: float(v) for k, v in d["peak_flops"].items()}),
                    scale_up_domain_size=int(d["scale_up_domain_size"]),
                    provenance=MappingProxyType(prov), **{k: d.get(k) for k in keys})
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"calibration profile: bad chip entry ({exc})") from None
