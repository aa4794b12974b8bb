"""The models people serve (Qwen3, gpt-oss, Gemma 3): counts against published totals, local
attention layers, MXFP4 weights, and the paged-KV memory rule against measured vLLM batches."""

import pytest

from accelsim.graph import Parallel, Precision, llm_ops, moe_rank_load
from accelsim.memory import held_context, llm_weight_bytes_per_chip, plan_llm
from accelsim.spec import load_chip, load_model

# Published totals in billions (model cards / technical reports), total and active. gpt-oss cards
# count active parameters without the input embedding (vocab x hidden), as the last column says.
PUBLISHED = {
    "qwen3-8b": (8.2, 8.2, False), "qwen3-14b": (14.8, 14.8, False), "qwen3-32b": (32.8, 32.8, False),
    "qwen3-30b-a3b": (30.5, 3.3, False), "qwen3-235b-a22b": (235, 22, False),
    "qwen3-coder-480b-a35b": (480, 35, False), "gpt-oss-20b": (20.9, 3.6, True), "gpt-oss-120b": (116.8, 5.1, True),
    "gemma3-12b": (11.8, 11.8, False), "gemma3-27b": (27, 27, False),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_published(name):
    m = load_model(name)
    total, active, no_input_embedding = PUBLISHED[name]
    assert m.total_params / 1e9 == pytest.approx(total, rel=0.02)
    act = m.active_params - (m.vocab_size * m.hidden_size if no_input_embedding else 0)
    assert act / 1e9 == pytest.approx(active, rel=0.03)


def test_local_attention_layers_and_sinks():
    assert load_model("gemma3-27b").num_local_attention_layers == 62 - 10  # every 6th layer global
    assert load_model("gemma3-12b").num_local_attention_layers == 40
    oss = load_model("gpt-oss-120b")
    assert oss.num_local_attention_layers == 18 and oss.attention.sinks  # alternating sliding / full
    # KV held at a long context: global layers hold all of it, sliding layers their 128-token window
    assert oss.kv_tokens_held(10_000) == 18 * 10_000 + 18 * 128


def test_sliding_window_caps_decode_attention_bytes():
    m, par, prec = load_model("gemma3-27b"), Parallel(), Precision()
    def attn_bytes(ctx):
        ops = llm_ops(m, par, prec, "decode", 1.0, ctx)
        return sum(o.bytes * o.calls for o in ops if o.name == "attention")
    per_token = 2 * 16 * 128 * 2  # K and V, 16 KV heads x 128, bf16
    assert attn_bytes(20_000) - attn_bytes(10_000) == pytest.approx(10 * 10_000 * per_token, rel=1e-9)


def test_mxfp4_keeps_only_experts_in_fp4():
    m = load_model("gpt-oss-120b")
    prec = Precision.for_serving("mxfp4")
    assert prec.kv == "bf16" and prec.gemm_dtype == "bf16" and prec.expert_w_bytes == 4.25 / 8
    experts = m.routed_expert_params
    expect = experts * 4.25 / 8 + (m.total_params - experts) * 2
    assert llm_weight_bytes_per_chip(m, Parallel(), prec) == pytest.approx(expect)
    assert 60e9 < expect < 66e9  # the published checkpoint is ~65 GB
    moe = next(o for o in llm_ops(m, Parallel(), prec, "decode", 1.0, 100.0) if o.name == "moe_gemm1")
    assert moe.dtype == "bf16"  # weight-only: computes in bf16 on every chip


def test_paged_kv_holds_measured_batches():
    # ML.ENERGY v3 (vLLM 0.11.1, H100): Llama 3.1 8B with max_num_seqs 768 ran 690.9 sequences on
    # average at 397 output tokens. At full context (the planner's old rule) ~620 fit; held at
    # input + output / 2 the measured batch fits, and a layout is refused only for one full sequence.
    h100, m, par, prec = load_chip("h100-sxm"), load_model("llama3-8b"), Parallel(), Precision()
    plan = plan_llm(h100, m, par, prec, 400 + 397, output_len=397)
    assert held_context(797, 397) == 598.5
    assert plan.max_batch < 691 <= plan.max_batch_paged
    assert plan.max_batch_paged == pytest.approx(plan.max_batch * 797 / 598.5, rel=0.01)


def test_busiest_rank_load_from_routing_skew():
    rows, hit = moe_rank_load(1e6, 128, 8, 8)  # many tokens: only the skew of popularity remains
    assert rows / (1e6 * 8 / 8) == pytest.approx(1 + (2 * __import__("math").log(8)) ** 0.5 * 0.4 / 4, rel=1e-3)
    assert hit == 16  # every local expert is hit
    small, _ = moe_rank_load(8, 128, 8, 8)
    assert small / 8 > rows / 1e6  # a small batch spreads less evenly
    one, _ = moe_rank_load(4, 128, 8, 1)
    assert one == 32  # one rank holds every routed row


def test_mixed_step_reads_each_weight_once():
    # chunked prefill: the step's decodes and its prompt chunk share one forward pass, so its bytes are
    # those of the two passes apart minus one read of every matmul's weights (a dense model: every
    # term is linear in the rows except the weights)
    from accelsim.ops import OpKind

    m, par, prec = load_model("llama3-8b"), Parallel(), Precision()
    b, p, ctx = 24.0, 300.0, 700.0
    mixed = llm_ops(m, par, prec, "prefill", p, 150.0, prefill_sequences=1.0, decode_seqs=b, decode_context=ctx)
    apart = llm_ops(m, par, prec, "decode", b, ctx) + llm_ops(m, par, prec, "prefill", p, 150.0)
    # a GEMM's weight bytes: k x n x w, with k x n = flops / (2 rows)
    gemm_w = sum(o.calls * float(o.flops / (2 * o.rows)) * prec.w_bytes for o in mixed if o.kind is OpKind.GEMM)
    total = lambda ops: sum(float(o.bytes) * o.calls for o in ops)
    assert total(apart) - total(mixed) == pytest.approx(gemm_w, rel=1e-9)
    flops = lambda ops: sum(float(o.flops) * o.calls for o in ops)
    assert flops(mixed) == pytest.approx(flops(apart), rel=1e-12)  # the same arithmetic


def test_expert_parallel_dispatch_only_across_attention_dp_groups():
    m, prec = load_model("qwen3-235b-a22b"), Precision()
    names = lambda par: {o.name for o in llm_ops(m, par, prec, "decode", 64.0, 1000.0)}
    assert "moe_dispatch" not in names(Parallel(tp=8, ep=8))  # the TP group holds every token
    assert "moe_allreduce" in names(Parallel(tp=8, ep=8))
    assert {"moe_dispatch", "moe_combine_a2a"} <= names(Parallel(tp=1, ep=8, dp=8))


def test_busiest_rank_sets_time_mean_rank_sets_work():
    m, prec, par = load_model("qwen3-30b-a3b"), Precision(), Parallel(tp=2, ep=2)
    moe = lambda balanced: next(o for o in llm_ops(m, par, prec, "decode", 16.0, 500.0, balanced=balanced)
                            if o.name == "moe_gemm1")
    busy, mean = moe(False), moe(True)
    assert busy.flops > mean.flops  # the busiest rank carries more than its share
    # the mean rank carries exactly its share: 16 tokens x top-8 over 2 ranks
    assert mean.flops == pytest.approx(2 * 16 * 8 / 2 * 2 * 768 * 2048, rel=1e-12)


def test_fixed_lengths_run_in_lockstep_waves():
    # fixed-length requests started together: all B prompts prefill (full chunks, no decodes), then
    # output_len decode steps of B sequences carry no prompts
    import numpy as np

    from accelsim.modes import Modes
    from accelsim.perf import HwVec, Roofline, cost
    from accelsim.predict import CHUNK_TOKENS, llm_metrics

    chip, m, par, prec = load_chip("h100-sxm"), load_model("llama3-8b"), Parallel(), Precision()
    hw, eff, b, inp, out = HwVec.from_chips([chip], shape=(1,)), Roofline(), 64.0, 2000, 300
    got = llm_metrics(hw, m, par, prec, inp, out, np.asarray([b]), eff, Modes(fixed_lengths=True))
    chunk = min(b * inp, CHUNK_TOKENS)
    pre = cost(llm_ops(m, par, prec, "prefill", chunk, inp / 2, prefill_sequences=chunk / inp), hw, eff).total_s
    dec = cost(llm_ops(m, par, prec, "decode", b, inp + out / 2), hw, eff).total_s
    pre, dec = float(np.ravel(pre)[0]), float(np.ravel(dec)[0])
    assert float(got.cycle_s[0]) == pytest.approx(b * inp / chunk * pre + out * dec, rel=1e-9)
    assert float(got.itl_s[0]) == pytest.approx(dec, rel=1e-9)  # the median step decodes only
    mixed = llm_metrics(hw, m, par, prec, inp, out, np.asarray([b]), eff)
    assert float(mixed.cycle_s[0]) < float(got.cycle_s[0])  # prompts riding in decode steps share weight reads


def test_pinned_batch_accepted_up_to_the_paged_limit_and_refused_beyond():
    from accelsim.errors import UserError
    from accelsim.predict import predict
    from accelsim.stacks import load_stack

    h100, m = load_chip("h100-sxm"), load_model("llama3-8b")
    plan = plan_llm(h100, m, Parallel(), Precision(), 400 + 397, output_len=397)
    kw = dict(chips=1, eff=load_stack("vllm"), dtype="bf16", input_len=400, output_len=397)
    r = predict(h100, m, batch=plan.max_batch_paged, **kw)  # beyond the full-context limit, still held
    assert r["batch"] == plan.max_batch_paged > plan.max_batch
    with pytest.raises(UserError, match="paged KV"):
        predict(h100, m, batch=plan.max_batch_paged + 1, **kw)
