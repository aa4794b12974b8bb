"""Names of fused-MoE tuned-config files, as vLLM and SGLang write them, parsed and formatted.

Grammar (vLLM `get_config_file_name`, SGLang `get_config_file_name`; Apache-2.0, read from the
vllm 0.33.0 and sglang 0.5.23 wheels):

    E={E},N={N},device_name={device}[,dtype={dtype}][,block_shape=[{bn}, {bk}]]
        [,per_channel_quant=True][,backend={backend}][_down].json

- N is the per-shard intermediate size (``w2.shape[2]``).
- device: vLLM writes ``re.sub(r"[\\s/]+", "_", torch name)`` and maps any name with an ``H200``
  word to ``NVIDIA_H200``; SGLang only replaces spaces. The device may be empty (a tuner that could
  not read the name).
- dtype: omitted for bf16/fp16; ``fp8_w8a8``, ``fp8_w8a16``, ``int8_w8a8``, ``int8_w8a16``,
  ``int4_w4a16``, ``float32``; some files also say ``bf16`` or ``float8``.
- block_shape: block-wise quantisation [block_n, block_k]; vLLM strips the space, SGLang keeps it.
- per_channel_quant=True: per-output-channel weight scales (SGLang).
- backend: a non-Triton implementation (vLLM's ROCm ``flydsl``).
- ``_down``: SGLang's separate table for the second GEMM (w2, the down projection).
Pure Python: importable anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from accelsim.errors import UserError

# accelsim dtype -> the dtype= part of vLLM's name (None: omitted).
FILE_DTYPE: dict[str, str | None] = {"bf16": None, "fp16": None, "fp32": "float32", "fp8": "fp8_w8a8",
                                     "fp8_block": "fp8_w8a8"}
FP8_BLOCK_SHAPE = (128, 128)  # accelsim's fp8_block: [block_n, block_k] of the weight scales
# file dtype string -> the accelsim dtype whose kernel it tunes (None: a quantisation accelsim's
# kernel does not run; such files still load, as labels, and say so).
ACCEL_DTYPE: dict[str | None, str | None] = {
    None: "bf16", "bf16": "bf16", "fp16": "fp16", "float32": "fp32", "fp8_w8a8": "fp8", "float8": "fp8",
    "fp8_w8a16": None, "int8_w8a8": None, "int8_w8a16": None, "int4_w4a16": None,
}

_NAME_RE = re.compile(
    r"^E=(?P<E>\d+),N=(?P<N>\d+),device_name=(?P<device>[^,]*?)"
    r"(?:,dtype=(?P<dtype>[A-Za-z0-9_]+?))?"
    r"(?:,block_shape=\[(?P<bn>\d+), ?(?P<bk>\d+)\])?"
    r"(?:,per_channel_quant=(?P<pc>True))?"
    r"(?:,backend=(?P<backend>[A-Za-z0-9_]+?))?"
    r"(?P<down>_down)?\.json$")
_GRAMMAR = ("E=..,N=..,device_name=..[,dtype=..][,block_shape=[n,k]][,per_channel_quant=True]"
            "[,backend=..][_down].json")


def vllm_device_name(torch_name: str) -> str:
    """The device part of vLLM's file name for a name as torch reports it: runs of whitespace and
    '/' become '_', and any name with an 'H200' word (H200 NVL, H200 141GB ...) is NVIDIA_H200."""
    name = re.sub(r"[\s/]+", "_", torch_name)
    return "NVIDIA_H200" if "H200" in name.split("_") else name


@dataclass(frozen=True)
class ConfigName:
    """A parsed config-file name. ``dtype`` is the file's string (None when omitted)."""

    experts: int
    n: int
    device: str
    dtype: str | None = None
    block_shape: tuple[int, int] | None = None
    per_channel_quant: bool = False
    backend: str | None = None
    down: bool = False

    @property
    def accel_dtype(self) -> str | None:
        """accelsim's dtype for this file, or None for a quantisation its kernel does not run
        (int8/int4, fp8 with blocks other than 128 x 128)."""
        dtype = ACCEL_DTYPE.get(self.dtype)
        if self.block_shape is None:
            return dtype
        return "fp8_block" if dtype == "fp8" and self.block_shape == FP8_BLOCK_SHAPE else None

    @property
    def gemm(self) -> int:
        """Which GEMM the table tunes: 2 for a ``_down`` file, else 1 (vLLM tunes both with one config)."""
        return 2 if self.down else 1

    def format(self, style: str = "vllm") -> str:
        """The file name. style "vllm": vLLM's exact rule (block_shape without a space);
        "sglang": SGLang's (``[128, 128]``, per_channel_quant and ``_down`` suffixes)."""
        if style not in ("vllm", "sglang"):
            raise UserError(f"name style must be vllm or sglang, got {style!r}")
        parts = [f"E={self.experts},N={self.n},device_name={self.device}"]
        if self.dtype:
            parts.append(f",dtype={self.dtype}")
        if self.block_shape and all(self.block_shape):
            sep = ", " if style == "sglang" else ","
            parts.append(f",block_shape=[{self.block_shape[0]}{sep}{self.block_shape[1]}]")
        if self.per_channel_quant:
            parts.append(",per_channel_quant=True")
        if self.backend:
            parts.append(f",backend={self.backend}")
        if self.down:
            parts.append("_down")
        return "".join(parts) + ".json"

    def normalised(self) -> ConfigName:
        """The same name with vLLM's device normalisation applied."""
        return replace(self, device=vllm_device_name(self.device))


def parse_name(name: str) -> ConfigName:
    """Parse a file name (no directory); UserError with the expected grammar if it is not one."""
    m = _NAME_RE.match(name)
    if not m:
        raise UserError(f"'{name}' is not a fused-MoE config file name ({_GRAMMAR})")
    block = (int(m["bn"]), int(m["bk"])) if m["bn"] else None
    return ConfigName(int(m["E"]), int(m["N"]), m["device"], m["dtype"], block, bool(m["pc"]),
                      m["backend"], bool(m["down"]))


def file_name(experts: int, n: int, device: str, dtype: str,
              block_shape: tuple[int, int] | None = None) -> str:
    """vLLM's config file name for E experts, N = per-shard intermediate size, a device name as
    torch reports it (normalised as vLLM does) and an accelsim dtype."""
    if dtype not in FILE_DTYPE:
        raise UserError(f"dtype must be one of {', '.join(FILE_DTYPE)}, got {dtype!r}")
    if dtype == "fp8_block":
        block_shape = block_shape or FP8_BLOCK_SHAPE
    return ConfigName(experts, n, vllm_device_name(device), FILE_DTYPE[dtype], block_shape).format("vllm")
