"""Serving modes against independent answers: speculative decoding against a Monte Carlo of the
acceptance chain and the closed form; prefix hits against the causal-attention integral; attention
DP + wide EP against conservation of tokens, FLOPs and bytes."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim import ops as O
from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision, llm_ops
from accelsim.memory import kv_bytes_per_seq, llm_weight_bytes_per_chip, plan_llm
from accelsim.modes import (
    Modes,
    SpecDecode,
    decode_step,
    expected_tokens_per_step,
    parse_spec_decode,
    prefill_shape,
    spec_decode_speedup,
    vision_encoder,
    vision_ops,
)
from accelsim.perf import HwVec, Roofline
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack

PREC = Precision.for_serving("fp8")


def _flops(ops: list[O.Op], kinds: tuple[O.OpKind, ...]) -> float:
    return float(sum(np.sum(o.calls * o.flops) for o in ops if o.kind in kinds))


def _s(x: object) -> float:
    return float(np.asarray(x).ravel()[0])


GEMMS = (O.OpKind.GEMM, O.OpKind.GROUPED_GEMM)
ATTN = (O.OpKind.ATTN_PREFILL, O.OpKind.ATTN_DECODE)


@pytest.mark.parametrize(("a", "k"), [(0.6, 3), (0.8, 5), (0.3, 1)])
def test_tokens_per_step_matches_a_monte_carlo_of_the_acceptance_chain(a: float, k: int) -> None:
    rng = np.random.default_rng(0)
    accepted = rng.random((200_000, k)) < a
    run = np.argmin(np.concatenate([accepted, np.zeros((len(accepted), 1), bool)], axis=1), axis=1)
    assert float(expected_tokens_per_step(a, k)) == pytest.approx(np.mean(run + 1), rel=5e-3)


@pytest.mark.parametrize("spec", ["mtp=2,accept=0.7", "draft=llama3-8b,k=4,accept=0.75"])
def test_spec_decode_speedup_meets_the_closed_form_when_decode_is_memory_bound(spec: str) -> None:
    model = load_model("llama3-70b")
    hw = HwVec.from_chips([load_chip("h100-sxm")])
    par, eff, s = Parallel(tp=8), Roofline(), parse_spec_decode(spec)
    plain = decode_step(hw, model, par, PREC, 1.0, 2000.0, eff)
    sd = decode_step(hw, model, par, PREC, 1.0, 2000.0, eff, Modes(spec=s))
    speedup = _s(plain.cost.total_s) * sd.tokens_per_seq / _s(sd.cost.total_s)
    assert sd.draft_cost_ratio is not None and 0 < sd.draft_cost_ratio < 1
    assert speedup == pytest.approx(spec_decode_speedup(s.accept, s.k, sd.draft_cost_ratio), rel=0.02)
    # at a large batch verification is compute bound: k + 1 rows cost more than one, so less gain
    big_p = decode_step(hw, model, par, PREC, 1024.0, 2000.0, eff)
    big = decode_step(hw, model, par, PREC, 1024.0, 2000.0, eff, Modes(spec=s))
    big_speedup = _s(big_p.cost.total_s) * big.tokens_per_seq / _s(big.cost.total_s)
    assert big_speedup < spec_decode_speedup(s.accept, s.k, big.draft_cost_ratio or 0.0) * 0.9


def test_spec_decode_closed_form_limits() -> None:
    assert spec_decode_speedup(0.0, 4, 0.0) == pytest.approx(1.0)  # nothing accepted, free drafts
    assert spec_decode_speedup(1.0, 4, 0.0) == pytest.approx(5.0)  # everything accepted
    assert spec_decode_speedup(0.999999, 4, 0.1) == pytest.approx(5 / 1.4, rel=1e-4)


@pytest.mark.parametrize("h", [0.25, 0.5, 0.9])
def test_prefix_hit_removes_h_of_linear_flops_and_h2_of_causal_attention(h: float) -> None:
    model, par, L = load_model("llama3-8b"), Parallel(tp=1), 4000
    full = llm_ops(model, par, PREC, "prefill", float(L), L / 2, prefill_sequences=1.0)
    new, ctx = prefill_shape(L, h)
    hit = llm_ops(model, par, PREC, "prefill", new, ctx, prefill_sequences=1.0)
    lm = lambda ops: [o for o in ops if o.name != "lm_head"]
    assert _flops(lm(hit), GEMMS) == pytest.approx((1 - h) * _flops(lm(full), GEMMS), rel=1e-12)
    # causal attention: new positions hL..L each attend to all before them; integral (1 - h^2) L^2 / 2
    assert _flops(hit, ATTN) == pytest.approx((1 - h * h) * _flops(full, ATTN), rel=1e-12)


def test_wide_ep_with_attention_dp_conserves_tokens_flops_and_memory() -> None:
    model = load_model("llama4-maverick")
    m = model.moe
    assert m is not None
    t, ctx = 512.0, 3000.0
    one = llm_ops(model, Parallel(), PREC, "decode", t, ctx)
    wide = Parallel(tp=1, ep=8, dp=8)
    wide.validate(model)
    per_chip = llm_ops(model, wide, PREC, "decode", t, ctx)
    # attention, dense FFN, shared expert and LM head: the 8 DP groups split the tokens, nothing repeated
    not_routed = lambda ops: [o for o in ops if o.kind is not O.OpKind.GROUPED_GEMM]
    assert 8 * _flops(not_routed(per_chip), GEMMS + ATTN) == pytest.approx(
        _flops(not_routed(one), GEMMS + ATTN), rel=1e-12)
    # routed experts: each chip gets the same rows as with experts spread over an 8-way TP group
    tp8 = llm_ops(model, Parallel(tp=8, ep=8), PREC, "decode", t, ctx)
    routed = lambda ops: [o for o in ops if o.kind is O.OpKind.GROUPED_GEMM]
    assert _flops(routed(per_chip), GEMMS) == pytest.approx(_flops(routed(tp8), GEMMS), rel=1e-12)
    # weights: experts once over the 8 chips, the rest once per DP group (counted from the architecture)
    experts = model.num_moe_layers * m.num_experts * 3 * model.hidden_size * m.expert_intermediate_size
    rest = model.total_params - experts
    assert 8 * llm_weight_bytes_per_chip(model, wide, PREC) == pytest.approx(
        (8 * rest + experts) * PREC.w_bytes, rel=1e-12)
    # KV: a DP group holds whole sequences, so the replica holds 8 x what one chip holds
    chip = load_chip("b200")
    plan = plan_llm(chip, model, wide, PREC, 2000)
    per_seq = float(kv_bytes_per_seq(model, Parallel(), PREC, 2000))
    assert plan.kv_bytes_per_seq == pytest.approx(per_seq)
    assert plan.max_batch == 8 * int(plan.free_for_kv_bytes // per_seq)


def test_wide_ep_layout_rules() -> None:
    model = load_model("llama4-maverick")
    with pytest.raises(UserError, match="--attention-dp"):
        Parallel(tp=2, ep=8).validate(model)
    with pytest.raises(UserError, match="tp x dp"):
        Parallel(tp=1, ep=4, dp=8).validate(model)
    assert Parallel(tp=2, ep=16, dp=8).chips == 16


def test_image_tokens_add_the_vision_encoder_and_lengthen_the_prompt() -> None:
    model = load_model("llama4-scout")
    enc = vision_encoder(model)
    assert enc is not None and enc.tokens_per_tile == 144  # (336 / 14)^2 / 4
    ops = vision_ops(model, PREC, 1, 1.0, 144)
    # one tile: ViT linear FLOPs are 2 x params x tokens (577 tokens through 34 blocks of 4 d^2 + 2 d I)
    d, i = enc.hidden_size, enc.intermediate_size
    vit = [o for o in ops if o.name in ("vit_qkv", "vit_o", "vit_mlp_up", "vit_mlp_down")]
    assert _flops(vit, GEMMS) == pytest.approx(2 * 577 * 34 * (4 * d * d + 2 * d * i), rel=1e-12)
    assert Modes(image_tokens=144).prompt_len(1000) == 1144
    with pytest.raises(UserError, match="vision encoder"):
        Modes(image_tokens=144).validate(load_model("llama3-8b"))


@pytest.mark.parametrize("text", ["mtp=3", "draft=x,mtp=2,accept=0.5", "mtp=two,accept=0.5", "mtp=3,accept=1.5",
                                  "draft=llama3-8b,accept=0.5", "k=3,accept=0.5"])
def test_bad_spec_decode_is_one_user_error(text: str) -> None:
    with pytest.raises(UserError, match="--spec-decode"):
        parse_spec_decode(text)


def test_spec_decode_parses() -> None:
    assert parse_spec_decode("mtp=3,accept=0.7") == SpecDecode("mtp", 3, 0.7)
    assert parse_spec_decode("draft=llama3-8b,k=4,accept=0.6") == SpecDecode("draft", 4, 0.6, "llama3-8b")


def test_a_draft_models_weights_take_kv_memory() -> None:
    from accelsim.modes import draft_weight_bytes_per_chip
    from accelsim.search import Query, best

    chip, model, eff = load_chip("h100-sxm"), load_model("llama3-70b"), load_stack()
    spec = parse_spec_decode("draft=llama3-8b,k=4,accept=0.7")
    par = Parallel(tp=4)
    extra = draft_weight_bytes_per_chip(spec, par, PREC)
    assert extra == pytest.approx(load_model("llama3-8b").total_params * PREC.w_bytes / 4)
    plain = plan_llm(chip, model, par, PREC, 2000, output_len=1000)
    with_draft = plan_llm(chip, model, par, PREC, 2000, output_len=1000, extra_weight_bytes=extra)
    assert with_draft.weight_bytes - plain.weight_bytes == pytest.approx(extra)
    assert with_draft.max_batch < plain.max_batch
    r = best(chip, Query(model, eff, "fp8", modes=Modes(spec=spec)), layout=par)
    assert r.memory.weight_bytes == pytest.approx(with_draft.weight_bytes)
