"""Tuned-config files in the format vLLM and SGLang read: write, read, check, find, and serve.

Names: `accelsim.tune.names` (every shipped form: dtype, block_shape, per_channel_quant, backend,
``_down``, empty device names). Content: batch sizes as string keys ("1", "2", ...), each mapping to
a config object, plus an optional top-level "triton_version" (written by tuners, skipped by
loaders). The six keys of ``CONFIG_KEYS`` are required; any other key (ROCm's waves_per_eu, kpack,
matrix_instr_nonkdim; SPLIT_K, USE_TMA, num_ctas, ...) is kept in ``TunedFile.extras`` and listed
in ``unknown_keys``, never dropped silently. Imported files serve as priors (configs measured
first), as labels for the cost model, and, through `kernels.moe`'s config directory or provider
hook, as `fused_moe` defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accelsim.errors import UserError
from accelsim.tune.names import FILE_DTYPE, ConfigName, file_name, parse_name
from accelsim.tune.space import CONFIG_KEYS, Config, as_config, as_tuple

__all__ = ["FILE_DTYPE", "TunedFile", "check_file", "config_files", "file_name", "find_file", "read_dir",
           "read_file", "tuned_provider", "write_file"]

_KNOWN_EXTRA = ("waves_per_eu", "matrix_instr_nonkdim", "kpack")  # ROCm-only Triton options
# An entry without num_warps / num_stages launches with Triton's defaults (CUDAOptions in
# triton/backends/nvidia/compiler.py, triton 3.9: num_warps=4, num_stages=3); SGLang ships such entries.
TRITON_LAUNCH_DEFAULTS = {"num_warps": 4, "num_stages": 3}


@dataclass(frozen=True)
class TunedFile:
    """A parsed config file: its name's fields, {M: config} and {M: {other key: value}}."""

    name: ConfigName
    table: dict[int, Config]
    extras: dict[int, dict[str, Any]] = field(default_factory=dict)
    triton_version: str | None = None
    defaulted: tuple[int, ...] = ()  # batch sizes whose num_warps/num_stages are Triton's defaults

    @property
    def experts(self) -> int:
        return self.name.experts

    @property
    def n(self) -> int:
        return self.name.n

    @property
    def device(self) -> str:
        """The device as written in the name (not normalised; see ``name.normalised()``)."""
        return self.name.device

    @property
    def dtype(self) -> str | None:
        """The file's dtype string (None when omitted)."""
        return self.name.dtype

    @property
    def unknown_keys(self) -> list[str]:
        """Keys beyond the six config keys, over all entries, sorted."""
        return sorted({k for extra in self.extras.values() for k in extra})

    def nearest(self, m: int) -> Config:
        """The entry for the batch-size key nearest to m (ties to the smaller), as vLLM looks up."""
        key = min(sorted(self.table), key=lambda k: abs(k - m))
        return dict(self.table[key])

    def priors(self, m: int) -> list[Config]:
        """All entries, nearest batch size first: the configs worth measuring first for m."""
        keys = sorted(self.table, key=lambda k: (abs(k - m), k))
        out: list[Config] = []
        for k in keys:
            if self.table[k] not in out:
                out.append(dict(self.table[k]))
        return out


def write_file(directory: str | os.PathLike[str], experts: int, n: int, device: str, dtype: str,
               best: Mapping[int, Mapping[str, int]], triton_version: str | None = None,
               block_shape: tuple[int, int] | None = None) -> Path:
    """Write (atomically) the tuned file for these best configs under vLLM's exact name (device
    normalised as vLLM does); returns its path. Existing entries of the same file for other batch
    sizes are kept (a partial tuning run adds to a file)."""
    from accelsim.io import write_json

    path = Path(directory) / file_name(experts, n, device, dtype, block_shape)
    table: dict[int, Config] = read_file(path).table if path.is_file() else {}
    for m, cfg in best.items():
        table[int(m)] = as_config(as_tuple(cfg))
    doc: dict[str, Any] = {}
    if triton_version:
        doc["triton_version"] = triton_version
    doc.update({str(m): {k: table[m][k] for k in CONFIG_KEYS} for m in sorted(table)})
    write_json(path, doc)
    return path


def _entry(p: Path, key: str, cfg: Any) -> tuple[Config, dict[str, Any]]:
    if not isinstance(cfg, dict):
        raise UserError(f"{p.name}: key '{key}' must be a batch size mapping to a config object")
    missing = [k for k in CONFIG_KEYS if k not in cfg and k not in TRITON_LAUNCH_DEFAULTS]
    if missing:
        other = sorted(set(cfg) - set(CONFIG_KEYS))
        hint = f" (it has {', '.join(other)}: another kernel's table)" if other else ""
        raise UserError(f"{p.name}: batch size {key} lacks {', '.join(missing)}{hint}")
    values = {k: cfg.get(k, TRITON_LAUNCH_DEFAULTS.get(k)) for k in CONFIG_KEYS}
    bad = [k for k, v in values.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if bad:
        raise UserError(f"{p.name}: batch size {key}: {bad[0]}={values[bad[0]]!r} is not a positive integer")
    return as_config(as_tuple(values)), {k: v for k, v in cfg.items() if k not in CONFIG_KEYS}


def read_file(path: str | os.PathLike[str]) -> TunedFile:
    """Parse a vLLM/SGLang config file; UserError (one line, naming the file and the problem) if it
    is not one. Keys beyond the six config keys are kept in ``extras``."""
    p = Path(path)
    name = parse_name(p.name)
    try:
        raw = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{p.name}: cannot read JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{p.name}: expected a JSON object keyed by batch size")
    version = raw.pop("triton_version", None)
    table: dict[int, Config] = {}
    extras: dict[int, dict[str, Any]] = {}
    defaulted = []
    for key, cfg in raw.items():
        if not str(key).isdigit() or int(key) < 1:
            raise UserError(f"{p.name}: key '{key}' must be a batch size mapping to a config object")
        table[int(key)], extra = _entry(p, str(key), cfg)
        if extra:
            extras[int(key)] = extra
        if any(k not in cfg for k in TRITON_LAUNCH_DEFAULTS):
            defaulted.append(int(key))
    if not table:
        raise UserError(f"{p.name}: no batch-size entries")
    return TunedFile(name, dict(sorted(table.items())), extras, None if version is None else str(version),
                     tuple(sorted(defaulted)))


def check_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One row of `accelsim tune --check-configs`: {file, ok, reason, device, dtype, E, N,
    batch_sizes, gemm, block_shape, per_channel_quant, backend, unknown_keys}."""
    p = Path(path)
    row: dict[str, Any] = {"file": p.name, "ok": False, "reason": "", "device": None, "dtype": None, "E": None,
                           "N": None, "batch_sizes": [], "gemm": None, "block_shape": None,
                           "per_channel_quant": None, "backend": None, "unknown_keys": []}
    try:
        name = parse_name(p.name)
        row.update(device=name.device, dtype=name.dtype or "default", E=name.experts, N=name.n, gemm=name.gemm,
                   block_shape=list(name.block_shape) if name.block_shape else None,
                   per_channel_quant=name.per_channel_quant, backend=name.backend)
        f = read_file(p)
    except UserError as exc:
        row["reason"] = str(exc).removeprefix(f"{p.name}: ")
        return row
    row.update(ok=True, batch_sizes=sorted(f.table), unknown_keys=f.unknown_keys)
    known = [k for k in f.unknown_keys if k in _KNOWN_EXTRA]
    other = [k for k in f.unknown_keys if k not in _KNOWN_EXTRA]
    notes = ([f"ROCm keys kept: {', '.join(known)}"] if known else []) + \
            ([f"other keys kept: {', '.join(other)}"] if other else [])
    if f.defaulted:
        notes.append(f"num_warps/num_stages absent at M={','.join(map(str, f.defaulted))}: Triton's launch "
                     "defaults (4, 3) used")
    row["reason"] = "; ".join(notes)
    return row


def config_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The *.json files of a directory, sorted; UserError if it is not a directory."""
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"'{directory}' is not a directory of config files")
    return sorted(p for p in d.iterdir() if p.suffix == ".json" and p.is_file())


def read_dir(directory: str | os.PathLike[str]) -> tuple[list[TunedFile], list[dict[str, Any]]]:
    """Every config file of a directory: (parsed files, rows of the rejected ones)."""
    files, rejected = [], []
    for p in config_files(directory):
        try:
            files.append(read_file(p))
        except UserError:
            rejected.append(check_file(p))
    return files, rejected


def find_file(directory: str | os.PathLike[str], experts: int, n: int, device: str, dtype: str) -> TunedFile | None:
    path = Path(directory) / file_name(experts, n, device, dtype)
    return read_file(path) if path.is_file() else None


def tuned_provider(directory: str | os.PathLike[str], device: str) -> Callable[..., Config | None]:
    """A `kernels.moe.set_config_provider` hook serving configs from vLLM files in ``directory`` for
    ``device`` (a name as torch reports it). Signature (M, E, N, K, top_k, torch dtype); returns None
    (fall through to the kernel's own files and defaults) when no file matches."""

    def provider(m: int, e: int, n: int, k: int, top_k: int, dtype: Any) -> Config | None:
        name = str(dtype).removeprefix("torch.")
        acc = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "float8_e4m3fn": "fp8"}.get(name)
        if acc is None:
            return None
        found = find_file(directory, e, n, device, acc)
        return None if found is None else found.nearest(m)

    return provider


def nearest_file(directory: str | os.PathLike[str], device: str, experts: int, n: int, dtype: str) -> TunedFile | None:
    """The shipped file closest to (E, N) for this device and accelsim dtype, or None: same device
    (vLLM-normalised name, or the same `space.DEVICE_LIMITS` entry) and dtype, not a ``_down`` table;
    distance |log2(E'/E)| + |log2(N'/N)|, ties to the smaller E', N'."""
    import math

    from accelsim.tune.names import vllm_device_name
    from accelsim.tune.space import device_limits

    def same_device(name: str) -> bool:
        if vllm_device_name(name) == vllm_device_name(device):
            return True
        try:
            return device_limits(name.replace("_", " ")).name == device_limits(device).name
        except UserError:
            return False

    files, _ = read_dir(directory)
    fits = [f for f in files if not f.name.down and f.name.accel_dtype == dtype and same_device(f.device)]
    if not fits:
        return None
    return min(fits, key=lambda f: (abs(math.log2(f.experts / experts)) + abs(math.log2(f.n / n)), f.experts, f.n))
