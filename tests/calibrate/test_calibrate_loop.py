"""The whole loop on real measurements of this CPU: measure -> calibrate -> validate -> predict."""

import json

import pytest

pytest.importorskip("torch")

from accelsim import measurements as M
from accelsim.calibrate import measure_cpu
from accelsim.cli import main


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """`accelsim measure --device cpu --quick` with the quick grid swapped for the tiny one (CI time)."""
    out = tmp_path_factory.mktemp("measure") / "cpu.csv"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(measure_cpu.GRIDS, "quick", measure_cpu.GRIDS["tiny"])
        assert main(["measure", "--device", "cpu", "--quick", "--out", str(out), "--json"]) == 0
    return out


@pytest.fixture(scope="module")
def calibrated(measured, tmp_path_factory):
    import contextlib
    import io

    profile = tmp_path_factory.mktemp("calibrate") / "profile.json"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["calibrate", "--measurements", str(measured), "--out", str(profile), "--json", "--seed", "0"])
    assert rc == 0
    return profile, json.loads(buf.getvalue())


def test_measurement_rows_carry_operator_counts_and_provenance(measured):
    rows = M.read(measured)
    by_name = {}
    for r in rows:
        by_name.setdefault(r["name"], []).append(r)
    for r in by_name["matmul"]:  # hand formulas, independent of accelsim.ops
        s = r["shape"]
        assert r["flops"] == 2 * s["m"] * s["n"] * s["k"]
    for r in by_name["grouped_mm"]:
        s = r["shape"]
        assert r["flops"] == 2 * s["tokens"] * s["n"] * s["k"]
    for r in by_name["copy"]:
        assert r["flops"] == 0 and r["bytes"] == 8 * r["shape"]["elems"]
    assert {r["dtype"] for r in by_name["matmul_peak"]} == {"fp32", "bf16"} and len(by_name["copy_peak"]) == 1
    for r in rows:
        assert r["device"].startswith("cpu:") and "(1 thread)" in r["device"]
        assert r["p20_s"] <= r["median_s"] <= r["p80_s"] and r["reps"] >= 3
        assert r["torch_version"] and r["date_utc"] and "thread_time" in r["driver"]


def test_calibrated_beats_the_roofline_on_held_out_shapes(calibrated):
    _, r = calibrated
    for key in ("n_train", "n_test", "median_ape", "p90_ape", "spearman", "roofline_median_ape"):
        assert key in r
    assert r["n_test"] >= 6 and r["n_chip_rows"] == 3
    assert r["median_ape"] < r["roofline_median_ape"]
    assert r["n_test_fallback"] == 0  # every held-out class had a fitted curve


def test_predict_with_the_cpu_profile(calibrated, capsys):
    profile, _ = calibrated
    args = ["predict", "--hw", "mtia-450", "--model", "llama3-8b", "--chips", "1", "--dtype", "fp8", "--json"]
    assert main(args) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*args, "--calibration", str(profile)]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert cal["fidelity"] == "calibrated"
    assert cal["throughput_tokens_per_s"] != pytest.approx(plain["throughput_tokens_per_s"], rel=1e-3)
