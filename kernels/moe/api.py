"""Public fused-MoE API: input validation, routing, config resolution and dispatch.

Importing this module does not import triton; the Triton implementation is loaded on first use, so
the reference path works on machines without triton. Shape legend as in reference.py.
"""

from __future__ import annotations

import os
from typing import Literal

import torch

from kernels.moe import reference
from kernels.moe.config import CONFIG_KEYS, resolve_config
from kernels.moe.reference import FP8_DTYPE, Scoring

Impl = Literal["auto", "triton", "reference"]
QuantMode = Literal["fp8_w8a8"]

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_SCORINGS = ("softmax", "sigmoid")
_IMPLS = ("auto", "triton", "reference")
_QUANT_MODES = ("fp8_w8a8",)


class MoEInputError(ValueError):
    """A fused-MoE input (tensor, argument or config) is invalid; the message names which and why."""


def _fail(message: str) -> None:
    raise MoEInputError(message)


def _check_tensor(name: str, t: object, ndim: int, device: torch.device) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        _fail(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != ndim:
        _fail(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if t.device != device:
        _fail(f"{name} is on {t.device} but hidden_states is on {device}")
    return t


def validate_config(config: object, source: str = "config") -> dict[str, int]:
    """Check a launch config: exactly the keys in CONFIG_KEYS, positive ints, block sizes powers of
    two with BLOCK_SIZE_M >= 8, BLOCK_SIZE_N >= 16 and BLOCK_SIZE_K >= 16. tl.dot needs K >= 16
    (fp8: 32) and, since Triton 3.x pads smaller dots (min_dot_size (1, 1, 16) on NVIDIA), any M and
    N; GEMM 1 splits BLOCK_SIZE_N into gate and up halves of >= 8. Shipped vLLM/SGLang winners use
    BLOCK_SIZE_M=8 and BLOCK_SIZE_N=16. Raises MoEInputError."""
    if not isinstance(config, dict):
        _fail(f"{source} must be a dict with keys {list(CONFIG_KEYS)}, got {type(config).__name__}")
    missing = [k for k in CONFIG_KEYS if k not in config]
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if missing:
        _fail(f"{source} is missing keys {missing}")
    if unknown:
        _fail(f"{source} has unknown keys {unknown}; expected {list(CONFIG_KEYS)}")
    minimum = {"BLOCK_SIZE_M": 8, "BLOCK_SIZE_N": 16, "BLOCK_SIZE_K": 16, "GROUP_SIZE_M": 1,
               "num_warps": 1, "num_stages": 1}
    for key in CONFIG_KEYS:
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            _fail(f"{source}[{key!r}] must be a positive int, got {value!r}")
        if (key.startswith("BLOCK_SIZE") or key == "num_warps") and value & (value - 1):
            _fail(f"{source}[{key!r}] must be a power of two, got {value}")
        if value < minimum[key]:
            _fail(f"{source}[{key!r}] must be >= {minimum[key]}, got {value}")
    return {k: int(config[k]) for k in CONFIG_KEYS}


def _validate(hidden_states, w1, w2, router_logits, top_k, renormalize, scoring, shared_expert,
              impl, quant, w1_scale, w2_scale, a_scale, block_shape=None) -> tuple[int, int, int, int]:
    """All checks of ``fused_moe``; returns (M, H, I, E)."""
    if not isinstance(hidden_states, torch.Tensor) or hidden_states.dim() != 2:
        _fail(f"hidden_states must be a 2-D [M, H] tensor, got {getattr(hidden_states, 'shape', hidden_states)}")
    device = hidden_states.device
    _check_tensor("w1", w1, 3, device)
    _check_tensor("w2", w2, 3, device)
    _check_tensor("router_logits", router_logits, 2, device)
    m, hidden = hidden_states.shape
    num_experts, two_inter, w1_hidden = w1.shape
    inter = two_inter // 2
    if impl not in _IMPLS:
        _fail(f"impl must be one of {_IMPLS}, got {impl!r}")
    if scoring not in _SCORINGS:
        _fail(f"scoring must be one of {_SCORINGS}, got {scoring!r}")
    if quant is not None and quant not in _QUANT_MODES:
        _fail(f"quant must be None or one of {_QUANT_MODES}, got {quant!r}")
    if not isinstance(renormalize, bool):
        _fail(f"renormalize must be a bool, got {renormalize!r}")
    if hidden_states.dtype not in _FLOAT_DTYPES:
        _fail(f"hidden_states dtype must be float32, float16 or bfloat16, got {hidden_states.dtype}")
    if two_inter == 0 or two_inter % 2:
        _fail(f"w1.shape[1] must be 2*I (gate and up stacked), a positive even number, got {two_inter}")
    if w1_hidden != hidden:
        _fail(f"w1 must be [E, 2*I, H={hidden}], got {tuple(w1.shape)}")
    if tuple(w2.shape) != (num_experts, hidden, inter):
        _fail(f"w2 must be [E, H, I] = {(num_experts, hidden, inter)} to match w1, got {tuple(w2.shape)}")
    if tuple(router_logits.shape) != (m, num_experts):
        _fail(f"router_logits must be [M, E] = {(m, num_experts)}, got {tuple(router_logits.shape)}")
    if not router_logits.dtype.is_floating_point:
        _fail(f"router_logits must be floating point, got {router_logits.dtype}")
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= num_experts:
        _fail(f"top_k must be an int in [1, E={num_experts}], got {top_k!r}")
    if quant is None:
        for name, w in (("w1", w1), ("w2", w2)):
            if w.dtype != hidden_states.dtype:
                _fail(f"{name} dtype {w.dtype} differs from hidden_states dtype {hidden_states.dtype}"
                      + ("; pass quant='fp8_w8a8' with scales" if w.dtype == FP8_DTYPE else ""))
    if shared_expert is not None:
        if not isinstance(shared_expert, tuple | list) or len(shared_expert) != 2:
            _fail("shared_expert must be None or a tuple (w1_shared [2*I_s, H], w2_shared [H, I_s])")
        w1s = _check_tensor("shared_expert[0]", shared_expert[0], 2, device)
        w2s = _check_tensor("shared_expert[1]", shared_expert[1], 2, device)
        if w1s.shape[1] != hidden or w1s.shape[0] % 2 or tuple(w2s.shape) != (hidden, w1s.shape[0] // 2):
            _fail(f"shared_expert shapes must be [2*I_s, H={hidden}] and [H, I_s], "
                  f"got {tuple(w1s.shape)} and {tuple(w2s.shape)}")
        if w1s.dtype != hidden_states.dtype or w2s.dtype != hidden_states.dtype:
            _fail(f"shared_expert weights must have hidden_states dtype {hidden_states.dtype}")
    if quant == "fp8_w8a8":
        _validate_fp8(hidden_states, w1, w2, w1_scale, w2_scale, a_scale, block_shape)
    elif any(s is not None for s in (w1_scale, w2_scale, a_scale, block_shape)):
        _fail("w1_scale, w2_scale, a_scale and block_shape are only used with quant='fp8_w8a8'")
    return m, hidden, inter, num_experts


def _validate_fp8(hidden_states, w1, w2, w1_scale, w2_scale, a_scale, block_shape=None) -> None:
    device = hidden_states.device
    if hidden_states.dtype not in (torch.float16, torch.bfloat16):
        _fail(f"quant='fp8_w8a8' needs float16 or bfloat16 hidden_states, got {hidden_states.dtype}")
    if block_shape is not None:
        _validate_block(w1, w2, w1_scale, w2_scale, a_scale, block_shape, device)
    per_tensor = () if block_shape is not None else (("w1", w1, w1_scale), ("w2", w2, w2_scale))
    for name, w, scale in per_tensor:
        if w.dtype != FP8_DTYPE:
            _fail(f"quant='fp8_w8a8' needs {name} in torch.float8_e4m3fn, got {w.dtype}")
        if scale is None:
            _fail(f"quant='fp8_w8a8' needs {name}_scale ([E] per tensor or [E, {w.shape[1]}] per channel)")
        _check_tensor(f"{name}_scale", scale, scale.dim() if isinstance(scale, torch.Tensor) else 1, device)
        per_row = scale.numel() // max(scale.shape[0], 1) if scale.dim() else 0
        if scale.dim() == 0 or scale.dim() > 3 or scale.shape[0] != w.shape[0] or per_row not in (1, w.shape[1]):
            _fail(f"{name}_scale must be [E={w.shape[0]}] per tensor or [E, {w.shape[1]}] per channel, "
                  f"got {tuple(scale.shape)}")
    if a_scale is not None:
        _check_tensor("a_scale", a_scale, a_scale.dim() if isinstance(a_scale, torch.Tensor) else 0, device)
        if a_scale.numel() != 1:
            _fail(f"a_scale must hold one per-tensor scale, got shape {tuple(a_scale.shape)}")
    if device.type != "cuda" or torch.cuda.get_device_capability(device) < (8, 9):
        where = device.type if device.type != "cuda" else f"capability {torch.cuda.get_device_capability(device)}"
        _fail(f"quant='fp8_w8a8' needs a CUDA device with compute capability >= 8.9, got {where}")


def _validate_block(w1, w2, w1_scale, w2_scale, a_scale, block_shape, device) -> None:
    """Block-wise fp8: block_shape (bn, bk) powers of two >= 16; scales [E, cdiv(N', bn), cdiv(K, bk)]."""
    if (not isinstance(block_shape, tuple | list) or len(block_shape) != 2
            or not all(isinstance(v, int) and v >= 16 and not v & (v - 1) for v in block_shape)):
        _fail(f"block_shape must be two powers of two >= 16 [block_n, block_k], got {block_shape!r}")
    if a_scale is not None:
        _fail("block-wise fp8 quantises activations per token group dynamically; a_scale must be None")
    bn, bk = block_shape
    for name, w, scale in (("w1", w1, w1_scale), ("w2", w2, w2_scale)):
        if w.dtype != FP8_DTYPE:
            _fail(f"quant='fp8_w8a8' needs {name} in torch.float8_e4m3fn, got {w.dtype}")
        want = (w.shape[0], -(-w.shape[1] // bn), -(-w.shape[2] // bk))
        if not isinstance(scale, torch.Tensor) or tuple(scale.shape) != want:
            _fail(f"{name}_scale must be [E, cdiv(N, {bn}), cdiv(K, {bk})] = {want} for block_shape "
                  f"{list(block_shape)}, got {getattr(scale, 'shape', scale)}")
        _check_tensor(f"{name}_scale", scale, 3, device)


def topk_route(
    router_logits: torch.Tensor, top_k: int, renormalize: bool = True, scoring: Scoring = "softmax"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated ``reference.topk_route``: router_logits [M, E] -> (weights fp32 [M, top_k],
    ids int32 [M, top_k]). softmax or sigmoid scores, top-k, optional renormalisation to sum 1."""
    if not isinstance(router_logits, torch.Tensor) or router_logits.dim() != 2:
        _fail(f"router_logits must be a 2-D [M, E] tensor, got {getattr(router_logits, 'shape', router_logits)}")
    if not router_logits.dtype.is_floating_point:
        _fail(f"router_logits must be floating point, got {router_logits.dtype}")
    num_experts = router_logits.shape[1]
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= num_experts:
        _fail(f"top_k must be an int in [1, E={num_experts}], got {top_k!r}")
    if scoring not in _SCORINGS:
        _fail(f"scoring must be one of {_SCORINGS}, got {scoring!r}")
    return reference.topk_route(router_logits, top_k, renormalize, scoring)


def moe_align_block_size(
    topk_ids: torch.Tensor, block_size: int, num_experts: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validated ``reference.moe_align_block_size`` (see there for the exact output contract).

    topk_ids [M, top_k] integer with values in [0, num_experts) (not checked: that would need a
    device-to-host sync) -> (sorted_token_ids int32 [T + E*(block_size-1)],
    expert_ids int32 [ceil(that / block_size)], num_tokens_post_padded int32 [1]).
    """
    if not isinstance(topk_ids, torch.Tensor) or topk_ids.dim() != 2:
        _fail(f"topk_ids must be a 2-D [M, top_k] tensor, got {getattr(topk_ids, 'shape', topk_ids)}")
    if topk_ids.dtype.is_floating_point or topk_ids.dtype.is_complex or topk_ids.dtype == torch.bool:
        _fail(f"topk_ids must be an integer tensor, got {topk_ids.dtype}")
    if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size <= 0:
        _fail(f"block_size must be a positive int, got {block_size!r}")
    if not isinstance(num_experts, int) or isinstance(num_experts, bool) or num_experts <= 0:
        _fail(f"num_experts must be a positive int, got {num_experts!r}")
    return reference.moe_align_block_size(topk_ids, block_size, num_experts)


def _use_triton(impl: Impl, device: torch.device) -> bool:
    if impl == "reference":
        return False
    interpret_env = os.environ.get("TRITON_INTERPRET") == "1"
    if impl == "auto" and device.type != "cuda" and not interpret_env:
        return False
    if device.type != "cuda":
        from kernels.moe import triton_impl

        if not triton_impl.INTERPRETED:
            _fail("impl='triton' on CPU tensors needs TRITON_INTERPRET=1 set before kernels.moe.triton_impl "
                  "is first imported")
    return True


def fused_moe(
    hidden_states: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    router_logits: torch.Tensor,
    top_k: int,
    renormalize: bool = True,
    *,
    scoring: Scoring = "softmax",
    shared_expert: tuple[torch.Tensor, torch.Tensor] | None = None,
    config: dict[str, int] | None = None,
    impl: Impl = "auto",
    quant: QuantMode | None = None,
    w1_scale: torch.Tensor | None = None,
    w2_scale: torch.Tensor | None = None,
    a_scale: torch.Tensor | None = None,
    block_shape: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Mixture-of-Experts layer: route, per-expert ``silu(x W_gate^T) * (x W_up^T) W2^T``, combine.

    hidden_states [M, H]; w1 [E, 2*I, H] (rows [0, I) gate, [I, 2I) up); w2 [E, H, I];
    router_logits [M, E] -> [M, H] in hidden_states' dtype (fp32, fp16 or bf16).
    Each token's top_k expert outputs are summed with their routing weights (see ``topk_route``);
    ``shared_expert`` = (w1_shared [2*I_s, H], w2_shared [H, I_s]) adds an always-on expert,
    unweighted (Llama 4). ``config``: launch config (see config.py), None = resolved.
    ``impl``: "auto" = Triton on CUDA tensors or under TRITON_INTERPRET=1, else the reference.
    ``quant="fp8_w8a8"``: w1/w2 in float8_e4m3fn with ``w1_scale``/``w2_scale`` per tensor [E] or
    per channel [E, 2I] / [E, H]; ``a_scale`` a static per-tensor activation scale (None =
    dynamic); needs CUDA compute capability >= 8.9. With ``block_shape=(bn, bk)`` (vLLM's
    block_shape=[128, 128], DeepSeek-V3) the scales are block-wise, w1_scale [E, cdiv(2I, bn),
    cdiv(H, bk)] and w2_scale [E, cdiv(H, bn), cdiv(I, bk)], and activations are quantised per token
    and group of bk columns. Raises MoEInputError on any invalid input.
    """
    m, hidden, inter, num_experts = _validate(
        hidden_states, w1, w2, router_logits, top_k, renormalize, scoring, shared_expert,
        impl, quant, w1_scale, w2_scale, a_scale, block_shape)
    if config is not None:
        config = validate_config(config)
    if m == 0:
        return hidden_states.new_zeros(0, hidden)
    shared = tuple(shared_expert) if shared_expert is not None else None
    topk_weights, topk_ids = reference.topk_route(router_logits, top_k, renormalize, scoring)

    if not _use_triton(impl, hidden_states.device):
        if quant == "fp8_w8a8" and block_shape is not None:
            return reference.fused_moe_fp8_block_ref(hidden_states, w1, w2, w1_scale, w2_scale, topk_weights,
                                                     topk_ids, tuple(block_shape), shared_expert=shared)
        if quant == "fp8_w8a8":
            return reference.fused_moe_fp8_ref(hidden_states, w1, w2, w1_scale, w2_scale, topk_weights,
                                               topk_ids, a_scale=a_scale, shared_expert=shared)
        return reference.fused_moe_ref(hidden_states, w1, w2, topk_weights, topk_ids, shared_expert=shared)

    from kernels.moe import triton_impl

    if config is None:
        cfg, source = resolve_config(m, num_experts, inter, hidden, top_k, w1.dtype, hidden_states.device)
        config = validate_config(cfg, source=f"config from {source}")
    return triton_impl.fused_moe_triton(hidden_states, w1, w2, topk_weights, topk_ids, config,
                                        shared_expert=shared, w1_scale=w1_scale, w2_scale=w2_scale,
                                        a_scale=a_scale,
                                        block_shape=None if block_shape is None else tuple(block_shape))
