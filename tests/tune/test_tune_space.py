"""Search space and constraint pruning, checked against hand-computed numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import UserError
from accelsim.tune.space import (
    CONFIG_KEYS,
    DEVICE_LIMITS,
    TUNE_SPACE,
    Problem,
    canonical,
    device_limits,
    m_blocks_launched,
    parse_batch_sizes,
    prune,
    tune_space,
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


def test_mixtral_batch_1_prunes_by_hand_count() -> None:
    # M=1, top_k=2, E=8: min(2 + 8*(BM-1), 2*BM) = 2*BM rows -> 2 M-blocks for every BM, so every
    # GROUP_SIZE_M >= 2 launches like 16 (the smallest such value in vLLM's list): G in {1, 16} kept.
    # Accumulator registers BM*BN / (32 * warps) > 255 remove (BM, BN) = (128, 256), (256, 128),
    # (256, 256) at 4 warps and (256, 256) at 8 warps: 4 pairs x 3 BK x 2 G x 4 stages = 96. One
    # pipeline stage (BM+BN)*BK*2 B > 227 KB only for BM=BN=BK=256 (256 KB), already among them.
    problem = Problem(8, 4096, 7168, 2, "bf16", 1)
    kept, rejected = prune(vllm_space(), problem, H100)
    assert {c["GROUP_SIZE_M"] for c in kept} == {1, 16}
    assert len(kept) + len(rejected) == 1920
    assert len(kept) == 960 - 96
    assert {c["BLOCK_SIZE_M"] for c in kept} == {16, 32, 64, 128, 256}  # no rule drops a big tile at M=1
    reasons = {r.split(" ")[0] for _, r in rejected}
    assert {"accumulator", "same"} <= reasons


def test_shared_memory_rule_is_one_stage_and_differs_by_device() -> None:
    # One stage of (128 + 256) * 256 * 2 B = 192 KB: fits H100's 227 KB per block, not A100's 163 KB.
    cfg = dict(zip(CONFIG_KEYS, (128, 256, 256, 1, 8, 4)))
    problem = Problem(8, 4096, 7168, 2, "bf16", 4096)
    assert prune([cfg], problem, H100)[0] == [cfg]
    kept, rejected = prune([cfg], problem, A100)
    assert kept == [] and "192 KB shared memory > 163 KB" in rejected[0][1]
    # fp8 halves the bytes: 96 KB fits both
    assert prune([cfg], Problem(8, 4096, 7168, 2, "fp8", 4096), A100)[0] == [cfg]


def test_accumulator_register_limit_except_on_blackwell() -> None:
    # 256 x 256 fp32 accumulator over 4 warps = 512 registers per thread > 255 (Hopper); on Blackwell
    # the accumulator lives in tensor memory.
    cfg = dict(zip(CONFIG_KEYS, (256, 256, 64, 1, 4, 2)))
    kept, rejected = prune([cfg], Problem(8, 4096, 7168, 2, "fp8", 4096), H100)
    assert not kept and "512 registers" in rejected[0][1]
    assert prune([cfg], Problem(8, 4096, 7168, 2, "fp8", 4096), DEVICE_LIMITS["b200"])[0] == [cfg]


def test_canonical_maps_group_sizes_that_launch_alike() -> None:
    # DeepSeek-V3 at M=1: T = 8 pairs; with BM=64, min(8 + 256*63, 8*64) = 512 rows -> 8 M-blocks.
    problem = Problem(256, 7168, 256, 8, "fp8", 1)
    cfg = dict(zip(CONFIG_KEYS, (64, 128, 128, 64, 4, 3)))
    assert canonical(cfg, problem)["GROUP_SIZE_M"] == 8  # the smallest tune-space value >= 8 blocks
    assert canonical({**cfg, "GROUP_SIZE_M": 4}, problem)["GROUP_SIZE_M"] == 4  # 4 < 8: a distinct order
    assert canonical(cfg, problem, groups=(1, 16, 32, 64))["GROUP_SIZE_M"] == 16  # vLLM's list
    kept, _ = prune(tune_space(), problem, H100)
    keys = {tuple(c.values()) for c in kept}
    assert tuple(canonical(cfg, problem).values()) in keys and tuple(cfg.values()) not in keys


def test_tune_space_holds_vllms_space_and_the_shipped_extra_values() -> None:
    space = {tuple(c.values()) for c in tune_space()}
    assert {tuple(c.values()) for c in vllm_space()} <= space
    assert len(space) == 6 * 5 * 4 * 8 * 4 * 8
    assert {8, 16, 32, 64, 128, 256} == set(TUNE_SPACE["BLOCK_SIZE_M"])
    assert {2, 4, 8, 128} <= set(TUNE_SPACE["GROUP_SIZE_M"]) and {2, 16} <= set(TUNE_SPACE["num_warps"])


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
    from accelsim.tune.space import accumulator_regs, config_arrays, stage_bytes

    problem = Problem(e, 4096, 2048, min(k, e), dtype, m)
    kept, rejected = prune(vllm_space(), problem, H100)
    assert len(kept) + len(rejected) == 1920 and kept
    a = config_arrays(kept)
    assert (stage_bytes(a, problem.elem_bytes) <= H100.smem_per_block_bytes).all()
    assert (accumulator_regs(a) <= 255).all()
    assert all(reason for _, reason in rejected)


def test_device_limits_lookup_by_torch_name() -> None:
    assert device_limits("NVIDIA H100 80GB HBM3").name == "h100-sxm"
    assert device_limits("NVIDIA H100 PCIe").sm_count == 114
    assert device_limits("NVIDIA A100-SXM4-80GB").smem_per_sm_bytes == 164 * 1024
    assert device_limits("NVIDIA B200").generation == "blackwell"
    assert device_limits("NVIDIA GB200").name == "gb200"
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
