"""Fused Mixture-of-Experts layer: Triton kernels with a PyTorch reference (see README.md)."""

from kernels.moe.api import (
    Impl,
    MoEInputError,
    QuantMode,
    fused_moe,
    moe_align_block_size,
    topk_route,
    validate_config,
)
from kernels.moe.config import (
    CONFIG_KEYS,
    default_config,
    get_config_provider,
    load_tuned_config,
    resolve_config,
    set_config_provider,
    use_config_provider,
)

__all__ = [
    "CONFIG_KEYS",
    "Impl",
    "MoEInputError",
    "QuantMode",
    "default_config",
    "fused_moe",
    "get_config_provider",
    "load_tuned_config",
    "moe_align_block_size",
    "resolve_config",
    "set_config_provider",
    "topk_route",
    "use_config_provider",
    "validate_config",
]
