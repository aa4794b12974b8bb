"""The calibration figures: panels per class with y = x, and the roofline's closed form."""

import numpy as np
import pytest
from calib_helpers import BW, PEAKS, synthetic_rows

from accelsim.calibrate.data import resolve_chip, split
from accelsim.calibrate.plots import predicted_vs_measured, roofline
from accelsim.calibrate.validate import calibrate
from accelsim.perf import Analytical


@pytest.fixture(scope="module")
def result():
    rows = synthetic_rows(noise=0.02)
    chip, _, exclude = resolve_chip(rows, None)
    train, test = split(rows, 0.25, 0, exclude)
    return chip, calibrate(rows, chip, train, test, base=Analytical(), base_name="default")


def test_predicted_vs_measured_has_a_panel_per_class_and_y_equals_x(result):
    _, res = result
    fig = predicted_vs_measured(res.points)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["elementwise", "gemm", "grouped_gemm"]
    for tr in fig.data:
        if tr.name == "y = x":
            assert list(tr.x) == list(tr.y)
    held = [tr for tr in fig.data if tr.name == "calibrated (held-out)"]
    assert sum(len(tr.x) for tr in held) == res.report["n_test"]
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"


def test_roofline_lines_are_min_of_peak_and_bandwidth(result):
    chip, res = result
    fig = roofline(chip, res.points)
    for dtype in ("fp32", "bf16"):
        (line,) = [tr for tr in fig.data if tr.name.startswith(f"roofline {dtype}")]
        x = np.asarray(line.x)
        np.testing.assert_allclose(line.y, np.minimum(PEAKS[dtype], BW * x))
    # measured points lie on or under their roofline (synthetic efficiencies are <= 1)
    for tr in fig.data:
        if not tr.name.startswith("roofline"):
            assert np.all(np.asarray(tr.y) <= np.maximum(PEAKS["bf16"], BW * np.asarray(tr.x)) * (1 + 1e-9))
    assert "without FLOPs" in fig.layout.title.text  # copies cannot sit on a FLOP/s axis
