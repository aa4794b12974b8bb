"""Profiles as Efficiency: fidelity, fallback, the time identity, predict --calibration, projection."""

import json

import numpy as np
import pytest
from calib_helpers import write_synthetic

from accelsim import ops as O
from accelsim.calibrate.data import load_rows, resolve_chip, split
from accelsim.calibrate.profile import load_profile, read_profile, save_profile
from accelsim.calibrate.project import TRANSFER_LOG_SPREAD, predict_band, project
from accelsim.calibrate.validate import calibrate
from accelsim.cli import main
from accelsim.perf import Fidelity, HwVec, cost
from accelsim.predict import predict
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("profile")
    rows = load_rows([str(write_synthetic(d / "syn.csv", noise=0.03, seed=11))])
    chip, source, exclude = resolve_chip(rows, None)
    train, test = split(rows, 0.25, 0, exclude)
    res = calibrate(rows, chip, train, test, base=load_stack(), base_name="trtllm-fp8", chip_source=source)
    save_profile(res.profile, d / "profile.json")
    return d / "profile.json"


def test_profile_file_names_fallbacks_and_round_trips(profile_path):
    d = json.loads(profile_path.read_text())
    assert d["measured_classes"] == ["elementwise", "gemm", "grouped_gemm"]
    assert "attn_decode" in d["fallback_classes"] and "gemm" not in d["fallback_classes"]
    assert d["held_out"]["n_test"] > 0 and d["provenance"]["fitted_on"] == "training split only"
    prof = read_profile(profile_path)
    assert prof.chip.flops("bf16") == pytest.approx(100e9)
    assert prof.chip.assumed_keys  # the CPU chip's unmeasured values stay marked assumed


def test_efficiency_reproduces_the_curve_time_on_the_measured_chip(profile_path):
    """op_times with the profile = the curve's time: t_roof / eff + overhead == curve.time_s."""
    eff = load_profile(profile_path, base=load_stack())
    assert eff.fidelity == Fidelity.CALIBRATED
    hw = HwVec.from_chips([eff.profile.chip])
    m = np.array([1.0, 16.0, 300.0])
    op = O.gemm("x", m, 1536, 768, dtype="bf16", a_bytes=2, w_bytes=2, out_bytes=2)
    curve = eff.profile.curves["gemm|bf16"]
    want = curve.time_s(op.flops / 100e9, op.bytes / 20e9, m)
    np.testing.assert_allclose(cost([op], hw, eff).total_s, want, rtol=1e-9)


def test_unmeasured_classes_fall_back_to_the_base_stack(profile_path):
    base = load_stack()
    eff = load_profile(profile_path, base=base)
    hw = HwVec.from_chips([load_chip("h100-sxm")])
    op = O.attention_decode("a", 64, 2000, heads=8, qk_dim=128, v_dim=128, kv_elems_per_token=2048, dtype="bf16",
                            act_bytes=2, kv_bytes=1)
    assert not eff.uses_curve(op)
    assert np.array_equal(eff.compute(op, hw), base.compute(op, hw))
    assert np.array_equal(eff.memory(op, hw), base.memory(op, hw))
    ar = O.all_reduce("ar", 1e6, 8, dtype="bf16")
    assert np.array_equal(eff.network(ar, hw), base.network(ar, hw))


def test_efficiency_is_capped_at_one_on_other_chips(profile_path):
    eff = load_profile(profile_path, base=load_stack())
    big = O.elementwise("c", 1e9, dtype="fp32", bytes_per_elem=8.0, flops_per_elem=0.0)
    shifted = type(eff)(eff.profile, eff.base, log_shift={"*": 5.0})  # e x 148: far above any roofline
    assert float(shifted.memory(big, HwVec.from_chips([load_chip("h100-sxm")]))[0]) == 1.0
    assert float(shifted.memory(big, HwVec.from_chips([eff.profile.chip]))[0]) > 1.0


def test_predict_with_calibration_is_calibrated_and_differs(profile_path, capsys):
    args = ["predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--json"]
    assert main([*args, "--fidelity", "analytical"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*args, "--calibration", str(profile_path)]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert plain["fidelity"] == "analytical" and cal["fidelity"] == "calibrated"
    assert cal["throughput_tokens_per_s"] != pytest.approx(plain["throughput_tokens_per_s"], rel=1e-3)


def test_projection_band_brackets_mid(profile_path):
    prof = read_profile(profile_path)
    chip, model = load_chip("mtia-450"), load_model("llama3-70b")
    r = predict_band(chip, model, prof, chips=2, dtype="fp8")
    assert r["fidelity"] == "calibrated" and r["band_transfer"].startswith("assumed")
    assert r["throughput_tokens_per_s_low"] < r["throughput_tokens_per_s"] < r["throughput_tokens_per_s_high"]
    assert r["tpot_s_low"] < r["tpot_s"] < r["tpot_s_high"]
    mid = predict(chip, model, chips=2, dtype="fp8", eff=project(prof, chip).mid)
    assert r["throughput_tokens_per_s"] == mid["throughput_tokens_per_s"]


def test_band_half_width_combines_held_out_error_and_transfer(profile_path):
    prof = read_profile(profile_path)
    own = project(prof, prof.chip)
    other = project(prof, load_chip("mtia-450"))
    for cls in prof.measured_classes:
        q = prof.band_for(cls)
        assert own.half_width[cls] == pytest.approx(q)
        assert other.half_width[cls] == pytest.approx(np.hypot(q, TRANSFER_LOG_SPREAD))
    assert own.transfer.startswith("none")


def test_transfer_spread_is_measured_with_a_second_chip(profile_path, tmp_path):
    """The same rows fitted as if they ran on an H100 give a second profile: the spread between
    the two is measured, not assumed."""
    rows = load_rows([str(write_synthetic(tmp_path / "syn.csv", noise=0.03, seed=12))])
    h100 = load_chip("h100-sxm")
    train, test = split(rows, 0.25, 0)
    other = calibrate(rows, h100, train, test, base=load_stack(), base_name="trtllm-fp8").profile
    band = project(read_profile(profile_path), load_chip("mtia-450"), peers=[other])
    assert band.transfer == "measured across 2 chips"
    assert band.half_width["gemm"] > read_profile(profile_path).band_for("gemm")
