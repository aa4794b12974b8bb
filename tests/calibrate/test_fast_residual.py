"""The fast calibrated path (pruned, de-duplicated, remembered residuals; one evaluation per op for
compute and memory) equals the definition: the kernel smoother over every training point."""

import numpy as np
import pytest

from accelsim.calibrate import fit
from accelsim.calibrate.shipped import shipped_profile
from accelsim.efficiency import efficiency_from_args
from accelsim.predict import predict
from accelsim.spec import load_chip, load_model


@pytest.fixture(scope="module")
def profile():
    p = shipped_profile("h100-sxm", "trtllm")
    assert p is not None
    return p


def test_residual_equals_reference_near_and_far(profile):
    rng = np.random.default_rng(0)
    checked = 0
    for key, curve in profile.curves.items():
        if curve.h <= 0 or len(curve.r) == 0:
            continue
        idx = rng.integers(0, len(curve.z), 40)
        # near the data (where the residual is large), far from it, and repeated rows
        z = np.vstack([curve.z[idx] + rng.normal(0, curve.h, (40, curve.z.shape[1])),
                       curve.z[idx[:5]] + 3.0, curve.z[idx[:5]]])
        fast = curve.residual(z)
        again = curve.residual(z)  # remembered
        ref = curve.residual_reference(z)
        assert np.max(np.abs(ref[:40])) > 1e-3, key  # the sample exercises a non-trivial correction
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-9, err_msg=key)
        np.testing.assert_array_equal(fast, again)
        checked += 1
    assert checked >= 5


def test_calibrated_predict_equals_unpruned_smoother(monkeypatch):
    chip, model = load_chip("h100-sxm"), load_model("llama3-8b")
    fast = predict(chip, model, chips=1, eff=efficiency_from_args("calibrated", chip=chip), tp=1, batch=64)
    monkeypatch.setattr(fit.Curve, "residual", fit.Curve.residual_reference)
    slow_eff = efficiency_from_args("calibrated", chip=chip)
    monkeypatch.setattr(type(slow_eff), "_eff", type(slow_eff)._eff_of)  # no per-op memo either
    slow = predict(chip, model, chips=1, eff=slow_eff, tp=1, batch=64)
    assert str(fast.fidelity) == str(slow.fidelity) == "calibrated"
    for a, b in ((fast.ttft_s, slow.ttft_s), (fast.tpot_s, slow.tpot_s), (fast.power_w, slow.power_w)):
        assert float(a) == pytest.approx(float(b), rel=1e-3)
