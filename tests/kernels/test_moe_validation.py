"""Every rejection path raises MoEInputError (a ValueError) with a one-line message naming the problem."""

from __future__ import annotations

import pytest
import torch

from kernels.moe import MoEInputError, fused_moe, moe_align_block_size, topk_route, validate_config

E, H, INTER, M = 4, 16, 8, 3
GOOD_CONFIG = {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 32, "BLOCK_SIZE_K": 16, "GROUP_SIZE_M": 1,
               "num_warps": 4, "num_stages": 2}


def inputs(dtype=torch.float32):
    return {"hidden_states": torch.randn(M, H, dtype=dtype), "w1": torch.randn(E, 2 * INTER, H, dtype=dtype),
            "w2": torch.randn(E, H, INTER, dtype=dtype), "router_logits": torch.randn(M, E), "top_k": 2}


def fp8_inputs():
    kw = inputs(torch.bfloat16)
    kw.update(w1=kw["w1"].to(torch.float8_e4m3fn), w2=kw["w2"].to(torch.float8_e4m3fn), quant="fp8_w8a8",
              w1_scale=torch.ones(E), w2_scale=torch.ones(E, H))
    return kw


def rejects(match: str, **overrides):
    kw = inputs()
    kw.update(overrides)
    with pytest.raises(MoEInputError, match=match) as info:
        fused_moe(**kw, impl="reference")
    assert "\n" not in str(info.value)


CASES = {
    "x 1-D": ({"hidden_states": torch.randn(H)}, "hidden_states must be a 2-D"),
    "x int": ({"hidden_states": torch.ones(M, H, dtype=torch.int32)}, "hidden_states dtype"),
    "w1 2-D": ({"w1": torch.randn(2 * INTER, H)}, "w1 must be 3-D"),
    "w1 odd rows": ({"w1": torch.randn(E, 2 * INTER + 1, H)}, "positive even"),
    "w1 hidden": ({"w1": torch.randn(E, 2 * INTER, H + 1)}, r"w1 must be \[E, 2\*I, H=16\]"),
    "w2 shape": ({"w2": torch.randn(E, H, INTER + 1)}, r"w2 must be \[E, H, I\]"),
    "w2 experts": ({"w2": torch.randn(E + 1, H, INTER)}, r"w2 must be \[E, H, I\]"),
    "logits shape": ({"router_logits": torch.randn(M, E + 1)}, r"router_logits must be \[M, E\]"),
    "logits rows": ({"router_logits": torch.randn(M + 1, E)}, r"router_logits must be \[M, E\]"),
    "logits int": ({"router_logits": torch.ones(M, E, dtype=torch.int64)}, "router_logits must be floating"),
    "w1 dtype": ({"w1": torch.randn(E, 2 * INTER, H, dtype=torch.float16)}, "w1 dtype torch.float16 differs"),
    "w2 fp8 without quant": ({"w2": torch.randn(E, H, INTER).to(torch.float8_e4m3fn)}, "pass quant='fp8_w8a8'"),
    "top_k > E": ({"top_k": E + 1}, r"top_k must be an int in \[1, E=4\]"),
    "top_k 0": ({"top_k": 0}, "top_k must be"),
    "top_k float": ({"top_k": 2.0}, "top_k must be"),
    "renormalize str": ({"renormalize": "yes"}, "renormalize must be a bool"),
    "scoring": ({"scoring": "relu"}, "scoring must be one of"),
    "quant mode": ({"quant": "int4"}, "quant must be None or one of"),
    "scale without quant": ({"w1_scale": torch.ones(E)}, "only used with quant='fp8_w8a8'"),
    "shared not tuple": ({"shared_expert": torch.randn(2 * INTER, H)}, "shared_expert must be None or a tuple"),
    "shared shape": ({"shared_expert": (torch.randn(2 * INTER, H), torch.randn(H, INTER + 1))}, "shared_expert shapes"),
    "shared dtype": ({"shared_expert": (torch.randn(2 * INTER, H).half(), torch.randn(H, INTER).half())},
                     "shared_expert weights must have"),
}


@pytest.mark.parametrize("overrides,match", CASES.values(), ids=CASES.keys())
def test_fused_moe_rejects(overrides, match):
    rejects(match, **overrides)


def test_device_mismatch_is_named():
    meta = torch.randn(E, H, INTER, device="meta")
    rejects("w2 is on meta but hidden_states is on cpu", w2=meta)


def test_bad_impl():
    kw = inputs()
    with pytest.raises(MoEInputError, match="impl must be one of"):
        fused_moe(**kw, impl="cuda")


def test_error_is_a_value_error():
    assert issubclass(MoEInputError, ValueError)


CONFIG_CASES = {
    "not a dict": ([16, 32, 16, 1, 4, 2], "must be a dict"),
    "missing key": ({k: v for k, v in GOOD_CONFIG.items() if k != "num_stages"}, r"missing keys \['num_stages'\]"),
    "unknown key": ({**GOOD_CONFIG, "SPLIT_K": 1}, r"unknown keys \['SPLIT_K'\]"),
    "zero block": ({**GOOD_CONFIG, "BLOCK_SIZE_M": 0}, r"\['BLOCK_SIZE_M'\] must be a positive int"),
    "negative block": ({**GOOD_CONFIG, "BLOCK_SIZE_K": -16}, r"\['BLOCK_SIZE_K'\] must be a positive int"),
    "not pow2": ({**GOOD_CONFIG, "BLOCK_SIZE_N": 48}, "must be a power of two"),
    "too small": ({**GOOD_CONFIG, "BLOCK_SIZE_N": 8}, r"\['BLOCK_SIZE_N'\] must be >= 16"),
    "float": ({**GOOD_CONFIG, "num_warps": 4.0}, "must be a positive int"),
    "bool": ({**GOOD_CONFIG, "GROUP_SIZE_M": True}, "must be a positive int"),
}


@pytest.mark.parametrize("config,match", CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_config_rejected(config, match):
    with pytest.raises(MoEInputError, match=match):
        fused_moe(**inputs(), config=config, impl="reference")


def test_good_config_accepted():
    assert validate_config(GOOD_CONFIG) == GOOD_CONFIG


@pytest.mark.parametrize("overrides,match", [
    ({"quant": "fp8_w8a8", "hidden_states": torch.randn(M, H)}, "needs float16 or bfloat16 hidden_states"),
    ({"w1_scale": None}, r"needs w1_scale \(\[E\] per tensor"),
    ({"w2_scale": torch.ones(E, H + 1)}, r"w2_scale must be \[E=4\] per tensor or \[E, 16\] per channel"),
    ({"w1_scale": torch.ones(E + 1)}, "w1_scale must be"),
    ({"w1": torch.randn(E, 2 * INTER, H, dtype=torch.bfloat16)}, "needs w1 in torch.float8_e4m3fn"),
    ({"a_scale": torch.ones(2)}, "a_scale must hold one per-tensor scale"),
    ({}, "needs a CUDA device with compute capability >= 8.9, got cpu"),
])
def test_fp8_rejections(overrides, match):
    kw = fp8_inputs()
    kw.update(overrides)
    with pytest.raises(MoEInputError, match=match):
        fused_moe(**kw, impl="reference")


def test_topk_route_rejects():
    with pytest.raises(MoEInputError, match=r"top_k must be an int in \[1, E=3\]"):
        topk_route(torch.randn(2, 3), 4)
    with pytest.raises(MoEInputError, match="2-D"):
        topk_route(torch.randn(3), 1)
    with pytest.raises(MoEInputError, match="scoring"):
        topk_route(torch.randn(2, 3), 1, scoring="tanh")


@pytest.mark.parametrize("args,match", [
    ((torch.zeros(2, 2, dtype=torch.int32), 0, 4), "block_size must be a positive int"),
    ((torch.zeros(2, 2, dtype=torch.int32), -4, 4), "block_size must be a positive int"),
    ((torch.zeros(2, 2, dtype=torch.int32), 16, 0), "num_experts must be a positive int"),
    ((torch.zeros(2, 2), 16, 4), "topk_ids must be an integer tensor"),
    ((torch.zeros(4, dtype=torch.int32), 16, 4), "topk_ids must be a 2-D"),
])
def test_align_rejects(args, match):
    with pytest.raises(MoEInputError, match=match):
        moe_align_block_size(*args)


def test_triton_on_cpu_without_interpreter_is_refused(monkeypatch):
    from kernels.moe import triton_impl

    monkeypatch.setattr(triton_impl, "INTERPRETED", False)
    with pytest.raises(MoEInputError, match="needs TRITON_INTERPRET=1"):
        fused_moe(**inputs(), impl="triton")
