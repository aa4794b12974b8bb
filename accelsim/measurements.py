"""The measurement schema: one CSV row per timed operator call, with provenance.

Written by `accelsim measure`, the kernel benchmark and the tuner; read by calibration and the
tuner's replay device. FLOPs and bytes come from `accelsim.ops` so that achieved rates and the
model's predictions use the same counts. Pure Python + csv: importable on the GPU machine.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from accelsim.errors import UserError

FIELDS: tuple[str, ...] = (
    # what ran
    "op",  # an accelsim.ops.OpKind value, or "fused_moe" for a whole MoE layer
    "name",  # free label, e.g. "matmul", "grouped_mm", "triton_fused_moe"
    "dtype",
    "shape",  # JSON object of the operator's dimensions, e.g. {"m": 64, "n": 4096, "k": 4096}
    "config",  # JSON object of kernel parameters ("" when none)
    "flops",
    "bytes",
    # how long it took
    "median_s",
    "p20_s",
    "p80_s",
    "reps",
    # where and when
    "device",  # e.g. "NVIDIA H100 80GB HBM3" or "cpu:<model name>"
    "device_kind",  # "cpu" or "gpu"
    "compute_capability",
    "driver",
    "torch_version",
    "triton_version",
    "git_commit",
    "date_utc",
    "tool",  # which program wrote the row
)


# A fused-MoE row's shape: experts, hidden, intermediate (per shard), top-k, tokens — the keys the
# tuner writes. Readers go through `moe_shape`, which also accepts the long names.
MOE_SHAPE_KEYS: tuple[str, ...] = ("E", "H", "I", "top_k", "M")
_MOE_ALIASES = {"E": ("E", "experts"), "H": ("H", "hidden"), "I": ("I", "inter", "intermediate"),
                "top_k": ("top_k",), "M": ("M", "m")}


def moe_shape(shape: Mapping[str, Any]) -> dict[str, int] | None:
    """A fused-MoE shape in `MOE_SHAPE_KEYS`, from either spelling; None if a dimension is missing."""
    out = {}
    for key, names in _MOE_ALIASES.items():
        val = next((shape[n] for n in names if n in shape), None)
        if val is None:
            return None
        out[key] = int(val)
    return out


def git_commit(cwd: str | os.PathLike[str] | None = None) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=False)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(tool: str, **device: Any) -> dict[str, Any]:
    """Common provenance columns; pass device, device_kind, driver, ... as known by the caller."""
    versions: dict[str, str] = {}
    for mod in ("torch", "triton"):
        try:
            versions[f"{mod}_version"] = __import__(mod).__version__
        except ImportError:
            versions[f"{mod}_version"] = ""
    return {
        "device": platform.processor() or platform.machine(),
        "device_kind": "cpu",
        "compute_capability": "",
        "driver": "",
        **versions,
        "git_commit": git_commit(Path(__file__).parent),
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool": tool,
        **device,
    }


def row(**values: Any) -> dict[str, Any]:
    """A schema row: dict-valued shape/config are JSON-encoded; unknown keys are an error."""
    extra = set(values) - set(FIELDS)
    if extra:
        raise ValueError(f"unknown measurement fields: {sorted(extra)}")
    out = {k: values.get(k, "") for k in FIELDS}
    for key in ("shape", "config"):
        if isinstance(out[key], Mapping):
            out[key] = json.dumps(out[key], sort_keys=True)
    return out


def write(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> int:
    """Atomically write rows (in schema order) to a CSV; returns the row count."""
    from accelsim.io import atomic_open

    rows = [row(**r) for r in rows]
    if str(path).endswith(".gz"):  # compressed: imported databases are large and repetitive
        import gzip
        import io

        with atomic_open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
                io.TextIOWrapper(gz, encoding="utf-8", newline="") as fh:
            _write_rows(fh, rows)
        return len(rows)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        _write_rows(fh, rows)
    return len(rows)


def _write_rows(fh: Any, rows: list[dict[str, Any]]) -> None:
    w = csv.DictWriter(fh, fieldnames=FIELDS)
    w.writeheader()
    w.writerows(rows)


def _open_text(p: Path) -> Any:
    if p.suffix == ".gz":
        import gzip

        return gzip.open(p, "rt", newline="", encoding="utf-8")
    return p.open(newline="", encoding="utf-8")


def _row_checker() -> Any:
    """A function (row, where) -> the row's typed values, or a one-line UserError naming `where` and the
    field. The rules, declared once: times finite and > 0 (median) or >= 0 (p20, p80); FLOPs and bytes
    finite and >= 0; reps a whole number >= 0; shape and config JSON objects (or empty)."""
    from typing import Annotated

    from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError
    from typing_extensions import TypedDict

    def _json(v: Any) -> Any:
        return (json.loads(v) if v else {}) if isinstance(v, str) else v

    def _reps(v: Any) -> Any:
        return 0 if v in ("", None) else (float(v) if isinstance(v, str) else v)

    nonneg = Annotated[float, Field(ge=0, allow_inf_nan=False)]
    obj = Annotated[dict[str, Any], BeforeValidator(_json)]

    class Row(TypedDict):
        flops: nonneg
        bytes: nonneg
        median_s: Annotated[float, Field(gt=0, allow_inf_nan=False)]
        p20_s: nonneg
        p80_s: nonneg
        reps: Annotated[int, BeforeValidator(_reps), Field(ge=0)]
        shape: obj
        config: obj

    adapter = TypeAdapter(Row)
    keys = tuple(Row.__annotations__)

    def check(row: Mapping[str, Any], where: str) -> dict[str, Any]:
        try:
            return dict(adapter.validate_python({k: row[k] for k in keys}))
        except ValidationError as exc:
            e = exc.errors()[0]
            field = str(e["loc"][0]) if e["loc"] else "row"
            got = str(row.get(field))[:40]
            rule = {"greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}",
                    "finite_number": "must be a finite number"}.get(e["type"])
            if rule is None:  # not a number, not JSON ...: say what pydantic found
                raise UserError(f"{where}: bad value {field} = {got!r} ({e['msg']})") from None
            raise UserError(f"{where}: {field} {rule.format(**e.get('ctx', {}))}, got {got!r}") from None

    return check


def _rows(reader: csv.DictReader, name: str) -> Any:
    """The reader's rows; a row the csv module cannot parse (a field over its size limit) is a UserError."""
    try:
        yield from reader
    except csv.Error as exc:
        raise UserError(f"{name}: after line {reader.line_num}: not a CSV row ({exc})") from None


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a measurement CSV (gzip-compressed when it ends in .gz); numbers parsed, shape/config
    decoded; bad files are a UserError."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"measurement file '{path}' does not exist")
    with _open_text(p) as fh:
        reader = csv.DictReader(fh)
        missing = set(FIELDS) - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{p.name}: not a measurement file, missing columns {', '.join(sorted(missing))}")
        check = _row_checker()
        out = []
        for i, r in enumerate(_rows(reader, p.name), start=2):
            if None in r or None in r.values():
                have = sum(v is not None for k, v in r.items() if k is not None) + len(r.get(None) or ())
                raise UserError(f"{p.name}: line {i}: {have} fields, expected {len(FIELDS)} "
                                "(a truncated or malformed row)")
            r.update(check(r, f"{p.name}: line {i}"))
            out.append(r)
    return out


# Device strings (as torch / nvidia-smi / rocm-smi report them) -> catalog chip; the longer, more
# specific patterns come first so that 'GB200' is not read as 'B200' nor 'H200' as 'H100'.
DEVICE_CHIPS: tuple[tuple[str, str], ...] = (
    ("GB300", "gb300"), ("B300", "b300"), ("GB200", "gb200"), ("B200", "b200"), ("H200", "h200-sxm"),
    ("H100", "h100-sxm"), ("A100-SXM", "a100-sxm"), ("A100 80GB HBM", "a100-sxm"), ("L40S", "l40s"),
    ("MI355X", "mi355x"), ("MI300X", "mi300x"),
)


def chip_for_device(device: str) -> str | None:
    """The catalog chip a measurement's device string names ('NVIDIA H100 80GB HBM3' -> 'h100-sxm'),
    or None (CPUs, unknown devices). The one device -> chip rule of calibration, studies and the dashboard."""
    dev = device.lower()
    return next((name for pattern, name in DEVICE_CHIPS if pattern.lower() in dev), None)
