"""Shipped config files as vLLM and SGLang write them: every name form parses and round-trips, the
loader keeps what it does not use, `tune --check-configs` reports each file, and pruning keeps every
shipped winner (fixtures: tests/tune/fixtures/shipped_configs, see PROVENANCE.md there)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from accelsim.cli import main
from accelsim.errors import UserError
from accelsim.tune.export import check_file, config_files, nearest_file, read_dir, read_file, write_file
from accelsim.tune.names import ConfigName, file_name, parse_name, vllm_device_name

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "shipped_configs"
VLLM = FIXTURES / "vllm-0.33.0"
SGLANG = sorted((FIXTURES / "sglang-0.5.23").glob("triton_*"))

# (name, style, expected fields) for every form found in the 728 shipped files
NAMES = [
    ("E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json", "vllm", dict(device="NVIDIA_H100_80GB_HBM3")),
    ("E=64,N=640,device_name=NVIDIA_H100_80GB_HBM3,dtype=fp8_w8a8.json", "vllm", dict(dtype="fp8_w8a8")),
    ("E=256,N=256,device_name=NVIDIA_H200,dtype=fp8_w8a8,block_shape=[128,128].json", "vllm",
     dict(block_shape=(128, 128))),
    ("E=257,N=256,device_name=NVIDIA_H200,dtype=fp8_w8a8,block_shape=[128, 128]_down.json", "sglang",
     dict(block_shape=(128, 128), down=True)),
    ("E=161,N=192,device_name=NVIDIA_H200,dtype=fp8_w8a8,per_channel_quant=True.json", "sglang",
     dict(per_channel_quant=True)),
    ("E=384,N=256,device_name=AMD_Instinct_MI350X,dtype=int4_w4a16,backend=flydsl.json", "vllm",
     dict(backend="flydsl", dtype="int4_w4a16")),
    ("E=384,N=128,device_name=,dtype=int4_w4a16_down.json", "sglang", dict(device="", down=True)),
    ("E=128,N=704,device_name=NVIDIA_B300_SXM6_AC_down.json", "sglang", dict(device="NVIDIA_B300_SXM6_AC", down=True)),
    ("E=256,N=1024,device_name=AMD_Instinct_MI325X,block_shape=[128,128].json", "vllm", dict(dtype=None)),
    ("E=128,N=384,device_name=Intel(R)_Arc(TM)_Pro_B70_Graphics.json", "vllm",
     dict(device="Intel(R)_Arc(TM)_Pro_B70_Graphics")),
]


@pytest.mark.parametrize("name, style, fields", NAMES, ids=[n for n, _, _ in NAMES])
def test_every_shipped_name_form_parses_and_round_trips(name: str, style: str, fields: dict) -> None:
    parsed = parse_name(name)
    for key, value in fields.items():
        assert getattr(parsed, key) == value, key
    assert parsed.format(style) == name


def test_down_files_are_the_second_gemm_not_a_device() -> None:
    f = read_file(next(p for p in SGLANG[1].iterdir() if p.name.startswith("E=257")))
    assert f.device == "NVIDIA_H200" and f.name.down and f.name.gemm == 2
    assert f.name.accel_dtype == "fp8_block"
    assert parse_name("E=8,N=7168,device_name=NVIDIA_H200.json").gemm == 1


def test_vllm_device_normalisation_and_export_names() -> None:
    assert vllm_device_name("NVIDIA H100 80GB HBM3") == "NVIDIA_H100_80GB_HBM3"
    assert vllm_device_name("NVIDIA H200 NVL") == "NVIDIA_H200"  # the H200 family shares one file
    assert vllm_device_name("NVIDIA  A100/SXM4\t80GB") == "NVIDIA_A100_SXM4_80GB"
    assert vllm_device_name("NVIDIA H200X") == "NVIDIA_H200X"  # 'H200' must be a whole word
    assert file_name(256, 256, "NVIDIA H200 NVL", "fp8_block") == \
        "E=256,N=256,device_name=NVIDIA_H200,dtype=fp8_w8a8,block_shape=[128,128].json"
    assert file_name(8, 7168, "NVIDIA H100 80GB HBM3", "bf16") == "E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json"


def test_kernel_loader_names_files_as_the_tuner_does() -> None:
    from kernels.moe.config import device_file_name

    for torch_name in ("NVIDIA H100 80GB HBM3", "NVIDIA H200 NVL", "NVIDIA A100-SXM4-80GB", "AMD Instinct MI300X/x",
                       "NVIDIA  GB200\t", "NVIDIA H200X"):
        assert device_file_name(torch_name) == vllm_device_name(torch_name)


def test_unknown_keys_are_kept_and_reported_and_missing_launch_keys_defaulted() -> None:
    l40s = read_file(VLLM / "E=8,N=3584,device_name=NVIDIA_L40S.json")
    assert l40s.unknown_keys == ["num_ctas"] and l40s.extras[1] == {"num_ctas": 1}
    assert l40s.table[512]["num_stages"] == 8 and l40s.table[256]["num_warps"] == 16
    rocm = check_file(VLLM / "E=8,N=7168,device_name=AMD_Instinct_MI300X.json")
    assert rocm["ok"] and "ROCm keys kept" in rocm["reason"] and "waves_per_eu" in rocm["unknown_keys"]
    b300 = read_file(SGLANG[2] / "E=128,N=704,device_name=NVIDIA_B300_SXM6_AC_down.json")
    assert "USE_TMA" in b300.unknown_keys and b300.defaulted  # entries without num_warps / num_stages
    m = b300.defaulted[0]
    assert (b300.table[m]["num_warps"], b300.table[m]["num_stages"]) == (4, 3)  # Triton's launch defaults


def test_another_kernels_table_is_rejected_with_a_reason() -> None:
    row = check_file(VLLM / "E=384,N=256,device_name=AMD_Instinct_MI350X,dtype=int4_w4a16,backend=flydsl.json")
    assert not row["ok"] and row["backend"] == "flydsl" and "tile_m" in row["reason"]
    assert "\n" not in row["reason"]


def test_check_configs_cli_json_and_exit_codes(capsys) -> None:
    assert main(["tune", "--check-configs", str(VLLM), "--json"]) == 1  # the flydsl table is rejected
    files = json.loads(capsys.readouterr().out)["files"]
    assert len(files) == len(config_files(VLLM)) == 6
    assert all({"file", "ok", "reason", "device", "dtype", "E", "N", "batch_sizes"} <= set(f) for f in files)
    h100 = next(f for f in files if f["file"] == "E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json")
    assert h100["ok"] and h100["E"] == 8 and h100["N"] == 7168 and h100["dtype"] == "default" and \
        h100["batch_sizes"][0] == 1
    for folder in SGLANG:
        assert main(["tune", "--check-configs", str(folder)]) == 0
        assert "rejected" in capsys.readouterr().out
    assert main(["tune", "--check-configs", str(FIXTURES / "nowhere")]) == 2


def test_bad_files_give_one_line_reasons(tmp_path) -> None:
    cases = {"E=8,N=1,device_name=x.json": ('{"1": {"BLOCK_SIZE_M": 0, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 64, '
                                            '"GROUP_SIZE_M": 1}}', "not a positive integer"),
             "E=8,N=2,device_name=x.json": ("{not json", "cannot read JSON"),
             "E=8,N=3,device_name=x.json": ("{}", "no batch-size entries")}
    for name, (text, match) in cases.items():
        (tmp_path / name).write_text(text)
        row = check_file(tmp_path / name)
        assert not row["ok"] and match in row["reason"] and "\n" not in row["reason"]
    with pytest.raises(UserError, match="not a fused-MoE config file name"):
        parse_name("E=8,device_name=x.json")


def test_export_round_trips_through_the_loader(tmp_path) -> None:
    cfg = {"BLOCK_SIZE_M": 8, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 1, "num_warps": 4,
           "num_stages": 3}
    path = write_file(tmp_path, 256, 256, "NVIDIA H200 NVL", "fp8_block", {1: cfg})
    assert path.name == "E=256,N=256,device_name=NVIDIA_H200,dtype=fp8_w8a8,block_shape=[128,128].json"
    back = read_file(path)
    assert back.table == {1: cfg} and back.name == ConfigName(256, 256, "NVIDIA_H200", "fp8_w8a8", (128, 128))


def test_prior_vllm_picks_the_nearest_file_for_device_dtype_and_shape() -> None:
    got = nearest_file(VLLM, "NVIDIA H100 80GB HBM3", 8, 8192, "bf16")
    assert got is not None and (got.experts, got.n, got.dtype) == (8, 7168, None)
    fp8 = nearest_file(VLLM, "h100-sxm", 64, 512, "fp8")
    assert fp8 is not None and (fp8.experts, fp8.n) == (64, 640)
    assert nearest_file(VLLM, "NVIDIA H200", 256, 256, "fp8_block").n == 256
    assert nearest_file(VLLM, "NVIDIA B200", 8, 7168, "bf16") is None


def test_pruning_keeps_every_shipped_winner_or_its_equivalent() -> None:
    """Every fixture winner usable as a label (known device, kernel-supported dtype, not _down) has its
    launch-equivalent config in the pruned tuning space, including vLLM's BLOCK_SIZE_M=64 fp8 winners
    at M <= 16 and BLOCK_SIZE_M=8 block-fp8 winners."""
    from accelsim.tune.labels import case_space, cases

    labels = cases([(VLLM, "vllm 0.33.0")] + [(d, f"sglang 0.5.23 {d.name}") for d in SGLANG])
    assert len(labels.cases) >= 60
    assert {c.problem.dtype for c in labels.cases} >= {"bf16", "fp8", "fp8_block"}
    assert any(c.winner["BLOCK_SIZE_M"] == 8 for c in labels.cases)
    assert any(c.winner["BLOCK_SIZE_M"] == 64 and c.problem.m <= 16 and c.problem.dtype == "fp8" for c in labels.cases)
    missing = [(c.file, c.problem.m) for c in labels.cases if case_space(c)[1] < 0]
    assert missing == []
    assert labels.skipped["_down file"] > 0 and labels.skipped["no device limits"] > 0


def test_a_prior_with_a_non_canonical_group_size_is_mapped_not_dropped() -> None:
    """vLLM's own H100 fp8 file as a prior: at M=1 its GROUP_SIZE_M=64 config launches like the
    smallest kept value >= the number of M-blocks, and is proposed as that config."""
    from accelsim.tune.jobs import map_priors
    from accelsim.tune.space import DEVICE_LIMITS, Problem, canonical, m_blocks_launched, prune, tune_space

    f = read_file(VLLM / "E=8,N=7168,device_name=NVIDIA_H100_80GB_HBM3.json")
    problem = Problem(8, 4096, 7168, 2, "bf16", 1)
    candidates, _ = prune(tune_space(), problem, DEVICE_LIMITS["h100-sxm"])
    keys = {tuple(c.values()) for c in candidates}
    raw = f.priors(1)
    assert any(tuple(c.values()) not in keys for c in raw)  # some priors are not candidates as written
    mapped = map_priors(raw, problem, candidates)
    assert mapped and all(tuple(c.values()) in keys for c in mapped)
    first = raw[0]
    # M=1, top_k=2: 2 M-blocks for any BLOCK_SIZE_M; vLLM's GROUP_SIZE_M=64 launches like 2
    assert first["GROUP_SIZE_M"] == 64
    assert int(m_blocks_launched(problem, np.array([first["BLOCK_SIZE_M"]]))[0]) == 2
    assert mapped[0] == canonical(first, problem) == {**first, "GROUP_SIZE_M": 2}
    files, rejected = read_dir(VLLM)
    assert len(files) == 5 and len(rejected) == 1
