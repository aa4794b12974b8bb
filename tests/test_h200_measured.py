"""The lent-H200 run (operators, decoder stacks, board power) parses, carries its provenance and obeys
physics that bad data would break; the benchmark that holds the model against it runs on it.

Bounds used (independent of the data):
- tensor-core peak at the highest clock the part reaches: the datasheet dense peaks in
  hwmodels/h200-sxm.toml are quoted at a 1,830 MHz SM clock (528 tensor cores x 1,024 bf16 FLOP/clock
  x 1.83 GHz = 989.4 TFLOP/s) and the part boosts to 1,980 MHz (glennklockwood.com/garden/peak-FLOPS,
  /garden/processors/h100), so no kernel exceeds peak x 1980/1830;
- HBM: a kernel whose minimal traffic is over 4x all on-chip storage (`sram_bytes`: L2 + L1/shared)
  cannot beat the datasheet bandwidth (5% for clock and timer granularity);
- a CUDA graph of the whole stack runs the same kernels as its pieces graphed one by one: their
  times agree within 30% (launch gaps and cache effects only);
- board power lies between the idle phase and TDP (+5% for sampling).
"""

import csv
import importlib.util
import itertools
import json
from pathlib import Path

import pytest

from accelsim import measurements as M
from accelsim.spec.chip import load_chip

REPO = Path(__file__).resolve().parents[1]
OPS = REPO / "hwmodels/measured/nvidia-h200_gpu-measure-ops_2026-11-30.csv"
STACKS = REPO / "benchmarks/reference/h200_decoder_stacks_2026-11-30.csv"
POWER = REPO / "benchmarks/reference/h200_power_2026-11-30.csv"
BENCH = REPO / "benchmarks/bench_h200_measured.py"
CHIP = load_chip("h200-sxm")
MAX_BOOST_MHZ, PEAK_QUOTED_MHZ = 1980.0, 1830.0
DTYPE_BYTES = {"bf16": 2, "fp8": 1}
# pieces of one Llama decoder layer and how often each runs: two RMSNorms, two residual adds
LAYER_PIECES = {"norm": 2, "qkv_gemm": 1, "attention": 1, "o_gemm": 1, "residual_add": 2, "gate_up_gemm": 1,
                "silu_mul": 1, "down_gemm": 1}


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def ops():
    return M.read(OPS)


def test_ops_file_parses_with_provenance(ops):
    kinds = {(r["op"], r["dtype"]) for r in ops}
    assert {("gemm", "bf16"), ("gemm", "fp8"), ("attn_prefill", "bf16"), ("attn_decode", "bf16"),
            ("fused_moe", "bf16")} <= kinds
    for r in ops:
        assert r["device"] == "NVIDIA H200" and r["device_kind"] == "gpu"
        assert M.chip_for_device(r["device"]) == "h200-sxm"
        assert r["torch_version"] and r["triton_version"] and r["driver"] and r["git_commit"]
        assert r["date_utc"].startswith("2026-11-30") and r["tool"] == "benchmarks/gpu_measure_ops.py"
        assert r["median_s"] > 0 and r["p20_s"] <= r["median_s"] <= r["p80_s"]


def test_stack_and_power_files_parse_with_provenance(ops):
    stacks, power = _csv(STACKS), _csv(POWER)
    assert len(stacks) >= 2 and len(power) >= 2
    run = {(r["torch_version"], r["date_utc"]) for r in ops}
    for r in stacks:
        assert r["device"] == "NVIDIA H200" and r["tool"] == "benchmarks/gpu_measure_ops.py"
        assert (r["torch"], r["date_utc"]) in run  # the same run as the operator rows
    for r in power:
        assert r["device"] == "NVIDIA H200" and r["tool"] == "benchmarks/gpu_measure_ops.py"
        assert r["date_utc"].startswith("2026-11-30")


def test_gemm_flops_are_2mnk_and_below_the_tensor_core_peak(ops):
    gemms = [r for r in ops if r["op"] == "gemm"]
    assert len(gemms) > 50
    for r in gemms:
        s = r["shape"]
        assert r["flops"] == pytest.approx(2.0 * s["m"] * s["n"] * s["k"], rel=1e-9)
    for r in ops:  # every row, not only the GEMMs, runs on the tensor cores of its dtype
        bound = CHIP.flops(r["dtype"]) * MAX_BOOST_MHZ / PEAK_QUOTED_MHZ
        assert r["flops"] / r["median_s"] <= bound, (r["op"], r["shape"])


def test_streaming_rows_do_not_beat_hbm_bandwidth(ops):
    big = [r for r in ops if r["bytes"] > 4 * CHIP.sram_bytes]
    assert len(big) > 20  # GEMMs with large weights, long-KV decode attention, MoE experts
    for r in big:
        assert r["bytes"] / r["median_s"] <= 1.05 * CHIP.mem_bw_bytes_per_s, (r["op"], r["shape"])
    for r in (r for r in ops if r["op"] == "gemm"):  # a GEMM reads its weight at least once
        s = r["shape"]
        assert r["bytes"] >= s["n"] * s["k"] * DTYPE_BYTES[r["dtype"]]


def test_stack_graph_agrees_with_its_graphed_pieces():
    for r in _csv(STACKS):
        layers = int(r["layers"])
        graphed = layers * sum(n * float(r[f"{p}_graphed_s"]) for p, n in LAYER_PIECES.items())
        dobench = layers * sum(n * float(r[f"{p}_dobench_s"]) for p, n in LAYER_PIECES.items())
        assert float(r["sum_graphed_s"]) == pytest.approx(graphed, rel=1e-6)
        assert float(r["sum_dobench_s"]) == pytest.approx(dobench, rel=1e-6)
        assert 0.7 <= float(r["graph_s"]) / graphed <= 1.3, (r["stack"], r["phase"], r["batch"], r["seq"])


def test_stack_time_grows_with_work():
    rows = _csv(STACKS)
    for stack in {r["stack"] for r in rows}:
        for phase, key in (("decode", "batch"), ("prefill", "seq")):
            sel = sorted((int(r[key]), float(r["graph_s"])) for r in rows
                         if r["stack"] == stack and r["phase"] == phase)
            assert len(sel) >= 2
            assert all(a[1] < b[1] for a, b in itertools.pairwise(sel)), (stack, phase, sel)


def test_power_phases_between_idle_and_tdp():
    rows = _csv(POWER)
    idle = [r for r in rows if r["phase"] == "idle"]
    assert len(idle) == 1
    idle_w = float(idle[0]["power_w_mean"])
    for r in rows:
        assert float(r["power_limit_w"].split()[0]) == CHIP.tdp_w
        assert float(r["power_w_max"]) <= 1.05 * CHIP.tdp_w
        assert float(r["sm_clock_mhz_mean"]) <= MAX_BOOST_MHZ
        assert float(r["achieved_tflops"]) * 1e12 <= CHIP.flops("bf16") * MAX_BOOST_MHZ / PEAK_QUOTED_MHZ
        assert float(r["achieved_tb_s"]) * 1e12 <= 1.05 * CHIP.mem_bw_bytes_per_s
        if r is not idle[0]:
            assert idle_w < float(r["power_w_mean"]) <= 1.05 * CHIP.tdp_w, r["phase"]
            assert float(r["calls_per_s"]) > 0


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_h200_measured", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_tables_cover_every_class_row_and_phase(bench, ops):
    t = bench.run()
    assert set(t) == {"ops", "ops_rows", "moe", "stacks", "stack_summary", "power", "sustained"}
    assert {r["role"] for r in t["sustained"]} == {"fit", "held out"}
    classes = {f"{r['op']}:{r['dtype']}" for r in ops}
    assert {(c, m) for c in classes for m in bench.MODELS} == {(r["class"], r["model"]) for r in t["ops"]}
    assert sum(r["n"] for r in t["ops"]) == len(bench.MODELS) * len(t["ops_rows"])
    moe_shapes = {json.dumps(r["shape"], sort_keys=True) for r in ops if r["op"] == "fused_moe"}
    assert len(t["moe"]) == len(moe_shapes)
    assert all(r["vllm_s"] is not None and r["ours_over_vllm"] > 0 for r in t["moe"])
    stacks, power = _csv(STACKS), _csv(POWER)
    assert [(r["stack"], r["phase"], r["batch"], r["seq"]) for r in t["stacks"]] == \
        [(r["stack"], r["phase"], r["batch"], r["seq"]) for r in stacks]
    for r in t["stacks"]:
        assert all(r[f"{m}_s"] > 0 and f"{m}_err_pct" in r for m in bench.MODELS)
    assert [r["phase"] for r in t["power"]] == [r["phase"] for r in power]
    assert [r["phase"] for r in t["power"] if not r["held_out"]] == ["idle"]


def test_benchmark_main_writes_its_csvs_and_refuses_bad_input(bench, tmp_path, capsys):
    assert bench.main(["--out-dir", str(tmp_path)]) == 0
    for name in ("ops", "ops_rows", "moe", "stacks", "stacks_summary", "power", "sustained"):
        rows = _csv(tmp_path / f"h200_measured_{name}.csv")
        assert rows and rows[0]["measured"] and rows[0]["predicted_by"]
    bad = tmp_path / "bad"
    assert bench.main(["--out-dir", str(bad), "--stacks", str(POWER)]) == 2
    assert "missing column" in capsys.readouterr().err
    assert not bad.exists()
