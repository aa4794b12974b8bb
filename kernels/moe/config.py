"""Kernel launch configs: heuristic defaults, vLLM-format tuned JSON files, and a provider hook.

A config is a dict with exactly the keys in ``CONFIG_KEYS``. It changes how the grouped GEMMs are
tiled, hence speed and the fp32 summation order (results move within rounding, never in meaning).

Resolution order for ``fused_moe(config=None)`` (``resolve_config``):
  1. the provider installed with ``set_config_provider`` (a tuner's hook), if it returns a dict;
  2. on CUDA, a tuned file in ``kernels/moe/configs/`` for (E, N, device, dtype), nearest batch size;
  3. ``default_config``.
The provider is the module's only mutable state and it is explicit: ``set_config_provider``
returns the previous provider, and ``use_config_provider`` restores it on exit. An explicit
``config=`` argument always wins over all three.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

CONFIG_KEYS = ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps", "num_stages")
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# (M, E, N, K, top_k, dtype) -> config or None (None = fall through to files / default).
ConfigProvider = Callable[[int, int, int, int, int, torch.dtype], "dict[str, int] | None"]
_provider: ConfigProvider | None = None


def _pow2_at_least(x: int) -> int:
    return 1 << (max(1, x) - 1).bit_length()


def default_config(M: int, E: int, N: int, K: int, top_k: int, dtype: torch.dtype) -> dict[str, int]:
    """Heuristic config when nothing tuned exists: M tokens, E experts, N = intermediate size I
    (``w2.shape[2]``, vLLM's file-name N), K = hidden size H, dtype = weight dtype.

    The M-tile follows the tokens per expert (M * top_k / E) so small batches waste little of each
    block on padding, as vLLM's batch-size-aware default does (vllm PR #34846). Small tiles get a
    long K step (the GEMMs are weight-bandwidth bound there) and no grouping (there is little to
    reuse); large tiles get grouping for L2 reuse and 8 warps. fp32 halves K (twice the bytes per
    element in shared memory). Tiles never exceed the problem by more than the minimum legal size,
    which matters only for tiny shapes (tests, the interpreter).
    """
    tokens_per_expert = M * top_k / max(E, 1)
    if tokens_per_expert <= 16:
        bm = 16
    elif tokens_per_expert <= 32:
        bm = 32
    elif tokens_per_expert <= 96:
        bm = 64
    else:
        bm = 128
    small = bm <= 32
    bn = 64 if small else 128
    bk = 128 if small else 64
    if dtype == torch.float32:
        bk //= 2
    bn = max(32, min(bn, _pow2_at_least(min(N, K))))
    bk = max(16, min(bk, _pow2_at_least(min(N, K))))
    return {
        "BLOCK_SIZE_M": bm,
        "BLOCK_SIZE_N": bn,
        "BLOCK_SIZE_K": bk,
        "GROUP_SIZE_M": 1 if small else 16,
        "num_warps": 8 if bm * bn >= 128 * 128 else 4,
        "num_stages": 2 if dtype == torch.float32 else (4 if small else 3),
    }


def config_dtype_str(dtype: torch.dtype) -> str | None:
    """The ``dtype=`` part of a vLLM config file name: omitted for bf16/fp16."""
    if dtype == torch.float8_e4m3fn:
        return "fp8_w8a8"
    if dtype == torch.float32:
        return "float32"
    return None


def device_file_name(device_name: str) -> str:
    """vLLM's device part of a config file name: runs of whitespace and '/' become '_', and any
    name with an 'H200' word is NVIDIA_H200 (vllm get_config_file_name). accelsim.tune.names has
    the same rule for torch-free code; tests/tune/test_tune_names.py checks they agree."""
    name = re.sub(r"[\s/]+", "_", device_name)
    return "NVIDIA_H200" if "H200" in name.split("_") else name


def config_file_name(E: int, N: int, device_name: str, dtype: str | None) -> str:
    """vLLM naming: ``E={E},N={N},device_name={device}[,dtype={dtype}].json`` (see device_file_name)."""
    suffix = f",dtype={dtype}" if dtype else ""
    return f"E={E},N={N},device_name={device_file_name(device_name)}{suffix}.json"


@functools.lru_cache(maxsize=64)
def _read_config_file(path: Path, mtime_ns: int) -> dict[int, dict[str, int]]:
    """Parsed file keyed by batch size. Cached per (path, mtime): a rewritten file is re-read."""
    raw = json.loads(path.read_text())
    raw.pop("triton_version", None)  # written by tuners, not a batch size
    try:
        return {int(m): dict(cfg) for m, cfg in raw.items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: keys must be batch sizes and values config dicts ({exc})") from None


def load_tuned_config(
    E: int,
    N: int,
    device_name: str,
    dtype: str | torch.dtype | None,
    M: int,
    config_dir: str | Path | None = None,
) -> dict[str, int] | None:
    """The config for batch size M from a vLLM-format tuned file, or None if there is no file.

    N = intermediate size I (``w2.shape[2]``); dtype is the file-name string (``"fp8_w8a8"``,
    ``"float32"``, None) or a torch dtype mapped by ``config_dtype_str``. The entry whose batch-size
    key is nearest to M is returned (ties go to the smaller key), as vLLM does; no interpolation.
    """
    dtype_str = config_dtype_str(dtype) if isinstance(dtype, torch.dtype) else dtype
    directory = Path(config_dir) if config_dir is not None else CONFIG_DIR
    path = directory / config_file_name(E, N, device_name, dtype_str)
    if not path.is_file():
        return None
    table = _read_config_file(path, path.stat().st_mtime_ns)
    if not table:
        return None
    nearest = min(sorted(table), key=lambda key: abs(key - M))
    return dict(table[nearest])


def set_config_provider(provider: ConfigProvider | None) -> ConfigProvider | None:
    """Install (or with None remove) the config provider; returns the one it replaces."""
    global _provider
    previous, _provider = _provider, provider
    return previous


def get_config_provider() -> ConfigProvider | None:
    return _provider


@contextlib.contextmanager
def use_config_provider(provider: ConfigProvider | None) -> Iterator[None]:
    """Scope a provider to a ``with`` block (e.g. a tuner's trial), restoring the previous one."""
    previous = set_config_provider(provider)
    try:
        yield
    finally:
        set_config_provider(previous)


def resolve_config(
    M: int, E: int, N: int, K: int, top_k: int, dtype: torch.dtype, device: torch.device | None = None
) -> tuple[dict[str, int], str]:
    """(config, source) with source one of "provider", "tuned:<file>", "default"; see module doc."""
    if _provider is not None:
        cfg = _provider(M, E, N, K, top_k, dtype)
        if cfg is not None:
            return dict(cfg), "provider"
    if device is not None and device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        cfg = load_tuned_config(E, N, name, dtype, M)
        if cfg is not None:
            return cfg, "tuned:" + config_file_name(E, N, name, config_dtype_str(dtype))
    return default_config(M, E, N, K, top_k, dtype), "default"
