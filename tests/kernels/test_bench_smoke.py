"""benchmarks/bench_moe_kernel.py runs end to end (one tiny shape, Triton interpreter) and writes its CSV."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest
import torch

from kernels.moe import triton_impl

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_moe_kernel.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_moe_kernel", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not triton_impl.INTERPRETED, reason="--cpu-smoke needs the Triton interpreter")
def test_cpu_smoke_writes_csv_with_provenance(bench, tmp_path, capsys):
    from accelsim.ops import fused_moe_counts

    out = tmp_path / "sub" / "bench.csv"
    assert bench.main(["--cpu-smoke", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["impl"] for r in rows} == set(bench.IMPLS)
    assert sorted({int(r["m"]) for r in rows}) == [1, 5]
    assert not list(out.parent.glob(".*.tmp")), "temp file left behind"
    for r in rows:
        assert r["note"] == "", r["note"]
        assert float(r["time_us"]) > 0 and float(r["tflops"]) > 0 and float(r["pct_roofline"]) > 0
        for key in ("device_name", "torch_version", "triton_version", "git_commit", "date_utc"):
            assert r[key], key
        shape = bench.SMOKE_SHAPE
        flops, nbytes = fused_moe_counts(int(r["m"]), shape.hidden, shape.inter, shape.experts, shape.top_k, 2, 2)
        assert float(r["flops"]) == pytest.approx(flops) and float(r["bytes"]) == pytest.approx(nbytes)
        assert float(r["rel_err_vs_ref"]) < 2e-2, r["impl"]
    triton_rows = [r for r in rows if r["impl"] == "triton"]
    assert all(r["config_source"] == "default" and "BLOCK_SIZE_M" in r["config"] for r in triton_rows)
    assert "triton" in capsys.readouterr().out
    # the Triton rows also land in the shared measurement schema (calibration and replay data)
    from accelsim import measurements

    meas = measurements.read(bench.measurements_path(out))
    assert sorted(m["shape"]["M"] for m in meas) == [1, 5] and all(m["op"] == "fused_moe" for m in meas)
    for m in meas:
        assert m["p20_s"] <= m["median_s"] <= m["p80_s"] and "BLOCK_SIZE_M" in m["config"]
        assert measurements.moe_shape(m["shape"]) == {"E": shape.experts, "H": shape.hidden, "I": shape.inter,
                                                      "top_k": shape.top_k, "M": m["shape"]["M"]}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_gpu_says_so_and_exits_zero(bench, tmp_path, capsys):
    out = tmp_path / "bench.csv"
    assert bench.main(["--out", str(out)]) == 0
    assert "needs a CUDA GPU" in capsys.readouterr().out
    assert not out.exists()


def test_quick_plan_and_shapes(bench):
    assert bench.SHAPES["deepseek_v3"][:4] == (256, 7168, 2048, 8)
    assert bench.SHAPES["mixtral_tp2"][:4] == (8, 4096, 7168, 2)
    assert bench.M_VALUES[0] == 1 and bench.M_VALUES[-1] == 4096
    args = bench.parse_args(["--quick"])
    assert args.quick and args.peak_tflops == pytest.approx(989.4) and args.peak_tbps == pytest.approx(3.35)
