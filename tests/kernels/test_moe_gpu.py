"""GPU checks: correctness at realistic shapes (bf16, fp8 w8a8), and, on any machine, that the kernel
compiles for real GPU targets with the launch configs the defaults produce.

The compile checks run Triton's CUDA compiler ahead of time (ptxas ships with the triton wheel, no
GPU needed), specialised the way a JIT launch is (unit strides constant, 16-divisible ints and
pointers): they catch code that the interpreter accepts but the compiler rejects, shared-memory
overflows, and a K-loop that is not software-pipelined.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from moe_helpers import assert_moe_close, rel_err, unit_inputs

from kernels.moe import default_config, fused_moe, reference, topk_route, triton_impl

REPO = Path(__file__).resolve().parents[2]
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
requires_compiled = pytest.mark.skipif(triton_impl.INTERPRETED, reason="kernels are interpreted (TRITON_INTERPRET=1)")


def _fp8_capable() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9)


# ------------------------------------------------------------------ ahead-of-time compile (CPU)

SMEM_LIMIT_BYTES = {80: 166912, 89: 101376, 90: 232448}  # max dynamic shared memory per block
# (arch, dtype, fuse, per_channel, M): the benchmark shapes' extremes at their default configs
COMPILE_CASES = [
    (90, torch.bfloat16, True, False, 1), (90, torch.bfloat16, True, False, 4096),
    (90, torch.bfloat16, False, False, 4096), (90, torch.float8_e4m3fn, True, False, 4096),
    (90, torch.float8_e4m3fn, False, True, 64), (89, torch.float8_e4m3fn, True, True, 4096),
    (80, torch.float16, True, False, 4096), (80, torch.float32, True, False, 512),
]


def _config(dtype: torch.dtype, m: int) -> dict:
    return default_config(m, 8, 7168, 4096, 2, dtype)  # Mixtral TP2


def _cfg(bm: int, bn: int, bk: int, g: int, w: int, s: int) -> dict:
    return dict(BLOCK_SIZE_M=bm, BLOCK_SIZE_N=bn, BLOCK_SIZE_K=bk, GROUP_SIZE_M=g, num_warps=w, num_stages=s)


# (arch, dtype, fuse, block-wise fp8, config): shipped-winner configs outside vLLM's space and the
# block-wise fp8 path, as H100/H200 files use them (vLLM's block_shape=[128,128] H200 winners at M <= 4
# use BLOCK_SIZE_M=8; SGLang's use BLOCK_SIZE_N=16)
SHIPPED_CASES = [
    (90, torch.float8_e4m3fn, True, True, _cfg(8, 64, 128, 1, 4, 3)),
    (90, torch.float8_e4m3fn, False, True, _cfg(64, 128, 128, 32, 4, 3)),
    (90, torch.bfloat16, True, False, _cfg(8, 16, 32, 2, 2, 1)),
]

@pytest.fixture(scope="module")
def compiled_cases() -> list[dict]:
    """All COMPILE_CASES compiled in one fresh process without the interpreter."""
    pytest.importorskip("triton.backends.nvidia")
    cases = [{"arch": a, "dtype": str(d).removeprefix("torch."), "fuse": f, "per_channel": p, "config": _config(d, m)}
             for a, d, f, p, m in COMPILE_CASES]
    cases += [{"arch": a, "dtype": str(d).removeprefix("torch."), "fuse": f, "per_channel": False, "block": b,
               "config": c} for a, d, f, b, c in SHIPPED_CASES]
    env = {**os.environ, "TRITON_INTERPRET": "0", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("moe_aot.py")), json.dumps(cases)],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("index", range(len(COMPILE_CASES)),
                         ids=[f"sm{a}-{str(d)[6:]}-{'gemm1' if f else 'gemm2'}{'-perchan' if p else ''}-M{m}"
                              for a, d, f, p, m in COMPILE_CASES])
def test_kernel_compiles_for_gpu_target(compiled_cases, index):
    arch, dtype, _, _, m = COMPILE_CASES[index]
    result, cfg = compiled_cases[index], _config(dtype, m)
    assert "error" not in result, result.get("error")
    assert result["cubin"]
    assert result["shared_bytes"] <= SMEM_LIMIT_BYTES[arch], f"{cfg} needs {result['shared_bytes']} B"
    assert result["pipelined"], f"K-loop not software-pipelined with {cfg}"


@pytest.mark.parametrize("index", range(len(SHIPPED_CASES)),
                         ids=[f"sm{a}-{str(d)[6:]}-{'gemm1' if f else 'gemm2'}{'-block' if b else ''}"
                              f"-M{c['BLOCK_SIZE_M']}N{c['BLOCK_SIZE_N']}" for a, d, f, b, c in SHIPPED_CASES])
def test_block_fp8_and_small_tiles_compile_for_gpu_target(compiled_cases, index):
    arch, _, _, _, cfg = SHIPPED_CASES[index]
    result = compiled_cases[len(COMPILE_CASES) + index]
    assert "error" not in result, result.get("error")
    assert result["cubin"] and result["shared_bytes"] <= SMEM_LIMIT_BYTES[arch]
    assert result["pipelined"] or cfg["num_stages"] == 1, f"K-loop not software-pipelined with {cfg}"


# ------------------------------------------------------------------ correctness on a GPU

REALISTIC = [  # (M, H, I, E, top_k, scoring, renormalize)
    pytest.param(1, 4096, 1792, 8, 2, "softmax", True, id="mixtral-M1"),
    pytest.param(37, 4096, 1792, 8, 2, "softmax", True, id="mixtral-M37"),
    pytest.param(512, 4096, 1792, 8, 2, "softmax", True, id="mixtral-M512"),
    pytest.param(300, 2048, 512, 256, 8, "sigmoid", True, id="deepseek-like-M300"),
    pytest.param(64, 5120, 2048, 16, 1, "sigmoid", False, id="scout-like-M64"),
]


@pytest.mark.gpu
@requires_cuda
@requires_compiled
@pytest.mark.parametrize("m,hidden,inter,experts,top_k,scoring,renormalize", REALISTIC)
def test_bf16_realistic_shapes(m, hidden, inter, experts, top_k, scoring, renormalize):
    x, w1, w2, logits = unit_inputs(m, hidden, inter, experts, torch.bfloat16, seed=m, device="cuda")
    out = fused_moe(x, w1, w2, logits, top_k, renormalize, scoring=scoring, impl="triton")
    ref = fused_moe(x, w1, w2, logits, top_k, renormalize, scoring=scoring, impl="reference")
    assert_moe_close(out, ref, torch.bfloat16, "bf16 GPU")


@pytest.mark.gpu
@requires_cuda
@requires_compiled
def test_bf16_shared_expert_llama4_style():
    x, w1, w2, logits = unit_inputs(100, 5120, 1024, 16, torch.bfloat16, seed=3, device="cuda")
    shared = ((torch.randn(2048, 5120, device="cuda") / 5120**0.5).bfloat16(),
              (torch.randn(5120, 1024, device="cuda") / 1024**0.5).bfloat16())
    kw = dict(scoring="sigmoid", shared_expert=shared)
    out = fused_moe(x, w1, w2, logits, 1, False, impl="triton", **kw)
    assert_moe_close(out, fused_moe(x, w1, w2, logits, 1, False, impl="reference", **kw), torch.bfloat16, "shared")


def quantize_weights(w: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """[E, N, K] -> (fp8 weights, scale [E, N] per channel or [E] per tensor)."""
    amax = w.float().abs().amax(dim=2) if per_channel else w.float().abs().amax(dim=(1, 2))
    scale = (amax / reference.FP8_MAX).clamp_min(1e-12)
    w_q = (w.float() / (scale[:, :, None] if per_channel else scale[:, None, None])).to(reference.FP8_DTYPE)
    return w_q, scale


@pytest.mark.gpu
@requires_cuda
@requires_compiled
@pytest.mark.skipif(not _fp8_capable(), reason="fp8 w8a8 needs compute capability >= 8.9")
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("static_a_scale", [False, True])
@pytest.mark.parametrize("m", [1, 200])
def test_fp8_w8a8_matches_emulation(per_channel, static_a_scale, m):
    x, w1, w2, logits = unit_inputs(m, 4096, 1792, 8, torch.bfloat16, seed=m + 1, device="cuda")
    w1_q, w1_s = quantize_weights(w1, per_channel)
    w2_q, w2_s = quantize_weights(w2, per_channel)
    a_scale = (x.float().abs().amax() / reference.FP8_MAX).reshape(1) if static_a_scale else None
    kw = dict(quant="fp8_w8a8", w1_scale=w1_s, w2_scale=w2_s, a_scale=a_scale)
    out = fused_moe(x, w1_q, w2_q, logits, 2, impl="triton", **kw)
    weights, ids = topk_route(logits, 2, True, "softmax")
    emulated = reference.fused_moe_fp8_ref(x, w1_q, w2_q, w1_s, w2_s, weights, ids, a_scale=a_scale)
    assert_moe_close(out, emulated, torch.float8_e4m3fn, "fp8 vs emulation")
    assert rel_err(out, fused_moe(x, w1, w2, logits, 2, impl="reference")) < 8e-2  # and near bf16


@pytest.mark.gpu
@requires_cuda
@pytest.mark.skipif(_fp8_capable(), reason="this GPU supports fp8")
def test_fp8_refused_below_sm89():
    from kernels.moe import MoEInputError

    x, w1, w2, logits = unit_inputs(4, 64, 32, 4, torch.bfloat16, device="cuda")
    with pytest.raises(MoEInputError, match=r"compute capability >= 8\.9"):
        fused_moe(x, w1.to(torch.float8_e4m3fn), w2.to(torch.float8_e4m3fn), logits, 2, quant="fp8_w8a8",
                  w1_scale=torch.ones(4, device="cuda"), w2_scale=torch.ones(4, device="cuda"))
