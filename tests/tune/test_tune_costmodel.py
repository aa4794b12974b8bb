"""The model strategy's analytical cost model and its least-squares corrections."""

from __future__ import annotations

import numpy as np

from accelsim.ops import fused_moe_ops
from accelsim.spec import load_chip
from accelsim.tune.costmodel import START, CostModel, fit_factors, fit_main_effects, one_hot
from accelsim.tune.space import CONFIG_KEYS, DEVICE_LIMITS, Problem, config_arrays, prune, vllm_space

H100 = DEVICE_LIMITS["h100-sxm"]
CHIP = load_chip("h100-sxm")


def _terms(problem: Problem):
    configs, _ = prune(vllm_space(), problem, H100)
    arrays = config_arrays(configs)
    return configs, arrays, CostModel(problem, H100, CHIP).terms(arrays)


def test_model_never_beats_the_roofline_of_the_operator_counts() -> None:
    for problem in (Problem(8, 4096, 7168, 2, "bf16", 1), Problem(256, 7168, 2048, 8, "fp8", 4096)):
        _, _, terms = _terms(problem)
        ops = fused_moe_ops(problem.m, problem.hidden, problem.inter, problem.experts, problem.top_k,
                            act_bytes=problem.elem_bytes, weight_bytes=problem.elem_bytes)
        gemm_flops = float(ops[0].flops + ops[1].flops)
        gemm_bytes = float(ops[0].bytes + ops[1].bytes)
        peak = CHIP.flops("fp8" if problem.dtype == "fp8" else "bf16")
        bound = max(gemm_flops / peak, gemm_bytes / CHIP.mem_bw_bytes_per_s)
        assert (terms.predict() - terms.fixed_s >= bound * (1 - 1e-12)).all()


def test_padding_makes_oversized_m_tiles_cost_more_compute() -> None:
    # M=8 tokens, top 2 of 8 experts: about 2 rows per active expert, so BM=64 computes 64 rows per
    # expert where BM=16 computes 16.
    base = dict(zip(CONFIG_KEYS, (64, 128, 64, 16, 4, 3)))
    small = CostModel(Problem(8, 4096, 7168, 2, "bf16", 8), H100, CHIP)
    t16 = small.terms(config_arrays([{**base, "BLOCK_SIZE_M": 16}])).compute_s
    t64 = small.terms(config_arrays([base])).compute_s
    assert t64.sum() > 1.5 * t16.sum()  # 4x the padded FLOPs, at twice the assumed MMA efficiency


def test_fit_factors_recovers_planted_factors() -> None:
    _, _, terms = _terms(Problem(8, 4096, 7168, 2, "bf16", 512))
    planted = np.array([1.6, 0.7, 2.5, 1.3, 0.3])
    measured = terms.predict(planted)
    idx = np.random.default_rng(0).choice(len(measured), 60, replace=False)
    got = fit_factors(terms.take(idx), measured[idx], prior_weight=1e-8)
    np.testing.assert_allclose(terms.predict(got), measured, rtol=0.02)
    np.testing.assert_allclose(got[:2], planted[:2], rtol=0.05)


def test_prior_keeps_factors_near_start_with_little_data() -> None:
    _, _, terms = _terms(Problem(8, 4096, 7168, 2, "bf16", 512))
    got = fit_factors(terms.take(np.array([0])), terms.predict()[:1] * 3.0, prior_weight=10.0)
    assert np.all(np.abs(np.log(got / START)) < np.log(3.0))


def test_main_effects_recover_a_planted_per_value_slowdown() -> None:
    _, arrays, _ = _terms(Problem(8, 4096, 7168, 2, "bf16", 512))
    x = one_hot(arrays, {k: sorted(set(arrays[k].tolist())) for k in CONFIG_KEYS})
    planted = np.where(arrays["BLOCK_SIZE_N"] == 32, np.log(1.15), 0.0)
    coef = fit_main_effects(x, planted, ridge=0.1)
    np.testing.assert_allclose(x @ coef, planted, atol=0.01)
