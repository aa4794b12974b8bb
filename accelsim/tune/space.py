"""The search space of the fused-MoE kernel and its constraint pruning.

A config is a dict with exactly the keys of ``CONFIG_KEYS`` (the same tuple as
``kernels.moe.CONFIG_KEYS``; repeated here because this module must not import torch).
``vllm_space()`` is vLLM's 1,920-point CUDA space (benchmark_moe.py; kernels_and_tuners.md §2).
``prune`` removes configs that cannot run or cannot win on a given device and problem, each with a
one-line reason, so that the rejected list is auditable. NumPy only: importable on the GPU box.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from accelsim.errors import UserError

CONFIG_KEYS = ("BLOCK_SIZE_M", "BLOCK_SIZE_N", "BLOCK_SIZE_K", "GROUP_SIZE_M", "num_warps", "num_stages")
Config = dict[str, int]
ConfigTuple = tuple[int, int, int, int, int, int]

# vLLM benchmark_moe.py CUDA space (kernels_and_tuners.md §2): 5 * 4 * 3 * 4 * 2 * 4 = 1,920 points.
VLLM_SPACE: dict[str, tuple[int, ...]] = {
    "BLOCK_SIZE_M": (16, 32, 64, 128, 256),
    "BLOCK_SIZE_N": (32, 64, 128, 256),
    "BLOCK_SIZE_K": (64, 128, 256),
    "GROUP_SIZE_M": (1, 16, 32, 64),
    "num_warps": (4, 8),
    "num_stages": (2, 3, 4, 5),
}
# vLLM's batch sizes (kernels_and_tuners.md §2).
VLLM_BATCH_SIZES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 1536, 2048, 3072, 4096)
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1}


@dataclass(frozen=True)
class Problem:
    """One tuning problem: a fused-MoE layer shape and a batch size.

    experts E, hidden H, intermediate I per expert and shard (vLLM's N = w2.shape[2]), top_k,
    dtype one of DTYPE_BYTES (weights and activations; fp8 = w8a8 per tensor), m = tokens per call.
    """

    experts: int
    hidden: int
    inter: int
    top_k: int
    dtype: str
    m: int

    def __post_init__(self) -> None:
        for name in ("experts", "hidden", "inter", "top_k", "m"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if self.top_k > self.experts:
            raise UserError(f"top_k must be <= experts ({self.experts}), got {self.top_k}")
        if self.dtype not in DTYPE_BYTES:
            raise UserError(f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {self.dtype!r}")

    @property
    def shape(self) -> dict[str, object]:
        """The batch-independent key: E, H, I, top_k and dtype."""
        return {"E": self.experts, "H": self.hidden, "I": self.inter, "top_k": self.top_k, "dtype": self.dtype}

    @property
    def shape_json(self) -> str:
        return json.dumps(self.shape, sort_keys=True)

    @property
    def elem_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def pairs(self) -> int:
        """T = M * top_k routed (token, expert) rows."""
        return self.m * self.top_k

    def with_m(self, m: int) -> Problem:
        return Problem(self.experts, self.hidden, self.inter, self.top_k, self.dtype, m)


@dataclass(frozen=True)
class DeviceLimits:
    """Per-SM limits used for pruning and by the cost models; ``chip`` names the hwmodels/ entry."""

    name: str
    chip: str | None
    sm_count: int
    smem_per_sm_bytes: int
    smem_per_block_bytes: int
    l2_bytes: int
    source: str
    regs_per_sm: int = 65536
    max_regs_per_thread: int = 255
    max_warps_per_sm: int = 64
    max_blocks_per_sm: int = 32


_CC_GUIDE = "CUDA C++ Programming Guide, 'Technical Specifications per Compute Capability'"
DEVICE_LIMITS: dict[str, DeviceLimits] = {
    "h100-sxm": DeviceLimits(
        "h100-sxm", "h100-sxm", 132, 228 * 1024, 227 * 1024, 50 * 10**6,
        f"{_CC_GUIDE} (cc 9.0: 228 KB shared memory per SM, 227 KB per block, 64K registers, 255 per "
        "thread); 132 SMs and 50 MB L2 from the H100 SXM datasheet (kernels_and_tuners.md §5)"),
    "h100-pcie": DeviceLimits(
        "h100-pcie", "h100-sxm", 114, 228 * 1024, 227 * 1024, 50 * 10**6,
        f"{_CC_GUIDE} (cc 9.0); 114 SMs from NVIDIA's H100 PCIe product brief; the model uses the SXM "
        "peaks (assumed; no PCIe chip file in hwmodels/)"),
    "h200-sxm": DeviceLimits(
        "h200-sxm", "h200-sxm", 132, 228 * 1024, 227 * 1024, 50 * 10**6,
        f"{_CC_GUIDE} (cc 9.0); same GH100 die as H100 SXM (hwmodels/h200-sxm.toml)"),
    "a100": DeviceLimits(
        "a100", None, 108, 164 * 1024, 163 * 1024, 40 * 10**6,
        f"{_CC_GUIDE} (cc 8.0: 164 KB shared memory per SM, 163 KB per block); 108 SMs and 40 MB L2 "
        "from the NVIDIA A100 Tensor Core GPU Architecture whitepaper"),
}
_NAME_PATTERNS = (("synthetic-h100", "h100-sxm"), ("h100 pcie", "h100-pcie"), ("h100", "h100-sxm"),
                  ("h200", "h200-sxm"), ("a100", "a100"))


def device_limits(device_name: str) -> DeviceLimits:
    """Limits for a device name as torch reports it (``NVIDIA H100 80GB HBM3``) or a table key.

    Raises UserError for a device not in the table (add it, with its source)."""
    key = device_name.lower()
    if key in DEVICE_LIMITS:
        return DEVICE_LIMITS[key]
    for pattern, name in _NAME_PATTERNS:
        if pattern in key:
            return DEVICE_LIMITS[name]
    raise UserError(f"no device limits for '{device_name}'; known: {', '.join(DEVICE_LIMITS)} "
                    "(add an entry with its source to accelsim/tune/space.py)")


def vllm_space() -> list[Config]:
    """All 1,920 configs of vLLM's CUDA space, in a fixed (lexicographic) order."""
    return [dict(zip(CONFIG_KEYS, values)) for values in itertools.product(*VLLM_SPACE.values())]


def as_tuple(config: Mapping[str, int]) -> ConfigTuple:
    """The hashable key of a config; raises UserError when a key is missing or not a positive int."""
    try:
        values = tuple(int(config[k]) for k in CONFIG_KEYS)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"config {dict(config)} must have integer keys {', '.join(CONFIG_KEYS)} ({exc})") from None
    if min(values) < 1 or set(config) - set(CONFIG_KEYS):
        raise UserError(f"config {dict(config)} must have exactly the keys {', '.join(CONFIG_KEYS)}, all >= 1")
    return values  # type: ignore[return-value]


def as_config(values: Sequence[int]) -> Config:
    return dict(zip(CONFIG_KEYS, (int(v) for v in values)))


def config_json(config: Mapping[str, int]) -> str:
    """Canonical text of a config (sorted keys), as measurement rows and the store write it."""
    return json.dumps(as_config(as_tuple(config)), sort_keys=True)


def config_arrays(configs: Sequence[Mapping[str, int]]) -> dict[str, np.ndarray]:
    """Column arrays (int64) of a config list, for vectorised models."""
    table = np.array([as_tuple(c) for c in configs], dtype=np.int64).reshape(-1, len(CONFIG_KEYS))
    return {k: table[:, i] for i, k in enumerate(CONFIG_KEYS)}


def pow2_ceil(x: int) -> int:
    return 1 << max(0, math.ceil(math.log2(max(1, x))))


def smem_bytes(arrays: Mapping[str, np.ndarray], elem_bytes: int) -> np.ndarray:
    """Shared memory of one program: num_stages buffers of an A [BM, BK] and a B [BK, BN] tile.

    This is the estimate of Triton's matmul perf model (`early_config_prune`, kernels_and_tuners.md
    §6). GEMM 1's gate and up halves are BN/2 wide each, so its footprint equals GEMM 2's."""
    return ((arrays["BLOCK_SIZE_M"] + arrays["BLOCK_SIZE_N"]) * arrays["BLOCK_SIZE_K"]
            * arrays["num_stages"] * elem_bytes)


def accumulator_regs(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """fp32 accumulator registers per thread: BM * BN / (32 * num_warps) (GEMM 1: two BN/2 halves)."""
    return arrays["BLOCK_SIZE_M"] * arrays["BLOCK_SIZE_N"] // (32 * arrays["num_warps"])


def m_blocks_launched(problem: Problem, block_m: np.ndarray) -> np.ndarray:
    """M-blocks in the launch grid: cdiv(min(T + E*(BM-1), T*BM), BM), as the kernel clamps EM."""
    t, e = problem.pairs, problem.experts
    em = np.minimum(t + e * (block_m - 1), t * block_m)
    return -(-em // block_m)


def prune(configs: Iterable[Mapping[str, int]], problem: Problem,
          limits: DeviceLimits) -> tuple[list[Config], list[tuple[Config, str]]]:
    """Split configs into (kept, [(rejected, reason)]), order preserved. Rules:

    - shared memory of one program above the device's per-block limit (cannot launch);
    - fp32 accumulator above the per-thread register limit (spills every K step);
    - BLOCK_SIZE_M above the most rows one expert can receive (M, one row per token), or tiles
      wider than both GEMMs' N or K (every extra row/column is padding);
    - GROUP_SIZE_M at or above the number of M-blocks behaves exactly like the smallest such value
      in the list (one group either way), so only that one is kept.
    """
    configs = [as_config(as_tuple(c)) for c in configs]
    if not configs:
        return [], []
    a = config_arrays(configs)
    eb = problem.elem_bytes
    smem = smem_bytes(a, eb)
    regs = accumulator_regs(a)
    max_bm = max(16, pow2_ceil(problem.m))
    max_bn = max(2 * pow2_ceil(problem.inter), pow2_ceil(problem.hidden))
    max_bk = pow2_ceil(max(problem.hidden, problem.inter))
    blocks = m_blocks_launched(problem, a["BLOCK_SIZE_M"])
    groups_present = sorted({c["GROUP_SIZE_M"] for c in configs})
    kept: list[Config] = []
    rejected: list[tuple[Config, str]] = []
    for i, cfg in enumerate(configs):
        reason = ""
        if smem[i] > limits.smem_per_block_bytes:
            reason = (f"shared memory {smem[i] / 1024:.0f} KB > {limits.smem_per_block_bytes // 1024} KB per "
                      f"block on {limits.name}")
        elif regs[i] > limits.max_regs_per_thread:
            reason = f"accumulator needs {regs[i]} registers per thread > {limits.max_regs_per_thread}"
        elif cfg["BLOCK_SIZE_M"] > max_bm:
            reason = f"BLOCK_SIZE_M {cfg['BLOCK_SIZE_M']} > {max_bm}: no expert gets more than M={problem.m} rows"
        elif cfg["BLOCK_SIZE_N"] > max_bn:
            reason = f"BLOCK_SIZE_N {cfg['BLOCK_SIZE_N']} wider than both GEMMs' outputs (I={problem.inter}, " \
                     f"H={problem.hidden})"
        elif cfg["BLOCK_SIZE_K"] > max_bk:
            reason = f"BLOCK_SIZE_K {cfg['BLOCK_SIZE_K']} longer than both reductions (H, I)"
        else:
            g = cfg["GROUP_SIZE_M"]
            first_covering = next((v for v in groups_present if v >= blocks[i]), None)
            if first_covering is not None and g > first_covering:
                reason = (f"same launch order as GROUP_SIZE_M={first_covering}: only {blocks[i]} M-blocks")
        if reason:
            rejected.append((cfg, reason))
        else:
            kept.append(cfg)
    return kept, rejected


def parse_batch_sizes(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4] (sorted, unique); raises UserError naming the bad item."""
    out = set()
    for item in text.split(","):
        item = item.strip()
        if not item.isdigit() or int(item) < 1:
            raise UserError(f"--batch-sizes must be positive integers separated by commas, got '{item}' in '{text}'")
        out.add(int(item))
    return sorted(out)


# Named MoE shapes for replay data, benchmarks and the GPU script: (catalog model, tensor parallel).
# TP shards the intermediate size (vLLM's N = I / tp); experts stay whole (no EP).
NAMED_SHAPES: dict[str, tuple[str, int]] = {
    "mixtral-tp2": ("mixtral-8x7b", 2),
    "scout": ("llama4-scout", 1),
    "maverick": ("llama4-maverick", 1),
    "deepseek-v3": ("deepseek-v3", 1),
}


def named_shape(name: str, m: int = 1, dtype: str = "bf16") -> Problem:
    """A Problem from a NAMED_SHAPES entry, sizes read from the workloads/ catalog."""
    from accelsim.errors import unknown_name
    from accelsim.spec import load_model

    if name not in NAMED_SHAPES:
        raise unknown_name("MoE shape", name, NAMED_SHAPES)
    model_name, tp = NAMED_SHAPES[name]
    model = load_model(model_name)
    moe = model.moe  # type: ignore[union-attr]
    return Problem(moe.num_experts, model.hidden_size, moe.expert_intermediate_size // tp, moe.top_k, dtype, m)
