"""Tuned-config files in the format vLLM and SGLang read, and their import.

File name (vLLM `get_config_file_name`, kernels_and_tuners.md §1.4):
    E={E},N={N},device_name={device}[,dtype={dtype}].json
N is the per-shard intermediate size (w2.shape[2]); the device name is the name torch reports with
spaces replaced by underscores (``NVIDIA_H100_80GB_HBM3``); ``dtype`` is omitted for bf16/fp16 and
is ``fp8_w8a8`` / ``float32`` otherwise. Content: batch sizes as string keys ("1", "2", ...), each
mapping to the six config keys, plus a top-level "triton_version" (written by vLLM's tuner, skipped
by its loader). Imported files serve as priors for the search (configs measured first) and, through
`kernels.moe`'s config directory or provider hook, as `fused_moe` defaults.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelsim.errors import UserError
from accelsim.tune.space import CONFIG_KEYS, Config, as_config, as_tuple

# accelsim dtype -> the dtype= part of the file name (None: omitted)
FILE_DTYPE: dict[str, str | None] = {"bf16": None, "fp16": None, "fp32": "float32", "fp8": "fp8_w8a8"}
_NAME_RE = re.compile(r"^E=(\d+),N=(\d+),device_name=([^,]+?)(?:,dtype=([A-Za-z0-9_]+))?"
                      r"(?:,block_shape=\[[0-9, ]+\])?\.json$")


def device_file_name(device: str) -> str:
    return device.replace(" ", "_")


def file_name(experts: int, n: int, device: str, dtype: str) -> str:
    """vLLM's config file name for E experts, N = per-shard intermediate size, accelsim dtype."""
    if dtype not in FILE_DTYPE:
        raise UserError(f"dtype must be one of {', '.join(FILE_DTYPE)}, got {dtype!r}")
    suffix = f",dtype={FILE_DTYPE[dtype]}" if FILE_DTYPE[dtype] else ""
    return f"E={experts},N={n},device_name={device_file_name(device)}{suffix}.json"


@dataclass(frozen=True)
class TunedFile:
    """A parsed config file: E, N, device (as in the name), file dtype string or None, {M: config}."""

    experts: int
    n: int
    device: str
    dtype: str | None
    table: dict[int, Config]

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
               best: Mapping[int, Mapping[str, int]], triton_version: str | None = None) -> Path:
    """Write (atomically) the tuned file for these best configs; returns its path. Existing entries
    of the same file for other batch sizes are kept (a partial tuning run adds to a file)."""
    from accelsim.io import write_json

    path = Path(directory) / file_name(experts, n, device, dtype)
    table: dict[int, Config] = read_file(path).table if path.is_file() else {}
    for m, cfg in best.items():
        table[int(m)] = as_config(as_tuple(cfg))
    doc: dict[str, Any] = {}
    if triton_version:
        doc["triton_version"] = triton_version
    doc.update({str(m): {k: table[m][k] for k in CONFIG_KEYS} for m in sorted(table)})
    write_json(path, doc)
    return path


def read_file(path: str | os.PathLike[str]) -> TunedFile:
    """Parse a vLLM/SGLang config file; UserError naming the file and the problem if it is not one.
    ROCm-only keys (waves_per_eu, matrix_instr_nonkdim, kpack) are ignored."""
    p = Path(path)
    m = _NAME_RE.match(p.name)
    if not m:
        raise UserError(f"'{p.name}' is not a vLLM MoE config file name (E=..,N=..,device_name=..[,dtype=..].json)")
    try:
        raw = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"{p}: cannot read JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{p}: expected a JSON object keyed by batch size")
    raw.pop("triton_version", None)
    table: dict[int, Config] = {}
    for key, cfg in raw.items():
        if not str(key).isdigit() or not isinstance(cfg, dict):
            raise UserError(f"{p}: key '{key}' must be a batch size mapping to a config object")
        try:
            table[int(key)] = as_config(as_tuple({k: cfg[k] for k in CONFIG_KEYS}))
        except KeyError as exc:
            raise UserError(f"{p}: batch size {key} lacks {exc}") from None
    if not table:
        raise UserError(f"{p}: no batch-size entries")
    return TunedFile(int(m.group(1)), int(m.group(2)), m.group(3), m.group(4), table)


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
