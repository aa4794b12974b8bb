"""vLLM-format export/import: exact file names and keys, round trip through the kernel's own loader."""

from __future__ import annotations

import json

import pytest

from accelsim.errors import UserError
from accelsim.tune.export import file_name, read_file, tuned_provider, write_file
from accelsim.tune.space import CONFIG_KEYS

CFG_1 = dict(zip(CONFIG_KEYS, (16, 64, 128, 64, 4, 4)))  # vLLM's tuned Mixtral TP2 H100 M=1 entry (§1.4)
CFG_1024 = dict(zip(CONFIG_KEYS, (128, 256, 64, 16, 8, 4)))


def test_file_names_follow_vllm() -> None:
    assert file_name(8, 7168, "NVIDIA H100 80GB HBM3", "bf16") == "E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json"
    assert file_name(8, 7168, "NVIDIA H100 80GB HBM3", "fp16") == "E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json"
    assert file_name(256, 256, "NVIDIA H200", "fp8") == "E=256,N=256,device_name=NVIDIA_H200,dtype=fp8_w8a8.json"
    assert file_name(16, 1024, "NVIDIA A100-SXM4-80GB", "fp32") == \
        "E=16,N=1024,device_name=NVIDIA_A100-SXM4-80GB,dtype=float32.json"


def test_round_trip_and_the_kernels_loader_reads_it(tmp_path) -> None:
    import torch

    from kernels.moe import load_tuned_config

    path = write_file(tmp_path, 8, 7168, "NVIDIA H100 80GB HBM3", "bf16", {1024: CFG_1024, 1: CFG_1},
                      triton_version="3.9.0")
    assert path.name == "E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json"
    raw = json.loads(path.read_text())
    assert list(raw) == ["triton_version", "1", "1024"]  # string batch-size keys, ascending
    assert all(list(raw[k]) == list(CONFIG_KEYS) for k in ("1", "1024"))
    parsed = read_file(path)
    assert (parsed.experts, parsed.n, parsed.device, parsed.dtype) == (8, 7168, "NVIDIA_H100_80GB_HBM3", None)
    assert parsed.table == {1: CFG_1, 1024: CFG_1024}
    # the kernel package's own loader (independent code) finds the same entries, nearest batch size
    for m, want in ((1, CFG_1), (2, CFG_1), (600, CFG_1024), (4096, CFG_1024)):
        assert load_tuned_config(8, 7168, "NVIDIA H100 80GB HBM3", torch.bfloat16, m, config_dir=tmp_path) == want
        assert parsed.nearest(m) == want


def test_partial_runs_add_to_an_existing_file(tmp_path) -> None:
    write_file(tmp_path, 8, 7168, "dev", "bf16", {1: CFG_1})
    path = write_file(tmp_path, 8, 7168, "dev", "bf16", {1024: CFG_1024})
    assert read_file(path).table == {1: CFG_1, 1024: CFG_1024}


def test_import_of_a_vllm_file_with_rocm_keys_and_priors_order(tmp_path) -> None:
    doc = {"triton_version": "3.4.0", "1": {**CFG_1, "waves_per_eu": 0}, "64": CFG_1024, "4096": CFG_1024}
    path = tmp_path / "E=8,N=7168,device_name=AMD_Instinct_MI300X.json"
    path.write_text(json.dumps(doc))
    f = read_file(path)
    assert f.table[1] == CFG_1 and f.device == "AMD_Instinct_MI300X"
    assert f.priors(50) == [CFG_1024, CFG_1]  # nearest batch size's config first, duplicates once


@pytest.mark.parametrize("name, content, match", [
    ("E=8,N=1,device=x.json", "{}", "not a fused-MoE config file name"),
    ("E=8,N=1,device_name=x.json", "[1, 2]", "JSON object"),
    ("E=8,N=1,device_name=x.json", '{"one": {}}', "batch size"),
    ("E=8,N=1,device_name=x.json", '{"1": {"BLOCK_SIZE_M": 16}}', "lacks"),
])
def test_bad_files_are_user_errors(tmp_path, name: str, content: str, match: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(UserError, match=match):
        read_file(tmp_path / name)


def test_provider_hook_makes_tuned_files_fused_moe_defaults(tmp_path) -> None:
    import torch

    from kernels.moe import resolve_config, use_config_provider

    write_file(tmp_path, 4, 64, "cpu", "fp16", {8: CFG_1})
    with use_config_provider(tuned_provider(tmp_path, "cpu")):
        assert resolve_config(8, 4, 64, 64, 2, torch.float16) == (CFG_1, "provider")
        assert resolve_config(8, 4, 128, 64, 2, torch.float16)[1] == "default"  # no file for N=128
    assert resolve_config(8, 4, 64, 64, 2, torch.float16)[1] == "default"  # hook removed on exit
