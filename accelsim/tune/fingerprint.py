"""Device fingerprints: what a measurement is only valid for.

A fingerprint is a flat dict of strings (device name, compute capability, driver, torch and triton
versions, kernel source hash, and for replay devices the recording's identity); its key is a short
hash of the canonical JSON. Change the kernel source and old results stop matching: they are kept,
but never reused for the new kernel. Stdlib only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path


def kernel_dir() -> Path:
    """kernels/moe/ located without importing it (importing would pull in torch)."""
    spec = importlib.util.find_spec("kernels")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package 'kernels' not found (install accelsim with `pip install -e .`)")
    return Path(next(iter(spec.submodule_search_locations))) / "moe"


def kernel_source_hash(directory: str | Path | None = None) -> str:
    """sha256 (first 16 hex) over the names and bytes of kernels/moe/*.py, sorted by name."""
    d = Path(directory) if directory is not None else kernel_dir()
    files = sorted(d.glob("*.py"))
    if not files:
        raise FileNotFoundError(f"no kernel sources in {d}")
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def fingerprint_key(fp: Mapping[str, str]) -> str:
    """Short stable key of a fingerprint dict (sha256 of sorted JSON, 16 hex)."""
    text = json.dumps({k: str(v) for k, v in fp.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]
