"""`accelsim calibrate` on synthetic files: bad inputs are one line and exit 2; plots are written."""

import json

import pytest
from calib_helpers import synthetic_rows, write_synthetic

from accelsim import measurements as M
from accelsim.cli import main


def _one_line_error(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("accelsim") and ": error:" in err and "\n" not in err and "Traceback" not in err
    assert needle in err


def test_missing_measurement_file(capsys, tmp_path):
    _one_line_error(capsys, ["calibrate", "--measurements", str(tmp_path / "nope.csv"), "--out",
                             str(tmp_path / "p.json")], "does not exist")


def test_csv_without_schema_columns(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("op,name,median_s\ngemm,x,1e-3\n")
    _one_line_error(capsys, ["calibrate", "--measurements", str(bad), "--out", str(tmp_path / "p.json")],
                    "missing columns")


@pytest.mark.parametrize("value", ["0", "-1e-3"])
def test_non_positive_time(capsys, tmp_path, value):
    rows = synthetic_rows()
    rows[3]["median_s"] = float(value)
    path = tmp_path / "m.csv"
    M.write(path, rows)
    _one_line_error(capsys, ["calibrate", "--measurements", str(path), "--out", str(tmp_path / "p.json")],
                    "median_s must be > 0")


def test_unknown_hw(capsys, tmp_path):
    path = write_synthetic(tmp_path / "m.csv")
    _one_line_error(capsys, ["calibrate", "--measurements", str(path), "--hw", "h1000", "--out",
                             str(tmp_path / "p.json")], "unknown chip 'h1000'")


def test_bad_test_fraction(capsys, tmp_path):
    path = write_synthetic(tmp_path / "m.csv")
    _one_line_error(capsys, ["calibrate", "--measurements", str(path), "--test-fraction", "1", "--out",
                             str(tmp_path / "p.json")], "--test-fraction")


def test_two_devices_need_hw(capsys, tmp_path):
    a = write_synthetic(tmp_path / "a.csv")
    rows = synthetic_rows()
    for r in rows:
        r["device"] = "cpu:another"
    M.write(tmp_path / "b.csv", rows)
    _one_line_error(capsys, ["calibrate", "--measurements", str(a), str(tmp_path / "b.csv"), "--out",
                             str(tmp_path / "p.json")], "2 devices")


def test_gpu_without_peaks_or_known_name_needs_hw(capsys, tmp_path):
    rows = synthetic_rows()
    for r in rows:
        r["device"], r["device_kind"] = "Mystery Accelerator 9000", "gpu"
    M.write(tmp_path / "g.csv", rows)
    _one_line_error(capsys, ["calibrate", "--measurements", str(tmp_path / "g.csv"), "--out",
                             str(tmp_path / "p.json")], "pass --hw")


def test_predict_with_missing_or_non_profile_calibration(capsys, tmp_path):
    args = ["predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--calibration"]
    _one_line_error(capsys, [*args, str(tmp_path / "none.json")], "does not exist")
    (tmp_path / "x.json").write_text('{"hello": 1}')
    _one_line_error(capsys, [*args, str(tmp_path / "x.json")], "not a calibration profile")
    (tmp_path / "y.json").write_text("{not json")
    _one_line_error(capsys, [*args, str(tmp_path / "y.json")], "not valid JSON")


def test_calibrate_writes_profile_json_and_plots(capsys, tmp_path):
    path = write_synthetic(tmp_path / "m.csv", noise=0.02)
    out, plots = tmp_path / "p.json", tmp_path / "plots"
    assert main(["calibrate", "--measurements", str(path), "--out", str(out), "--plots", str(plots), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["median_ape"] < report["roofline_median_ape"]
    assert json.loads(out.read_text())["held_out"]["n_test"] == report["n_test"]
    for name in ("predicted_vs_measured.html", "roofline.html"):
        html = (plots / name).read_text()
        assert "plotly" in html.lower() and len(html) > 100_000  # plotly.js inlined: opens offline
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes left no temp files


def test_calibrate_text_output(capsys, tmp_path):
    path = write_synthetic(tmp_path / "m.csv", noise=0.02)
    assert main(["calibrate", "--measurements", str(path), "--out", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert "calibrated" in out and "roofline" in out and "held-out" in out
