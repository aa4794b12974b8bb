"""GPU calibration (accelsim.calibrate.gpu / shipped): held-out by weight shape, recovery of known
curves from synthetic GPU rows, the real-device gate, and the shipped profiles as the default
efficiency (calibrated on measured chips, projected with a measured band elsewhere)."""

import json

import numpy as np
import pytest

from accelsim import measurements as M
from accelsim import ops as O
from accelsim.calibrate import gpu as G
from accelsim.calibrate.profile import CalibratedEfficiency, Profile
from accelsim.cli import main
from accelsim.efficiency import efficiency_from_args
from accelsim.errors import UserError
from accelsim.perf import Fidelity, HwVec, Roofline, cost
from accelsim.spec import load_chip
from accelsim.stacks import load_stack

H100 = load_chip("h100-sxm")
DEVICE = "NVIDIA H100 80GB HBM3"
E_C, E_M, T0 = 0.7, 0.8, 5e-6  # the generating GEMM curve (written out here, not taken from fit.py)


def _gpu_row(op: O.Op, shape: dict, t: float, name: str = "gemm_bfloat16", kind: str = "gpu") -> dict:
    return {"op": str(op.kind), "name": name, "dtype": op.dtype, "shape": shape, "config": {"kernel_source": "k"},
            "flops": float(op.flops), "bytes": float(op.bytes), "median_s": t, "p20_s": t, "p80_s": t, "reps": 0,
            "device": DEVICE, "device_kind": kind, "tool": "test"}


def synthetic_gemms(kind: str = "gpu") -> list[dict]:
    rows = []
    for n in (1024, 2048, 4096, 8192, 16384):
        for k in (1024, 4096, 8192):
            for m in (1, 4, 16, 64, 256, 1024, 4096):
                op = O.gemm("gemm", m, n, k, dtype="bf16", a_bytes=2, w_bytes=2, out_bytes=2)
                t_c = float(op.flops) / H100.flops("bf16")
                t = max(t_c / E_C, float(op.bytes) / H100.mem_bw_bytes_per_s / E_M) + T0
                rows.append(_gpu_row(op, {"m": m, "n": n, "k": k}, t, kind=kind))
    return rows


def test_held_out_split_never_shares_a_weight_shape():
    rows = synthetic_gemms()
    train, test = G.split_by_weight(rows, 0.25, seed=3)
    assert sorted(train + test) == list(range(len(rows))) and test
    assert not {G.weight_key(rows[i]) for i in train} & {G.weight_key(rows[i]) for i in test}
    # every token count of a held-out weight shape is held out with it
    assert len(test) % 7 == 0
    assert G.split_by_weight(rows, 0.25, seed=3) == (train, test)


def test_fit_recovers_a_known_curve_and_predicts_held_out_shapes():
    rows = synthetic_gemms()
    train, test = G.split_by_weight(rows, 0.3, seed=0)
    curves = G.fit_rows([rows[i] for i in train], {DEVICE: H100})
    c = curves["gemm|bf16"]
    assert c.e_c == pytest.approx(E_C, rel=0.03) and c.e_m == pytest.approx(E_M, rel=0.03)
    assert c.t0_s == pytest.approx(T0, rel=0.05)
    eff = CalibratedEfficiency(Profile(H100, curves, {}, {}, {}), load_stack())
    held = [rows[i] for i in test]
    pred = G.predict_rows(held, H100, eff)  # through perf.cost, as predictions run
    meas = np.asarray([r["median_s"] for r in held])
    assert np.max(np.abs(pred / meas - 1)) < 0.02


def test_collective_curve_gives_the_measured_time_through_perf():
    """All-reduce rows t = 8 us + bytes on the fabric / (0.75 x link): the calibrated cost path
    (network efficiency, no extra per-step latency) reproduces them."""
    link = H100.scale_up_bw_bytes_per_s / 2
    rows = []
    for g in (2, 4, 8):
        for p in 2.0 ** np.arange(10, 30, 2):
            op = O.all_reduce("ar", p, g, dtype="bf16")
            rows.append(_gpu_row(op, {"bytes": p, "group": g}, 8e-6 + float(op.comm_bytes) / (0.75 * link), "ar"))
    curves = G.fit_rows(rows, {DEVICE: H100})
    eff = CalibratedEfficiency(Profile(H100, curves, {}, {}, {}), load_stack())
    assert eff.link_latency_s == 0.0 or "all_to_all" not in eff.profile.measured_classes
    pred = G.predict_rows(rows, H100, eff)
    meas = np.asarray([r["median_s"] for r in rows])
    assert np.median(np.abs(pred / meas - 1)) < 0.03


def test_synthetic_or_replayed_rows_never_calibrate(tmp_path, capsys):
    with pytest.raises(UserError, match="not measurements of a real device"):
        G.engine_rows(synthetic_gemms(kind="synthetic"))
    path = tmp_path / "synthetic.csv"
    M.write(path, [{**r, "shape": r["shape"], "config": r["config"]} for r in synthetic_gemms(kind="synthetic")])
    code = main(["calibrate", "--measurements", str(path), "--hw", "h100-sxm", "--out", str(tmp_path / "p.json")])
    assert code == 2 and "real device" in capsys.readouterr().err and not (tmp_path / "p.json").exists()


def test_engine_rows_quantize_format_preference_and_fastest_kernel():
    op = O.gemm("g", 64, 4096, 4096, dtype="fp8", a_bytes=2, w_bytes=1, out_bytes=2)
    shape = {"m": 64, "n": 4096, "k": 4096}
    q = O.elementwise("q", 64 * 4096, dtype="bf16", bytes_per_elem=3)
    qshape = {"m": 64, "k": 4096, "elems": 64 * 4096, "bytes_per_elem": 3}
    rows = [_gpu_row(op, shape, 20e-6, "gemm_fp8"), _gpu_row(op, shape, 15e-6, "gemm_fp8_block"),
            _gpu_row(op, shape, 18e-6, "gemm_fp8"), _gpu_row(q, qshape, 4e-6, G.QUANTIZE),
            _gpu_row(q, qshape, 3e-6, "quantize_compute_scale")]
    # rows timing the GEMM alone: the engine that runs the quantize as its own kernel pays its scaling pass
    with_q = {r["op"]: r for r in G.engine_rows(rows, add_quantize=True)}
    assert with_q["gemm"]["median_s"] == pytest.approx(22e-6)  # per-tensor fp8 (fastest 18 us) + its quantize
    fused = {r["op"]: r for r in G.engine_rows(rows, add_quantize=False)}
    assert fused["gemm"]["median_s"] == pytest.approx(18e-6)
    # AIConfigurator times the whole fp8 linear module, quantize included: taken as is where the engine
    # pays the quantize, less the measured quantize (compute_scale + scale_matrix) where it fuses it
    aic = [dict(r, tool="aiconfigurator-core 0.12.0 (Apache-2.0); system h100_sxm") for r in rows]
    assert {r["op"]: r for r in G.engine_rows(aic, add_quantize=True)}["gemm"]["median_s"] == pytest.approx(18e-6)
    assert {r["op"]: r for r in G.engine_rows(aic, add_quantize=False)}["gemm"]["median_s"] == pytest.approx(11e-6)
    assert G.row_has_quantize(aic[0]) and not G.row_has_quantize(aic[1]) and not G.row_has_quantize(rows[0])


def test_engine_rows_prefer_the_engines_own_all_reduce_over_nccl():
    rows = []
    for name, t in (("all_reduce_nccl", 35e-6), ("all_reduce_trtllm", 79e-6)):
        for group in (4, 8):
            op = O.all_reduce("ar", 8 * 2**20, group, dtype="bf16")
            rows.append(_gpu_row(op, {"bytes": 8 * 2**20, "group": group}, t, name))
    rows.append(_gpu_row(O.all_reduce("ar", 8 * 2**20, 2, dtype="bf16"), {"bytes": 8 * 2**20, "group": 2}, 20e-6,
                         "all_reduce_nccl"))  # a group size the engine's table lacks: NCCL's row stays
    kept = {(r["shape"]["group"], r["name"]): r["median_s"] for r in G.engine_rows(rows)}
    assert kept == {(4, "all_reduce_trtllm"): 79e-6, (8, "all_reduce_trtllm"): 79e-6, (2, "all_reduce_nccl"): 20e-6}


# ---- the shipped profiles --------------------------------------------------------------------

shipped = pytest.importorskip("accelsim.calibrate.shipped")
HAVE = shipped.shipped_profile("h100-sxm") is not None and shipped.shipped_profile(shipped.PROJECTED) is not None
needs_profiles = pytest.mark.skipif(not HAVE, reason="hwmodels/calibrated profiles not built")


@needs_profiles
def test_calibrated_efficiency_is_calibrated_on_measured_chips_and_projected_elsewhere():
    assert efficiency_from_args(chip=H100).fidelity == Fidelity.CALIBRATED  # the default: the shipped profiles
    assert efficiency_from_args("analytical", chip=H100).fidelity == Fidelity.ANALYTICAL
    cal = efficiency_from_args("calibrated", chip=H100)
    assert cal.fidelity == Fidelity.CALIBRATED and cal.band_for("gemm") > 0
    mtia = efficiency_from_args("calibrated", chip=load_chip("mtia-450"))
    proj = shipped.shipped_profile(shipped.PROJECTED)
    assert mtia.fidelity == Fidelity.PROJECTED
    assert mtia.band_for("gemm") == pytest.approx(proj.band_log["gemm"])  # the leave-one-chip-out band
    assert proj.band_log["gemm"] > 0 and "leave-one-chip-out" in proj.provenance["band"]
    what_if = efficiency_from_args("calibrated", chip=H100.scaled(mem_bw=2.0))
    assert what_if.fidelity == Fidelity.PROJECTED  # a variant of a measured chip is not that chip
    assert efficiency_from_args("analytical", chip=H100).fidelity == Fidelity.ANALYTICAL
    assert isinstance(efficiency_from_args("roofline", chip=H100), Roofline)


@needs_profiles
def test_sweep_efficiency_resolves_each_chip():
    chips = [H100, load_chip("mtia-450")]
    hw = HwVec.from_chips(chips)
    ops = [O.gemm("g", m, 8192, 8192, dtype="bf16", a_bytes=2, w_bytes=2, out_bytes=2) for m in (8, 512)]
    both = cost(ops, hw, efficiency_from_args("calibrated")).total_s
    for i, chip in enumerate(chips):
        one = cost(ops, HwVec.from_chips([chip]), efficiency_from_args("calibrated", chip=chip)).total_s
        assert float(both[i]) == pytest.approx(float(one[0]), rel=1e-12)


@needs_profiles
def test_prediction_carries_fidelity_and_band(capsys):
    from accelsim.calibrate.project import predict_with_band
    from accelsim.spec import load_model

    kw = dict(chips=8, dtype="fp8", input_len=1000, output_len=1000)
    for chip, fid in ((H100, "calibrated"), (load_chip("mtia-450"), "projected")):
        r = predict_with_band(chip, load_model("llama3-70b"), efficiency_from_args("calibrated", chip=chip), **kw)
        assert r["fidelity"] == fid
        assert r["throughput_tokens_per_s_low"] <= r["throughput_tokens_per_s"] <= r["throughput_tokens_per_s_high"]
        assert r["throughput_tokens_per_s_low"] < r["throughput_tokens_per_s_high"]
    assert main(["predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "8", "--dtype", "fp8",
                 "--fidelity", "calibrated", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fidelity"] == "projected" and out["band_half_width_ln"]["gemm"] > 0


@needs_profiles
def test_validate_reports_per_class_errors(tmp_path, capsys):
    rows = synthetic_gemms()
    path = tmp_path / "m.csv"
    M.write(path, rows)
    prof = shipped.profile_path("h100-sxm")
    assert main(["validate", "--calibration", str(prof), "--measurements", str(path), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["chip"] == "h100-sxm" and r["profile_chips"] == ["h100-sxm"] and r["fidelity"] == "calibrated"
    assert set(r["per_class"]["gemm"]) == {"n", "median_ape", "p90_ape"} and r["per_class"]["gemm"]["n"] == len(rows)
    assert r["median_ape"] >= 0 and r["p90_ape"] >= r["median_ape"]
