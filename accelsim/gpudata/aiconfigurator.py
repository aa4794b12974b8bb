"""AIConfigurator's op database as accelsim measurement rows.

`aiconfigurator-core` (PyPI, Apache-2.0) ships measured per-GPU kernel latencies at
`aiconfigurator_core/systems/data/<system>/<op>/<framework>/<version>/<table>.parquet`, with a
`collection_meta.yaml` beside each (how the table was collected). Only these files are read, through
importlib.resources; the package's code is never called.

Units: the `latency` column is in milliseconds. Checked against peak FLOP/s: the largest H100 bf16
GEMM (4353 x 65536 x 51200, 2.9e13 FLOP) reads 39.3, i.e. 744 TFLOP/s = 75% of the 989 TFLOP/s
dense peak if milliseconds (a seconds reading would be 0.07% of peak, microseconds 750x above it);
tests/gpudata checks every imported GEMM against its chip's peak. Collective `message_size` counts
elements of the collective's dtype (8-GPU all-reduce of 2^28 half elements in 2.11 ms is a 445 GB/s
bus bandwidth on 450 GB/s NVLink 4; read as bytes it would be half that).

Each table becomes rows of `accelsim.measurements` with FLOPs and bytes from `accelsim.ops` (through
`accelsim.calibrate.data.row_ops`, the one place a measurement row becomes operators), the kernel
source in `config`, and the provenance in `tool`: package and version, licence, system, framework
and version, table, and the table's collection tag.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.errors import UserError

PACKAGE = "aiconfigurator-core"
MODULE = "aiconfigurator_core"
LICENSE = "Apache-2.0"
TOOL_PREFIX = "aiconfigurator-core"
MS = 1e-3  # latency column unit (see the module docstring)

# AIConfigurator system -> accelsim catalog chip (hwmodels/<chip>.toml).
SYSTEM_CHIPS: dict[str, str] = {
    "a100_sxm": "a100-sxm", "h100_sxm": "h100-sxm", "h200_sxm": "h200-sxm", "b200_sxm": "b200",
    "gb200": "gb200", "b300_sxm": "b300", "gb300": "gb300", "l40s": "l40s",
}
# --ops keyword -> op directories of the database
OP_GROUPS: dict[str, tuple[str, ...]] = {
    "gemm": ("gemm",), "moe": ("moe",), "attention": ("attention",), "comm": ("comm",), "quantize": ("quantize",),
}
# Storage formats -> (accelsim dtype the op computes in, weight bytes per element). Formats not here
# (int4 weight-only, w4a16 / w4a8 mixes) are counted as skipped.
FORMATS: dict[str, tuple[str, float]] = {
    "bfloat16": ("bf16", 2.0), "float16": ("bf16", 2.0), "half": ("bf16", 2.0), "fp8": ("fp8", 1.0),
    "fp8_block": ("fp8", 1.0), "nvfp4": ("fp4", 4.5 / 8), "int8": ("int8", 1.0),
}


@dataclass(frozen=True)
class Table:
    """One parquet table of the database."""

    system: str
    op: str  # op directory: gemm, moe, attention, comm, quantize, ...
    framework: str
    version: str
    name: str  # file stem, e.g. gemm_perf
    path: Path
    collection: str  # collection_meta.yaml `provenance` (collected / legacy / local), "" when absent

    @property
    def chip(self) -> str | None:
        return SYSTEM_CHIPS.get(self.system)

    def num_rows(self) -> int:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(self.path).metadata.num_rows)

    def tool(self, package_version: str) -> str:
        return (f"{TOOL_PREFIX} {package_version} ({LICENSE}); system {self.system}; {self.framework} "
                f"{self.version}; table {self.op}/{self.name}; collection {self.collection or 'unknown'}")


def package_version() -> str:
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


def data_root() -> Path:
    """`aiconfigurator_core/systems/data` of the installed package (UserError when not installed)."""
    try:
        root = importlib.resources.files(MODULE).joinpath("systems", "data")
    except ModuleNotFoundError:
        raise UserError(f"the GPU op database needs {PACKAGE} (pip install 'accelsim[gpudata]')") from None
    path = Path(str(root))
    if not path.is_dir():
        raise UserError(f"{PACKAGE} is installed but has no systems/data folder at {path}")
    return path


def _version_key(v: str) -> tuple[Any, ...]:
    """Sort key for framework versions: numeric parts numerically ('0.5.10' > '0.5.9'), rc before final."""
    parts = re.findall(r"\d+|[a-z]+", v.lower())
    key = []
    for p in parts:
        if p.isdigit():
            key.append((1, int(p), ""))
        else:  # a pre-release tag sorts below the release it precedes
            key.append((0, 0, p))
    return (*key, (0.5, 0, ""))


def _collection(folder: Path) -> str:
    meta = folder / "collection_meta.yaml"
    if not meta.is_file():
        return ""
    m = re.search(r"^provenance:\s*(\S+)", meta.read_text(encoding="utf-8"), re.MULTILINE)
    return m.group(1) if m else ""


def list_tables(root: Path | None = None) -> list[Table]:
    """Every parquet table under `root` (default: the installed package's data folder)."""
    root = data_root() if root is None else Path(root)
    out = []
    for path in sorted(root.glob("*/*/*/*/*.parquet")):
        version_dir = path.parent
        system, op, framework = version_dir.parent.parent.parent.name, version_dir.parent.parent.name, \
            version_dir.parent.name
        out.append(Table(system, op, framework, version_dir.name, path.stem, path, _collection(version_dir)))
    return out


def fullest(tables: Iterable[Table]) -> list[Table]:
    """Per (system, op, framework, table), the version with the most rows (the newest on a tie):
    the database adds small re-collections under newer versions (e.g. trtllm 1.3.0rc23's 10,692 H100
    MoE rows beside rc20's 126,360), so the newest is often not the full collection."""
    best: dict[tuple[str, str, str, str], tuple[tuple[Any, ...], Table]] = {}
    for t in tables:
        key = (t.system, t.op, t.framework, t.name)
        rank = (t.num_rows(), _version_key(t.version))
        if key not in best or rank > best[key][0]:
            best[key] = (rank, t)
    return sorted((t for _, t in best.values()), key=lambda t: (t.system, t.op, t.framework, t.name))


def select(system: str, *, frameworks: Sequence[str] | None = None, ops: Sequence[str] | None = None,
           version: str | None = None, root: Path | None = None) -> list[Table]:
    """Tables of one system that accelsim can convert (`CONVERTERS`): the fullest version of each
    (see `fullest`) unless `version` is given."""
    tables = list_tables(root)
    systems = sorted({t.system for t in tables})
    if system not in systems:
        raise UserError(f"unknown AIConfigurator system '{system}'; systems with data: {', '.join(systems)}")
    bad = sorted(set(ops or ()) - set(OP_GROUPS))
    if bad:
        raise UserError(f"--ops {','.join(bad)}: not one of {', '.join(OP_GROUPS)}")
    dirs = {d for o in (ops or OP_GROUPS) for d in OP_GROUPS[o]}
    mine = [t for t in tables if t.system == system and t.op in dirs and t.name in CONVERTERS]
    if frameworks:
        known = sorted({t.framework for t in mine})
        unknown = sorted(set(frameworks) - set(known))
        if unknown:
            raise UserError(f"--framework {','.join(unknown)}: {system} has data for {', '.join(known)}")
        mine = [t for t in mine if t.framework in frameworks]
    if version:
        mine = [t for t in mine if t.version == version]
        if not mine:
            raise UserError(f"no {system} tables at framework version '{version}'")
        return mine
    return fullest(mine)


# ---- table -> measurement rows ---------------------------------------------------------------

def _base_row(t: Table, device: str, package: str) -> dict[str, Any]:
    return {"device": device, "device_kind": "gpu", "compute_capability": "", "driver": "", "torch_version": "",
            "triton_version": "", "git_commit": "", "date_utc": "", "tool": t.tool(package)}


def _gemm(df: Any) -> Iterable[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for r in df.itertuples(index=False):
        yield "gemm", f"gemm_{r.gemm_dtype}", {"m": r.m, "n": r.n, "k": r.k}, {"format": r.gemm_dtype}


def _moe(df: Any) -> Iterable[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for r in df.itertuples(index=False):
        shape = {"M": r.num_tokens, "H": r.hidden_size, "I": r.inter_size, "E": r.num_experts, "top_k": r.topk,
                 "tp": r.moe_tp_size, "ep": r.moe_ep_size, "routing": r.distribution}
        yield "fused_moe", f"moe_{r.moe_dtype}", shape, {"format": r.moe_dtype}


def _attention(phase: str) -> Callable[[Any], Iterable[tuple[str, str, dict[str, Any], dict[str, Any]]]]:
    def conv(df: Any) -> Iterable[tuple[str, str, dict[str, Any], dict[str, Any]]]:
        for r in df.itertuples(index=False):
            # prefill: isl new tokens per sequence; decode: one new token over isl + step cached positions
            ctx = r.isl if phase == "prefill" else r.isl + r.step
            shape = {"batch": r.batch_size, "seq": ctx, "heads": r.num_heads, "kv_heads": r.num_key_value_heads,
                     "head_dim": r.head_dim, "window": getattr(r, "window_size", 0)}  # older tables: no window
            fmt = r.kv_cache_dtype  # the op computes in the KV format (accelsim.graph.Precision.attn_dtype)
            yield (f"attn_{phase}", f"attn_{phase}", shape,
                   {"format": fmt, "attn_dtype": r.attn_dtype})
    return conv


def _nccl(df: Any) -> Iterable[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    kinds = {"all_reduce": "all_reduce", "alltoall": "all_to_all"}  # all_gather / reduce_scatter: no accelsim op
    dcol = "nccl_dtype" if "nccl_dtype" in df.columns else "allreduce_dtype"
    for r in df.itertuples(index=False):
        kind = kinds.get(r.op_name)
        fmt = getattr(r, dcol)
        # 16-bit payloads only: serving moves bf16 activations, and the int8 all-reduce rows are not
        # consistent with their own sizes (H100: 2^27 elements at 699 GB/s bus bandwidth, 2^28 at 342)
        if kind and fmt in FORMATS and FORMATS[fmt][0] == "bf16":
            nbytes = r.message_size * 2.0
            cfg = {"format": fmt, "implementation": getattr(r, "implementation", r.kernel_source)}
            yield kind, f"{kind}_{r.kernel_source}".lower(), {"bytes": nbytes, "group": r.num_gpus}, cfg


def _quantize(df: Any) -> Iterable[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    for r in df.itertuples(index=False):
        # scale_matrix reads bf16 and writes the 8-bit format; compute_scale only reads (an amax)
        per_elem = 3.0 if r.op_name == "scale_matrix" else 2.0
        yield ("elementwise", f"quantize_{r.op_name}", {"m": r.m, "k": r.k, "elems": r.m * r.k,
                                                         "bytes_per_elem": per_elem}, {"format": r.quant_dtype})


CONVERTERS: dict[str, Callable[[Any], Iterable[tuple[str, str, dict[str, Any], dict[str, Any]]]]] = {
    "gemm_perf": _gemm, "moe_perf": _moe, "context_attention_perf": _attention("prefill"),
    "generation_attention_perf": _attention("decode"), "nccl_perf": _nccl, "custom_allreduce_perf": _nccl,
    "scale_matrix_perf": _quantize, "computescale_perf": _quantize,
}


def convert(table: Table, *, package: str | None = None, limit: int | None = None, kernel: str | None = None,
            routing: str | None = None, sample: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """(measurement rows, rows skipped for an unsupported number format) of one table.
    kernel: keep rows whose kernel_source contains it; routing: keep MoE rows of that distribution;
    limit: the first N rows; sample: N rows drawn at random (seed 0) when the table has more."""
    import pandas as pd

    from accelsim.calibrate.data import row_ops

    package = package or package_version()
    df = pd.read_parquet(table.path)
    if kernel:
        df = df[df["kernel_source"].str.contains(kernel, case=False, regex=False)]
    if routing and "distribution" in df.columns:
        df = df[df["distribution"] == routing]
    if limit is not None:
        df = df.iloc[:limit]
    if sample is not None and len(df) > sample:
        df = df.sample(n=sample, random_state=0)
    df = df[np.isfinite(df["latency"]) & (df["latency"] > 0)]
    # a kernel source named "a_minus_b" stores a difference of two kernels' times, not a kernel's time
    df = df[~df["kernel_source"].astype(str).str.contains("_minus_", regex=False)]
    out: list[dict[str, Any]] = []
    skipped = 0
    base = None
    for (op, name, shape, cfg), lat, ks, dev in zip(CONVERTERS[table.name](df), df["latency"], df["kernel_source"],
                                                     df["device"]):
        fmt = cfg.pop("format")
        if fmt not in FORMATS:
            skipped += 1
            continue
        shape = {k: (v if isinstance(v, str) else float(v) if isinstance(v, float) else int(v))
                 for k, v in shape.items()}
        dtype = FORMATS[fmt][0]
        if op == "elementwise":
            dtype = "bf16"  # quantize reads bf16 activations; the format written is in the name
        row = {"op": op, "name": name, "dtype": dtype, "shape": shape, "config": {"kernel_source": str(ks), **cfg}}
        ops = row_ops(row)
        if base is None or base["device"] != dev:
            base = _base_row(table, str(dev), package)
        t = float(lat) * MS
        out.append({**row, "flops": float(sum(np.sum(o.flops) for o in ops)),
                    "bytes": float(sum(np.sum(o.bytes) for o in ops)), "median_s": t, "p20_s": t, "p80_s": t,
                    "reps": 0, **base})
    return out, skipped


def import_rows(tables: Sequence[Table], *, limit: int | None = None, kernel: str | None = None,
                routing: str | None = None, sample: int | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rows of every table (filters as `convert`) and a summary (per table: rows written and skipped)."""
    package = package_version()
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {"package": PACKAGE, "package_version": package, "license": LICENSE, "tables": []}
    for t in tables:
        got, skipped = convert(t, package=package, limit=limit, kernel=kernel, routing=routing, sample=sample)
        rows += got
        summary["tables"].append({"system": t.system, "chip": t.chip, "op": t.op, "framework": t.framework,
                                  "version": t.version, "table": t.name, "collection": t.collection,
                                  "rows": len(got), "skipped_format": skipped})
    return rows, summary

