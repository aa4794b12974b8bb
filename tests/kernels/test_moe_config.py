"""Launch configs: heuristic defaults, vLLM-format tuned files, and the provider hook."""

from __future__ import annotations

import json

import pytest
import torch
from moe_helpers import TRITON_DEVICE, unit_inputs

from kernels.moe import (
    CONFIG_KEYS,
    MoEInputError,
    default_config,
    fused_moe,
    get_config_provider,
    load_tuned_config,
    resolve_config,
    set_config_provider,
    triton_impl,
    use_config_provider,
    validate_config,
)
from kernels.moe import config as config_mod

SHAPES = [(8, 7168, 4096, 2), (16, 8192, 5120, 1), (128, 8192, 5120, 1), (256, 2048, 7168, 8), (4, 16, 32, 2)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float8_e4m3fn])
@pytest.mark.parametrize("experts,inter,hidden,top_k", SHAPES)
def test_default_config_is_always_valid(experts, inter, hidden, top_k, dtype):
    for m in (1, 7, 64, 512, 4096):
        cfg = default_config(m, experts, inter, hidden, top_k, dtype)
        assert validate_config(cfg) == cfg


def test_default_block_m_follows_tokens_per_expert():
    sizes = [default_config(m, 8, 7168, 4096, 2, torch.bfloat16)["BLOCK_SIZE_M"] for m in (1, 64, 128, 512, 4096)]
    assert sizes == sorted(sizes) and sizes[0] == 16 and sizes[-1] == 128
    assert default_config(4096, 256, 2048, 7168, 8, torch.bfloat16)["BLOCK_SIZE_M"] == 128
    assert default_config(64, 256, 2048, 7168, 8, torch.bfloat16)["BLOCK_SIZE_M"] == 16


def write_file(tmp_path, name, table):
    (tmp_path / name).write_text(json.dumps(table))


def test_load_tuned_config_nearest_batch_size(tmp_path):
    table = {"1": {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 64,
                   "num_warps": 4, "num_stages": 4},
             "64": {"BLOCK_SIZE_M": 64, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 1,
                    "num_warps": 4, "num_stages": 4},
             "triton_version": "3.9.0"}
    write_file(tmp_path, "E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json", table)
    get = lambda m: load_tuned_config(8, 7168, "NVIDIA H100 80GB HBM3", torch.bfloat16, m, config_dir=tmp_path)
    assert get(1)["BLOCK_SIZE_M"] == 16
    assert get(30)["BLOCK_SIZE_M"] == 16  # |30-1| < |30-64|
    assert get(40)["BLOCK_SIZE_M"] == 64
    assert get(4096) == table["64"]
    assert load_tuned_config(8, 7168, "NVIDIA H100 80GB HBM3", "fp8_w8a8", 1, config_dir=tmp_path) is None
    assert load_tuned_config(16, 7168, "NVIDIA H100 80GB HBM3", None, 1, config_dir=tmp_path) is None


def test_load_tuned_config_dtype_in_file_name(tmp_path):
    cfg = dict(zip(CONFIG_KEYS, (32, 64, 64, 8, 4, 3)))
    write_file(tmp_path, "E=16,N=8192,device_name=NVIDIA_H200,dtype=fp8_w8a8.json", {"8": cfg})
    write_file(tmp_path, "E=16,N=8192,device_name=NVIDIA_H200,dtype=float32.json", {"8": {**cfg, "num_stages": 2}})
    assert load_tuned_config(16, 8192, "NVIDIA_H200", torch.float8_e4m3fn, 8, tmp_path) == cfg
    assert load_tuned_config(16, 8192, "NVIDIA_H200", torch.float32, 8, tmp_path)["num_stages"] == 2


def test_load_tuned_config_bad_key_is_reported(tmp_path):
    write_file(tmp_path, "E=2,N=8,device_name=X.json", {"one": {}})
    with pytest.raises(ValueError, match="keys must be batch sizes"):
        load_tuned_config(2, 8, "X", None, 1, config_dir=tmp_path)


def test_resolve_falls_back_to_default_on_cpu():
    cfg, source = resolve_config(5, 4, 16, 32, 2, torch.float16, torch.device("cpu"))
    assert source == "default" and cfg == default_config(5, 4, 16, 32, 2, torch.float16)


def test_provider_is_called_scoped_and_restored():
    calls = []
    chosen = dict(zip(CONFIG_KEYS, (16, 32, 16, 1, 4, 2)))

    def provider(m, e, n, k, top_k, dtype):
        calls.append((m, e, n, k, top_k, dtype))
        return chosen if m < 100 else None

    assert get_config_provider() is None
    with use_config_provider(provider):
        assert resolve_config(5, 4, 16, 32, 2, torch.float16) == (chosen, "provider")
        assert resolve_config(500, 4, 16, 32, 2, torch.float16)[1] == "default"  # provider declined
    assert get_config_provider() is None
    assert calls == [(5, 4, 16, 32, 2, torch.float16), (500, 4, 16, 32, 2, torch.float16)]
    previous = set_config_provider(provider)
    try:
        assert previous is None and get_config_provider() is provider
    finally:
        set_config_provider(previous)


def test_provider_config_reaches_the_kernel_and_explicit_config_wins(monkeypatch):
    seen = []
    real = triton_impl.fused_moe_triton
    monkeypatch.setattr(triton_impl, "fused_moe_triton", lambda *a, **kw: seen.append(a[5]) or real(*a, **kw))
    x, w1, w2, logits = unit_inputs(4, 16, 16, 4, torch.float16, device=TRITON_DEVICE)
    from_provider = dict(zip(CONFIG_KEYS, (32, 64, 32, 2, 4, 2)))
    explicit = dict(zip(CONFIG_KEYS, (16, 32, 16, 1, 4, 2)))
    with use_config_provider(lambda *args: from_provider):
        fused_moe(x, w1, w2, logits, 2, impl="triton")
        fused_moe(x, w1, w2, logits, 2, impl="triton", config=explicit)
    assert seen == [from_provider, explicit]


def test_bad_provider_config_is_named():
    x, w1, w2, logits = unit_inputs(4, 16, 16, 4, torch.float16, device=TRITON_DEVICE)
    with use_config_provider(lambda *args: {"BLOCK_SIZE_M": 16}), \
            pytest.raises(MoEInputError, match="config from provider is missing keys"):
        fused_moe(x, w1, w2, logits, 2, impl="triton")


def test_config_dir_exists_with_readme():
    assert (config_mod.CONFIG_DIR / "README.md").is_file()
