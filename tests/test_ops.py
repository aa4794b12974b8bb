"""FLOP and byte counts of each operator against hand-computed values."""

import numpy as np
import pytest

from accelsim import ops


def test_gemm_counts():
    op = ops.gemm("g", 8, 4096, 1024, dtype="bf16", a_bytes=2, w_bytes=1, out_bytes=2)
    assert op.flops == 2 * 8 * 4096 * 1024
    assert op.bytes == 8 * 1024 * 2 + 1024 * 4096 * 1 + 8 * 4096 * 2
    assert op.kind is ops.OpKind.GEMM


def test_gemm_vectorises_over_rows():
    op = ops.gemm("g", np.array([1, 2, 4]), 10, 10, dtype="bf16", a_bytes=2, w_bytes=2, out_bytes=2)
    np.testing.assert_array_equal(op.flops, [200, 400, 800])


def test_expected_experts_hit_limits():
    # one token with top-2 of 8 hits exactly 2 experts; a huge batch hits all of them
    assert ops.expected_experts_hit(1, 8, 2) == pytest.approx(2.0)
    assert ops.expected_experts_hit(10_000, 8, 2) == pytest.approx(8.0)
    # Monte Carlo check of the closed form at a middle point
    rng = np.random.default_rng(0)
    hits = [len(np.unique(np.concatenate([rng.choice(16, 1, replace=False) for _ in range(8)]))) for _ in range(4000)]
    assert ops.expected_experts_hit(8, 16, 1) == pytest.approx(np.mean(hits), rel=0.02)


def test_grouped_gemm_reads_only_active_experts():
    op = ops.grouped_gemm("moe", tokens=6, n=32, k=16, experts_active=3, dtype="bf16", a_bytes=2, w_bytes=2,
                          out_bytes=2)
    assert op.flops == 2 * 6 * 32 * 16
    assert op.bytes == 6 * 16 * 2 + 3 * 16 * 32 * 2 + 6 * 32 * 2


def test_attention_decode_reads_whole_kv_cache():
    # Llama 3 8B layer: 32 q heads, 8 kv heads of 128 → 2*8*128 KV elements per token
    op = ops.attention_decode("a", batch=4, context=1000, heads=32, qk_dim=128, v_dim=128,
                              kv_elems_per_token=2 * 8 * 128, dtype="bf16", act_bytes=2, kv_bytes=2)
    assert op.flops == 2 * 4 * 1000 * 32 * 256
    assert op.bytes == 4 * 1000 * 2048 * 2 + 4 * 32 * 256 * 2


def test_attention_prefill_counts():
    op = ops.attention_prefill("a", tokens=100, context=50, heads=8, qk_dim=64, v_dim=64, kv_elems_per_token=256,
                               dtype="bf16", act_bytes=2, kv_bytes=1)
    assert op.flops == 2 * 100 * 50 * 8 * 128
    assert op.bytes == 100 * 8 * 128 * 2 + (50 + 100) * 256 * 1


def test_embedding_bag_counts():
    op = ops.embedding_bag("e", samples=10, lookups=214, tables=26, dim=128, dtype="bf16", row_bytes=2, out_bytes=2)
    assert op.bytes == 10 * 214 * 128 * 2 + 10 * 26 * 128 * 2
    assert op.gather_bytes == 256


@pytest.mark.parametrize("g", [2, 4, 8])
def test_ring_all_reduce_traffic(g):
    op = ops.all_reduce("ar", 1e6, g, dtype="bf16")
    assert op.comm_bytes == pytest.approx(2 * (g - 1) / g * 1e6)
    assert op.comm_steps == 2 * (g - 1)


def test_collectives_on_one_chip_are_free():
    assert ops.all_reduce("ar", 1e6, 1, dtype="bf16").comm_bytes == 0
    assert ops.all_to_all("a2a", 1e6, 1, dtype="bf16").bytes == 0


def test_all_to_all_traffic():
    op = ops.all_to_all("a2a", 8e6, 8, dtype="bf16")
    assert op.comm_bytes == pytest.approx(7e6)


def test_fused_moe_counts_mixtral_decode():
    # Mixtral TP2 MoE layer at M=1: two experts hit, each reading 2I*H + H*I weights (bf16)
    h, i = 4096, 7168
    flops, nbytes = ops.fused_moe_counts(1, h, i, 8, 2, 2, 2)
    assert flops == pytest.approx(2 * 2 * (2 * i * h + h * i) + 2 * h, rel=1e-9)
    weight_bytes = 2 * (2 * i * h + h * i) * 2
    assert weight_bytes < nbytes < weight_bytes * 1.001
    # the published vLLM H100 time (144 us) is 73% of this roofline (reference §4.3)
    assert nbytes / 3.35e12 / 144e-6 == pytest.approx(0.73, abs=0.01)
