"""The AIConfigurator importer: a small synthetic database tree (always) and the installed package
(when `aiconfigurator-core` is installed: the `gpudata` extra). Units are checked against peaks."""

import importlib.util
import json

import numpy as np
import pytest

from accelsim import measurements as M
from accelsim.cli import main
from accelsim.errors import UserError
from accelsim.gpudata import aiconfigurator as A
from accelsim.spec import load_chip

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
HAVE_AIC = importlib.util.find_spec(A.MODULE) is not None
needs_aic = pytest.mark.skipif(not HAVE_AIC, reason="aiconfigurator-core not installed: accelsim[gpudata]")


def _write(root, system, op, fw, version, table, df, provenance="collected"):
    folder = root / system / op / fw / version
    folder.mkdir(parents=True)
    df.to_parquet(folder / f"{table}.parquet")
    (folder / "collection_meta.yaml").write_text(f"schema_version: 1\nprovenance: {provenance}\n")


@pytest.fixture
def sample_db(tmp_path):
    """Two GEMM versions (the larger must win), one MoE table, an unsupported format row."""
    dev = "NVIDIA H100 80GB HBM3"
    base = dict(framework="TRTLLM", device=dev, op_name="gemm", kernel_source="torch_flow")
    small = pd.DataFrame([{**base, "version": "2.0", "gemm_dtype": "bfloat16", "m": 8, "n": 4096, "k": 4096,
                           "latency": 0.02}])
    big = pd.DataFrame([{**base, "version": "1.0", "gemm_dtype": g, "m": m, "n": 8192, "k": 8192, "latency": lat}
                        for g, m, lat in (("bfloat16", 4096, 0.9), ("fp8", 4096, 0.5), ("int4_wo", 4096, 0.4))])
    _write(tmp_path, "h100_sxm", "gemm", "trtllm", "2.0", "gemm_perf", small)
    _write(tmp_path, "h100_sxm", "gemm", "trtllm", "1.0", "gemm_perf", big, "legacy")
    moe = pd.DataFrame([dict(framework="VLLM", version="0.1", device=dev, op_name="moe", kernel_source="triton",
                             moe_dtype="bfloat16", num_tokens=64, hidden_size=4096, inter_size=2048, topk=2,
                             num_experts=8, moe_tp_size=1, moe_ep_size=2, distribution="balanced", latency=0.1)])
    _write(tmp_path, "h100_sxm", "moe", "vllm", "0.1", "moe_perf", moe)
    return tmp_path


def test_sample_tree_converts_with_units_and_provenance(sample_db):
    tables = A.select("h100_sxm", ops=["gemm"], root=sample_db)
    assert [(t.version, t.collection) for t in tables] == [("1.0", "legacy")]  # the fullest version
    rows, skipped = A.convert(tables[0], package="9.9")
    assert skipped == 1 and len(rows) == 2  # int4 weight-only is not an accelsim format
    bf16 = next(r for r in rows if r["dtype"] == "bf16")
    assert bf16["median_s"] == pytest.approx(0.9e-3)  # the database's latency is in ms
    assert bf16["flops"] == 2 * 4096 * 8192 * 8192
    assert bf16["device_kind"] == "gpu" and bf16["config"] == {"kernel_source": "torch_flow"}
    for text in ("aiconfigurator-core 9.9", "Apache-2.0", "h100_sxm", "trtllm 1.0", "gemm/gemm_perf", "legacy"):
        assert text in bf16["tool"]
    fp8 = next(r for r in rows if r["dtype"] == "fp8")
    assert fp8["bytes"] == 4096 * 8192 * 2 + 8192 * 8192 * 1 + 4096 * 8192 * 2  # bf16 in/out, fp8 weights


def test_moe_rows_are_one_rank_of_the_expert_group(sample_db):
    (t,) = A.select("h100_sxm", ops=["moe"], root=sample_db)
    (r,), _ = A.convert(t, package="x")
    assert r["op"] == "fused_moe" and r["shape"]["ep"] == 2 and r["shape"]["routing"] == "balanced"
    # 64 tokens x top-2 spread over 2 ranks: 64 routed rows on this rank through gate|up and down
    # (2 x rows x H x 3I), plus the combine's one add per routed element
    assert r["flops"] == pytest.approx(2 * 64 * 4096 * 2048 * 3 + 64 * 4096, rel=1e-12)


def test_unknown_system_framework_and_op_are_one_line_errors(sample_db):
    with pytest.raises(UserError, match="unknown AIConfigurator system"):
        A.select("h999", root=sample_db)
    with pytest.raises(UserError, match="has data for"):
        A.select("h100_sxm", frameworks=["sglang"], root=sample_db)
    with pytest.raises(UserError, match="not one of"):
        A.select("h100_sxm", ops=["conv"], root=sample_db)


def test_measurement_file_round_trip_gz(sample_db, tmp_path):
    rows, _ = A.import_rows(A.select("h100_sxm", root=sample_db))
    path = tmp_path / "x.csv.gz"
    M.write(path, rows)
    back = M.read(path)
    assert len(back) == len(rows) and back[0]["tool"] == rows[0]["tool"]


@needs_aic
def test_installed_gemm_latency_is_milliseconds_against_peak():
    """Every imported H100 and B200 GEMM runs below its chip's peak, and the largest come near it:
    read as seconds they would run at <1% of peak, as microseconds 1000x above it."""
    for system, fw in (("h100_sxm", "trtllm"), ("b200_sxm", "trtllm")):
        (t,) = A.select(system, frameworks=[fw], ops=["gemm"])
        rows, _ = A.convert(t, limit=3000)
        chip = load_chip(A.SYSTEM_CHIPS[system])
        frac = np.asarray([r["flops"] / r["median_s"] / chip.flops(r["dtype"]) for r in rows])
        assert frac.max() <= 1.0
        assert frac.max() > 0.5


@needs_aic
def test_installed_collective_message_size_counts_elements():
    """An all-to-all of N half elements takes as long as one of 2N int8 elements (same bytes), so
    `message_size` counts elements; the imported bf16 all-to-all then stays under NVLink 4's
    450 GB/s per direction and reaches a good part of it."""
    (t,) = [x for x in A.select("h100_sxm", ops=["comm"]) if x.name == "nccl_perf"]
    raw = pd.read_parquet(t.path)
    a2a = raw[(raw.op_name == "alltoall") & (raw.num_gpus == 8)].groupby(["nccl_dtype", "message_size"]).latency.min()
    for n in (2**24, 2**26, 2**28):
        assert a2a[("half", n)] == pytest.approx(a2a[("int8", 2 * n)], rel=0.1)
    rows, _ = A.convert(t)
    big = [r for r in rows if r["op"] == "all_to_all" and r["shape"]["group"] == 8 and r["shape"]["bytes"] > 1e8]
    algbw = [7 / 8 * r["shape"]["bytes"] / r["median_s"] for r in big]
    assert big and 0.5 * 450e9 < max(algbw) < 450e9


@needs_aic
def test_cli_list_and_import(tmp_path, capsys):
    assert main(["import", "aiconfigurator", "--list", "--system", "h100_sxm", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["license"] == "Apache-2.0" and any(t["table"] == "gemm_perf" for t in listing["tables"])
    out = tmp_path / "h100.csv"
    assert main(["import", "aiconfigurator", "--system", "h100_sxm", "--framework", "vllm", "--ops", "gemm,comm",
                 "--limit", "50", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == len(M.read(out)) > 0


def test_cli_bad_input_exits_2_without_writing(tmp_path, capsys):
    out = tmp_path / "x.csv"
    code = main(["import", "aiconfigurator", "--system", "nope", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and not out.exists()
