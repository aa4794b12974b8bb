"""The search space of the fused-MoE kernel and its constraint pruning.

A config is a dict with exactly the keys of ``CONFIG_KEYS`` (the same tuple as
``kernels.moe.CONFIG_KEYS``; repeated here because this module must not import torch).
``vllm_space()`` is vLLM's 1,920-point CUDA space (benchmark_moe.py; kernels_and_tuners.md §2).
``tune_space()`` adds every value that shipped winners use outside it (``SHIPPED_VALUES``): the
space the tuner searches. ``prune`` removes configs that cannot run on a device, and configs whose
launch is identical to another kept config's (GROUP_SIZE_M at or above the number of M-blocks),
each with a one-line reason, so that the rejected list is auditable; ``canonical`` maps any config
to the kept config it is equivalent to. Pruning never drops a config for being slow: a rule of that
kind ("BLOCK_SIZE_M above M is wasted padding") removed 90% of vLLM's own fp8 winners at M <= 16.
NumPy only: importable on the GPU box.
"""

from __future__ import annotations

import functools
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
# Values that winners in the shipped NVIDIA config files use outside VLLM_SPACE (vllm 0.33.0 and
# sglang 0.5.23 wheels, fused-MoE config folders, Apache-2.0; counted by
# benchmarks/bench_tune_real_labels.py): BLOCK_SIZE_M=8 (block-fp8 H100/H200 files at M <= 4),
# BLOCK_SIZE_N=16 (SGLang), BLOCK_SIZE_K=32 (fp8 H100, L40S, B200), GROUP_SIZE_M 2/4/8/128,
# num_warps 2/16, num_stages 1 and 6-8 (L40S, B200). Triton 3.9 pads dots below 16 rows/columns
# (min_dot_size (1, 1, 16); fp8 K >= 32), so all of them launch.
SHIPPED_VALUES: dict[str, tuple[int, ...]] = {
    "BLOCK_SIZE_M": (8,),
    "BLOCK_SIZE_N": (16,),
    "BLOCK_SIZE_K": (32,),
    "GROUP_SIZE_M": (2, 4, 8, 128),
    "num_warps": (2, 16),
    "num_stages": (1, 6, 7, 8),
}
TUNE_SPACE: dict[str, tuple[int, ...]] = {k: tuple(sorted(set(v) | set(SHIPPED_VALUES[k])))
                                          for k, v in VLLM_SPACE.items()}
FP8_MIN_BLOCK_K = 32  # Triton's fp8 tl.dot needs K >= 32 (min_dot_size for 8-bit operands)
# vLLM's batch sizes (kernels_and_tuners.md §2).
VLLM_BATCH_SIZES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 1536, 2048, 3072, 4096)
# fp8 = w8a8 with per-tensor (or per-channel) scales; fp8_block = w8a8 with block-wise scales,
# [128, 128] weight blocks and 1 x 128 activation groups (DeepSeek-V3 style; vLLM's block_shape=[128,128]).
DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "fp8_block": 1}
FP8_DTYPES = ("fp8", "fp8_block")


@dataclass(frozen=True)
class Problem:
    """One tuning problem: a fused-MoE layer shape and a batch size.

    experts E, hidden H, intermediate I per expert and shard (vLLM's N = w2.shape[2]), top_k,
    dtype one of DTYPE_BYTES (weights and activations; fp8 = w8a8 per tensor, fp8_block = w8a8 with
    128 x 128 weight blocks), m = tokens per call.
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
    # Blackwell (cc 10.x): Triton's tl.dot accumulates in tensor memory (tcgen05), not registers,
    # so the accumulator-register rule does not apply (B200 winners hold 256 x 256 fp32 over 8 warps).
    tmem_accumulator: bool = False
    generation: str = "hopper"  # ampere / hopper / blackwell: the learned cost model's device feature


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
        "from the NVIDIA A100 Tensor Core GPU Architecture whitepaper", generation="ampere"),
}
DEVICE_LIMITS["b200"] = DeviceLimits(
    "b200", "b200", 148, 228 * 1024, 227 * 1024, 126 * 10**6,
    f"{_CC_GUIDE} (cc 10.0: 228 KB shared memory per SM, 227 KB per block); 148 SMs and 126 MB L2 "
    "assumed from NVIDIA's Blackwell announcements (no datasheet value in hwmodels/b200.toml)",
    tmem_accumulator=True, generation="blackwell")
DEVICE_LIMITS["gb200"] = DeviceLimits(
    "gb200", "gb200", 148, 228 * 1024, 227 * 1024, 126 * 10**6, DEVICE_LIMITS["b200"].source + "; same die as B200",
    tmem_accumulator=True, generation="blackwell")
_NAME_PATTERNS = (("synthetic-h100", "h100-sxm"), ("h100 pcie", "h100-pcie"), ("h100_pcie", "h100-pcie"),
                  ("h100", "h100-sxm"), ("h200", "h200-sxm"), ("a100", "a100"), ("gb200", "gb200"),
                  ("b200", "b200"))


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


@functools.lru_cache(maxsize=1)
def _tune_space_tuples() -> tuple[ConfigTuple, ...]:
    return tuple(itertools.product(*TUNE_SPACE.values()))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1)
def tune_space_arrays() -> dict[str, np.ndarray]:
    """``config_arrays(tune_space())``, computed once (read-only arrays)."""
    table = np.array(_tune_space_tuples(), dtype=np.int64)
    table.setflags(write=False)
    return {k: table[:, i] for i, k in enumerate(CONFIG_KEYS)}


def tune_space() -> list[Config]:
    """The tuner's space: the product of TUNE_SPACE's values (vLLM's plus the shipped winners'),
    in a fixed (lexicographic) order."""
    return [dict(zip(CONFIG_KEYS, values)) for values in _tune_space_tuples()]


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


def stage_bytes(arrays: Mapping[str, np.ndarray], elem_bytes: int) -> np.ndarray:
    """Shared memory of one pipeline stage, an A [BM, BK] and a B [BK, BN] tile: the least a program
    needs. Pruning uses this, not the pipelined footprint: Triton 3.9 allocates num_stages - 1 such
    buffers for this kernel (its ahead-of-time compile reports 442,368 B for 32 x 256 x 256 bf16 at
    4 stages = 3 stages' worth, and 147,456 B for 16 x 128 x 128 at 5 stages on sm80), yet shipped
    winners, tuned with other Triton versions, exceed that footprint by up to 1.9x on H100 (1.4x
    B200) and no winner exceeds one stage (0.7x at most). Such configs stay in the space; on a
    Triton that cannot launch them they are recorded as out_of_resources in milliseconds."""
    return (arrays["BLOCK_SIZE_M"] + arrays["BLOCK_SIZE_N"]) * arrays["BLOCK_SIZE_K"] * elem_bytes


def accumulator_regs(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """fp32 accumulator registers per thread: BM * BN / (32 * num_warps) (GEMM 1: two BN/2 halves)."""
    return arrays["BLOCK_SIZE_M"] * arrays["BLOCK_SIZE_N"] // (32 * arrays["num_warps"])


def m_blocks_launched(problem: Problem, block_m: np.ndarray) -> np.ndarray:
    """M-blocks in the launch grid: cdiv(min(T + E*(BM-1), T*BM), BM), as the kernel clamps EM."""
    t, e = problem.pairs, problem.experts
    em = np.minimum(t + e * (block_m - 1), t * block_m)
    return -(-em // block_m)


def canonical_groups(problem: Problem, a: Mapping[str, np.ndarray], groups: Sequence[int]) -> np.ndarray:
    """The GROUP_SIZE_M each config launches identically to, among ``groups`` (sorted values).

    The kernel's grouped order depends on GROUP_SIZE_M only through min(G, M-blocks): every G at or
    above the number of M-blocks puts all blocks in one group, so they launch alike and the smallest
    such value in ``groups`` stands for all of them. When both GEMMs have a single N-tile, the order
    is the M-block order for every G, so the smallest value stands for all."""
    g = np.asarray(a["GROUP_SIZE_M"])
    groups_arr = np.asarray(sorted(set(int(v) for v in groups)), dtype=np.int64)
    blocks = m_blocks_launched(problem, a["BLOCK_SIZE_M"])
    covering = np.searchsorted(groups_arr, blocks)  # first value >= blocks
    first = groups_arr[np.minimum(covering, len(groups_arr) - 1)]
    out = np.where((covering < len(groups_arr)) & (g >= first), first, g)
    n_tiles_1 = -(-(2 * problem.inter) // a["BLOCK_SIZE_N"])
    n_tiles_2 = -(-problem.hidden // a["BLOCK_SIZE_N"])
    return np.where((n_tiles_1 == 1) & (n_tiles_2 == 1), groups_arr[0], out)


def _rules(problem: Problem, limits: DeviceLimits, a: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, str]]:
    """(mask of configs a rule rejects, rule name) for every rule that says a config cannot run."""
    max_bn = max(2 * pow2_ceil(problem.inter), pow2_ceil(problem.hidden))
    max_bk = pow2_ceil(max(problem.hidden, problem.inter))
    return [
        (stage_bytes(a, problem.elem_bytes) > limits.smem_per_block_bytes, "smem"),
        ((accumulator_regs(a) > limits.max_regs_per_thread) & (not limits.tmem_accumulator), "regs"),
        (a["BLOCK_SIZE_N"] > max_bn, "bn"),
        (a["BLOCK_SIZE_K"] > max_bk, "bk"),
        ((a["BLOCK_SIZE_K"] < FP8_MIN_BLOCK_K) & (problem.dtype in FP8_DTYPES), "fp8k"),
    ]


def prune_mask(configs: Sequence[Mapping[str, int]] | Mapping[str, np.ndarray], problem: Problem,
               limits: DeviceLimits, groups: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised pruning: (kept mask [C], canonical GROUP_SIZE_M [C]). ``configs``: a list, or its
    ``config_arrays``; ``groups``: the GROUP_SIZE_M values equivalences map onto (default: those
    present in ``configs``)."""
    a = configs if isinstance(configs, Mapping) else config_arrays(configs)
    runnable = ~np.logical_or.reduce([mask for mask, _ in _rules(problem, limits, a)])
    g = a["GROUP_SIZE_M"]
    canon = canonical_groups(problem, a, np.unique(g) if groups is None else groups)
    return runnable & (canon == g), canon


def prune(configs: Iterable[Mapping[str, int]], problem: Problem,
          limits: DeviceLimits) -> tuple[list[Config], list[tuple[Config, str]]]:
    """Split configs into (kept, [(rejected, reason)]), order preserved. Rules:

    - shared memory of one pipeline stage above the device's per-block limit (cannot launch);
    - fp32 accumulator above the per-thread register limit (spills every K step; not on Blackwell,
      whose tensor memory holds the accumulator);
    - tiles wider than both GEMMs' N or K (every extra row/column is padding; no shipped winner does this);
    - fp8 with BLOCK_SIZE_K below Triton's fp8 dot minimum;
    - GROUP_SIZE_M whose launch order equals that of a smaller kept value (``canonical_groups``).
    """
    configs = [as_config(as_tuple(c)) for c in configs]
    if not configs:
        return [], []
    a = config_arrays(configs)
    rules = _rules(problem, limits, a)
    kept_mask, canon = prune_mask(configs, problem, limits)
    smem = stage_bytes(a, problem.elem_bytes)
    regs = accumulator_regs(a)
    blocks = m_blocks_launched(problem, a["BLOCK_SIZE_M"])
    text = {
        "smem": lambda i: (f"one pipeline stage needs {smem[i] / 1024:.0f} KB shared memory > "
                           f"{limits.smem_per_block_bytes // 1024} KB per block on {limits.name}"),
        "regs": lambda i: f"accumulator needs {regs[i]} registers per thread > {limits.max_regs_per_thread}",
        "bn": lambda i: (f"BLOCK_SIZE_N {configs[i]['BLOCK_SIZE_N']} wider than both GEMMs' outputs "
                         f"(I={problem.inter}, H={problem.hidden})"),
        "bk": lambda i: f"BLOCK_SIZE_K {configs[i]['BLOCK_SIZE_K']} longer than both reductions (H, I)",
        "fp8k": lambda i: f"BLOCK_SIZE_K {configs[i]['BLOCK_SIZE_K']} < {FP8_MIN_BLOCK_K}: Triton's fp8 dot minimum",
    }
    kept: list[Config] = []
    rejected: list[tuple[Config, str]] = []
    for i, cfg in enumerate(configs):
        if kept_mask[i]:
            kept.append(cfg)
            continue
        rule = next((name for mask, name in rules if mask[i]), None)
        reason = text[rule](i) if rule else (f"same launch order as GROUP_SIZE_M={canon[i]}: only {blocks[i]} "
                                             "M-blocks" if blocks[i] <= canon[i] else
                                             f"same launch order as GROUP_SIZE_M={canon[i]}: one N-tile per GEMM")
        rejected.append((cfg, reason))
    return kept, rejected


def canonical(config: Mapping[str, int], problem: Problem, groups: Sequence[int] = TUNE_SPACE["GROUP_SIZE_M"]
              ) -> Config:
    """The config that launches identically to ``config`` in a pruned space whose GROUP_SIZE_M
    values are ``groups`` (its GROUP_SIZE_M replaced by the equivalent kept value; see
    ``canonical_groups``). A GROUP_SIZE_M outside ``groups`` with no equivalent there is kept as is."""
    cfg = as_config(as_tuple(config))
    g = int(canonical_groups(problem, config_arrays([cfg]), groups)[0])
    return {**cfg, "GROUP_SIZE_M": g}


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
