"""The analytical model: published H100 points, properties, memory planner, power."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.memory import kv_bytes_per_seq, plan_llm
from accelsim.perf import Roofline
from accelsim.predict import predict
from accelsim.spec import load_chip, load_model
from accelsim.stacks import error_summary, evaluate, fit_stack, load_stack

STACK = load_stack()


def test_published_h100_points_error(capsys):
    """Every published TensorRT-LLM H100 point (§4.2), predicted with the fitted stack."""
    rows = evaluate(STACK)
    with capsys.disabled():
        print("\npublished H100 point                      published  predicted   error")
        for r in rows:
            print(f"  {r['model']:14s} TP{r['tp']} {r['input_len']:>5}/{r['output_len']:<5} "
                  f"{r['published_tokens_per_s']:>10,.0f} {r['predicted_tokens_per_s']:>10,.0f} "
                  f"{r['error_pct']:+7.1f}%")
        s = error_summary(rows)
        print(f"  median |error| {s['median_ape_pct']:.1f}%  p90 {s['p90_ape_pct']:.1f}%  max {s['max_ape_pct']:.1f}%")
    s = error_summary(rows)
    assert s["n"] == 30
    assert s["median_ape_pct"] < 6 and s["max_ape_pct"] < 20


def test_stored_stack_is_the_fit():
    """The stack in accelsim/data/stacks.toml is what fit_stack produces (no stale constants)."""
    fitted, _ = fit_stack(STACK)
    assert fitted.compute_eff == pytest.approx(STACK.compute_eff, abs=2e-3)
    assert fitted.memory_eff == pytest.approx(STACK.memory_eff, abs=2e-3)


def test_roofline_is_an_upper_bound():
    h100, m = load_chip("h100-sxm"), load_model("llama3-70b")
    kw = dict(chips=2, dtype="fp8", input_len=1000, output_len=1000, batch=64)
    roof = predict(h100, m, eff=Roofline(), **kw)
    real = predict(h100, m, eff=STACK, **kw)
    assert roof["fidelity"] == "roofline" and real["fidelity"] == "analytical"
    assert roof["throughput_tokens_per_s"] > real["throughput_tokens_per_s"]


def test_decode_at_batch_1_is_bandwidth_bound_closed_form():
    """Batch-1 decode on the roofline: TPOT = bytes moved per token / bandwidth (weights + KV)."""
    chip, m = load_chip("h100-sxm"), load_model("llama3-8b")
    r = predict(chip, m, chips=1, eff=Roofline(), dtype="bf16", input_len=1, output_len=1, batch=1)
    # one prompt token + one output token: with chunked prefill the prompt rides in the decode step
    # (one forward pass), which streams every weight once, except the input embedding table, of
    # which a step gathers only its tokens' rows
    weights = (m.total_params - m.vocab_size * m.hidden_size) * 2
    assert r["tpot_s"] == pytest.approx(weights / chip.mem_bw_bytes_per_s, rel=0.02)


CHIPS = ["h100-sxm", "b200", "mtia-450", "mtia-500", "mi300x", "tpu7x"]
MODELS = ["llama3-70b", "llama4-maverick", "llama4-scout", "mixtral-8x7b"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chip=st.sampled_from(CHIPS), model=st.sampled_from(MODELS), factor=st.floats(1.05, 4.0),
       knob=st.sampled_from(["mem_bw", "flops"]), batch=st.sampled_from([1, 8, 64, 256]),
       io=st.sampled_from([(128, 128), (1000, 1000), (4000, 200)]))
def test_more_bandwidth_or_flops_is_never_slower(chip, model, factor, knob, batch, io):
    c, m = load_chip(chip), load_model(model)
    kw = dict(chips=8, eff=STACK, dtype="fp8", input_len=io[0], output_len=io[1], batch=batch)
    try:
        base = predict(c, m, **kw)
    except UserError:  # does not fit at this batch: nothing to compare
        return
    better = predict(c.scaled(**{knob: factor}), m, **kw)
    assert better["throughput_tokens_per_s"] >= base["throughput_tokens_per_s"] * (1 - 1e-12)
    assert better["ttft_s"] <= base["ttft_s"] * (1 + 1e-12)


@settings(max_examples=30, deadline=None)
@given(chip=st.sampled_from(CHIPS), model=st.sampled_from(MODELS), mult=st.sampled_from([2, 4, 8]))
def test_more_chips_never_lower_total_throughput(chip, model, mult):
    """Searched layouts (those dividing 8 also divide 8 x mult) and a pinned tp=8 alike."""
    c, m = load_chip(chip), load_model(model)
    for pin in ({}, {"tp": 8}):
        try:
            base = predict(c, m, chips=8, eff=STACK, dtype="fp8", **pin)
        except UserError:
            continue
        more = predict(c, m, chips=8 * mult, eff=STACK, dtype="fp8", **pin)
        assert more.throughput >= base.throughput


@settings(max_examples=60, deadline=None)
@given(chip=st.sampled_from([*CHIPS, "mtia-v2", "tpu-v5e", "h200-sxm"]), batch=st.integers(1, 4096),
       model=st.sampled_from(["llama3-8b", "dlrm-v2", "dlrm-rm1", "dlrm-rm3"]))
def test_power_within_idle_and_tdp(chip, batch, model):
    c = load_chip(chip)
    try:
        r = predict(c, load_model(model), chips=8, eff=STACK, dtype="fp8", batch=batch, input_len=500, output_len=100)
    except UserError:
        return
    assert c.idle_w <= r["power_w"] <= c.tdp_w


def test_kv_cache_bytes_hand_computed():
    # Llama 3 70B: 80 layers x 8 KV heads x 128 x (K,V) x 2 B = 320 KiB per token (reference §3.1)
    m = load_model("llama3-70b")
    assert kv_bytes_per_seq(m, Parallel(), Precision(), 1) == 320 * 1024
    # TP2 halves it; fp8 halves it again; 1000 tokens scale it linearly
    assert kv_bytes_per_seq(m, Parallel(tp=2), Precision(kv="fp8"), 1000) == 1000 * 80 * 1024
    # TP16 > 8 KV heads: each chip still holds one whole KV head
    assert kv_bytes_per_seq(m, Parallel(tp=16), Precision(), 1) == 80 * 2 * 128 * 2


def test_chunked_attention_caps_local_layers_kv():
    m = load_model("llama4-scout")  # 36 local layers capped at 8,192 tokens, 12 global
    per = 2 * 8 * 128 * 2
    assert kv_bytes_per_seq(m, Parallel(), Precision(), 100_000) == (12 * 100_000 + 36 * 8192) * per


def test_memory_planner_max_batch_hand_computed():
    chip, m = load_chip("h100-sxm"), load_model("llama3-70b")
    par, prec = Parallel(tp=2), Precision(weights="fp8", kv="fp8")
    plan = plan_llm(chip, m, par, prec, 2000)
    free = 80e9 * 0.9 - m.total_params / 2 - 8192 * 8192 * 16 * 2 / 2
    assert plan.max_batch == int(free // (2000 * 80 * 2 * 4 * 128))


def test_model_that_does_not_fit_says_so_with_numbers():
    with pytest.raises(UserError, match=r"does not fit on 1 x h100-sxm .*weights 141\.1 GB"):
        predict(load_chip("h100-sxm"), load_model("llama3-70b"), chips=1, eff=STACK, dtype="bf16")


@pytest.mark.parametrize("kw, message", [
    (dict(chips=2, tp=3), "does not divide the 64 attention heads"),
    (dict(chips=160, tp=1, pp=160), "exceeds the 80 layers"),
    (dict(chips=8, tp=4), None),
    (dict(chips=6, tp=4), "not a multiple of tp x pp"),
    (dict(chips=0), "--chips must be >= 1"),
    (dict(chips=8, input_len=0), "--input-len must be >= 1"),
    (dict(chips=8, batch=10**6), "does not fit"),
    (dict(chips=8, max_tpot=1e-6), "no batch meets the SLO"),
])
def test_rejections(kw, message):
    call = lambda: predict(load_chip("h100-sxm"), load_model("llama3-70b"), eff=STACK, **kw)
    if message is None:
        assert call()["replicas"] == 2
    else:
        with pytest.raises(UserError, match=message):
            call()


@pytest.mark.parametrize("model, kw, message", [
    ("llama3-70b", dict(ep=2), "needs an MoE model"),
    ("mixtral-8x7b", dict(ep=3), "must divide --tp"),
    ("deepseek-v3", dict(ep=8, tp=8, chips=8, dtype="bf16"), None),
])
def test_expert_parallel_validation(model, kw, message):
    call = lambda: predict(load_chip("h200-sxm"), load_model(model), eff=STACK, **{"chips": 8, "dtype": "fp8", **kw})
    if message is None:
        with pytest.raises(UserError, match="does not fit"):  # 671B in bf16 needs more than 8 x 141 GB
            call()
        assert predict(load_chip("h200-sxm"), load_model(model), eff=STACK, chips=8, ep=8, dtype="fp8")["ep"] == 8
    else:
        with pytest.raises(UserError, match=message):
            call()


def test_slo_search_picks_a_batch_meeting_it():
    c, m = load_chip("h100-sxm"), load_model("llama3-8b")
    free = predict(c, m, chips=1, eff=STACK, dtype="fp8")
    slo = predict(c, m, chips=1, eff=STACK, dtype="fp8", max_tpot=free["tpot_s"] / 3)
    assert slo["tpot_s"] <= free["tpot_s"] / 3
    assert slo["batch"] < free["batch"]
    assert slo["throughput_tokens_per_s"] < free["throughput_tokens_per_s"]


def test_ranking_prediction_and_mlperf_h100_check(capsys):
    """MLPerf DLRM-v2 reports samples of 100-700 user-item pairs (mlcommons/inference #1628);
    accelsim counts one pair as a sample, so 74,457 samples/s/GPU is 7.4M-52M pairs/s."""
    r = predict(load_chip("h100-sxm"), load_model("dlrm-v2"), chips=8, eff=STACK, dtype="fp8")
    per_chip = r["per_chip_samples_per_s"]
    with capsys.disabled():
        print(f"\nDLRM-v2 on H100 (fp8): {per_chip / 1e6:.1f}M pairs/s per chip; MLPerf v4.1 offline "
              f"74,457 samples/s x 100-700 pairs = 7.4M-52M pairs/s")
    assert 74_457 * 100 <= per_chip <= 74_457 * 700
    assert r["latency_s"] <= 0.060 and r["fidelity"] == "analytical"
    assert r["joules_per_sample"] == pytest.approx(r["power_w"] * 8 / r["throughput_samples_per_s"])


def test_ranking_that_does_not_fit_names_chips_needed():
    with pytest.raises(UserError, match=r"use --chips \d+"):
        predict(load_chip("tpu-v5e"), load_model("dlrm-v2"), chips=1, eff=STACK, dtype="bf16")


def test_sweep_is_vectorised_over_chips_and_batches():
    from accelsim.perf import HwVec
    from accelsim.predict import llm_metrics

    chips = [load_chip(n) for n in CHIPS]
    hw = HwVec.from_chips(chips, shape=(len(chips), 1))
    batches = np.array([1, 4, 16, 64, 256], dtype=float)
    m = llm_metrics(hw, load_model("llama3-70b"), Parallel(tp=8), Precision("fp8", kv="fp8"), 1000, 1000,
                    batches, STACK)
    assert m.throughput_replica.shape == (len(chips), 5)
    # each cell equals the scalar prediction for that chip and batch
    for i, c in enumerate(chips):
        r = predict(c, load_model("llama3-70b"), chips=8, tp=8, eff=STACK, dtype="fp8", batch=16)
        assert m.throughput_replica[i, 2] == pytest.approx(r["throughput_tokens_per_s"], rel=1e-12)
