"""Search space and constraint pruning, checked against hand-computed numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import UserError
from accelsim.tune.space import (
    CONFIG_KEYS,
    DEVICE_LIMITS,
    Problem,
    device_limits,
    m_blocks_launched,
    parse_batch_sizes,
    prune,
    vllm_space,
)

H100 = DEVICE_LIMITS["h100-sxm"]
A100 = DEVICE_LIMITS["a100"]


def test_vllm_space_is_the_1920_point_cartesian_product() -> None:
    space = vllm_space()
    assert len(space) == 5 * 4 * 3 * 4 * 2 * 4 == 1920
    assert len({tuple(c.values()) for c in space}) == 1920
    assert all(tuple(c) == CONFIG_KEYS for c in space)


def test_config_keys_match_the_kernel() -> None:
    from kernels.moe import CONFIG_KEYS as KERNEL_KEYS

    assert CONFIG_KEYS == KERNEL_KEYS


def test_mixtral_batch_1_prunes_to_160_by_hand_count() -> None:
    # Only BLOCK_SIZE_M=16 fits M=1 (192 configs with G in {1, 16}: 2 M-blocks, so 32 and 64 launch
    # like 16). Shared memory (16+BN)*BK*2 B*stages > 227 KB removes: BN=256,BK=256 all 4 stages (16
    # configs over G x warps), BN=128,BK=256 stages 4-5 (8), BN=256,BK=128 stages 4-5 (8): 192-32 = 160.
    problem = Problem(8, 4096, 7168, 2, "bf16", 1)
    kept, rejected = prune(vllm_space(), problem, H100)
    assert len(kept) == 160
    assert {c["BLOCK_SIZE_M"] for c in kept} == {16}
    assert {c["GROUP_SIZE_M"] for c in kept} == {1, 16}
    assert len(kept) + len(rejected) == 1920
    reasons = {r.split(" ")[0] for _, r in rejected}
    assert {"shared", "BLOCK_SIZE_M", "same"} <= reasons


def test_shared_memory_limit_differs_by_device() -> None:
    # (64 + 128) * 128 * 2 B * 4 stages = 192 KB: fits H100's 227 KB per block, not A100's 163 KB.
    cfg = dict(zip(CONFIG_KEYS, (64, 128, 128, 1, 4, 4)))
    problem = Problem(8, 4096, 7168, 2, "bf16", 4096)
    assert prune([cfg], problem, H100)[0] == [cfg]
    kept, rejected = prune([cfg], problem, A100)
    assert kept == [] and "shared memory 192 KB > 163 KB" in rejected[0][1]
    # fp8 halves the bytes: 96 KB fits both
    assert prune([cfg], Problem(8, 4096, 7168, 2, "fp8", 4096), A100)[0] == [cfg]


def test_accumulator_register_limit() -> None:
    # 256 x 256 fp32 accumulator over 4 warps = 512 registers per thread > 255.
    cfg = dict(zip(CONFIG_KEYS, (256, 256, 64, 1, 4, 2)))
    kept, rejected = prune([cfg], Problem(8, 4096, 7168, 2, "fp8", 4096), H100)
    assert not kept and "512 registers" in rejected[0][1]


def test_m_blocks_match_the_kernel_grid_clamp() -> None:
    import numpy as np

    # T = 2 pairs, E = 8: min(2 + 8*15, 2*16) = 32 rows -> 2 blocks of 16.
    assert m_blocks_launched(Problem(8, 64, 64, 2, "bf16", 1), np.array([16]))[0] == 2
    # T = 8192 pairs: min(8192 + 8*127, 8192*128) = 9208 rows -> 72 blocks of 128.
    assert m_blocks_launched(Problem(8, 64, 64, 2, "bf16", 4096), np.array([128]))[0] == 72


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 5000), e=st.sampled_from([8, 16, 128, 256]), k=st.sampled_from([1, 2, 8]),
       dtype=st.sampled_from(["bf16", "fp8", "fp32"]))
def test_pruning_is_a_partition_and_kept_configs_fit(m: int, e: int, k: int, dtype: str) -> None:
    from accelsim.tune.space import accumulator_regs, config_arrays, smem_bytes

    problem = Problem(e, 4096, 2048, min(k, e), dtype, m)
    kept, rejected = prune(vllm_space(), problem, H100)
    assert len(kept) + len(rejected) == 1920 and kept
    a = config_arrays(kept)
    assert (smem_bytes(a, problem.elem_bytes) <= H100.smem_per_block_bytes).all()
    assert (accumulator_regs(a) <= 255).all()
    assert all(reason for _, reason in rejected)


def test_device_limits_lookup_by_torch_name() -> None:
    assert device_limits("NVIDIA H100 80GB HBM3").name == "h100-sxm"
    assert device_limits("NVIDIA H100 PCIe").sm_count == 114
    assert device_limits("NVIDIA A100-SXM4-80GB").smem_per_sm_bytes == 164 * 1024
    with pytest.raises(UserError, match="no device limits"):
        device_limits("Tesla T4")


def test_bad_inputs_raise_user_errors() -> None:
    with pytest.raises(UserError, match="top_k"):
        Problem(8, 64, 64, 9, "bf16", 1)
    with pytest.raises(UserError, match="dtype"):
        Problem(8, 64, 64, 2, "int4", 1)
    with pytest.raises(UserError, match="'0'"):
        parse_batch_sizes("1,0")
    assert parse_batch_sizes("4, 1,4") == [1, 4]
