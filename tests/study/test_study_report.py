"""Report writing: one inlined plotly.js, tables as HTML and CSV, atomic output, assumptions."""

import csv
import os

import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

import accelsim.report as report_mod
from accelsim.report import Report
from accelsim.spec import load_chip


def _report():
    rep = Report("Unit report")
    rep.add_text("Some **bold** text and `code`.")
    for i in range(3):
        rep.add_figure(go.Figure(go.Bar(x=["a", "b"], y=[i, 2], name=f"trace-{i}"),
                                 layout={"title": f"Figure {i}"}), f"caption {i}", fidelity="analytical")
    rep.add_table("numbers", [{"a": 1, "b": 2.5}, {"a": 3, "c": "x"}], "a table")
    return rep


def test_plotly_inlined_once_and_everything_rendered(tmp_path):
    index = _report().write(tmp_path / "out")
    page = index.read_text()
    marker = get_plotlyjs()[:300]
    assert page.count(marker) == 1  # three figures, one library
    assert "<strong>bold</strong>" in page and "<code>code</code>" in page
    for i in range(3):
        assert f"Figure {i}" in page and f"trace-{i}" in page and f"caption {i}" in page
    assert 'data-name="numbers"' in page and "analytical" in page
    assert "<script src=" not in page and 'src="http' not in page  # nothing fetched: works offline


def test_tables_written_as_csv(tmp_path):
    index = _report().write(tmp_path / "out")
    with (index.parent / "numbers.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"a": "1", "b": "2.5", "c": ""}, {"a": "3", "b": "", "c": "x"}]


def test_failed_write_leaves_no_index(tmp_path, monkeypatch):
    calls = []

    def boom(path, text):
        calls.append(path)
        raise OSError("disk full")

    monkeypatch.setattr(report_mod, "write_text", boom)
    out = tmp_path / "out"
    with pytest.raises(OSError):
        _report().write(out)
    assert calls and not out.exists()
    assert os.listdir(tmp_path) == []  # no temp directory left behind either


def test_failed_rewrite_keeps_the_old_report(tmp_path, monkeypatch):
    out = tmp_path / "out"
    Report("old").write(out)
    old = (out / "index.html").read_text()
    real = report_mod.write_csv

    def fail_second(path, rows):
        if path.name == "numbers.csv":
            raise RuntimeError("interrupted")
        real(path, rows)

    monkeypatch.setattr(report_mod, "write_csv", fail_second)
    with pytest.raises(RuntimeError):
        _report().write(out)
    assert (out / "index.html").read_text() == old
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_rewrite_replaces_files(tmp_path):
    out = tmp_path / "out"
    Report("first").write(out)
    _report().write(out)
    assert "Unit report" in (out / "index.html").read_text() and (out / "numbers.csv").exists()
    assert oct((out / "index.html").stat().st_mode)[-3:] == "644"


def test_assumptions_list_every_assumed_chip_value(tmp_path):
    chip = load_chip("mtia-450")
    variant = chip.scaled(mem_bw=2.0)
    rep = Report("x")
    rep.add_figure(go.Figure(), "c", fidelity="roofline")
    rep.add_assumptions([chip, variant], extra={"stack": "a stated assumption"})
    rows = rep.tables["assumptions"]
    listed = {r["value_of"] for r in rows if r["chip"] == "mtia-450"}
    assert set(chip.assumed_keys) <= listed and "what-if mem_bw" in listed
    assert any(r["value_of"] == "stack" for r in rows)
    page = rep.render()
    assert "Fidelity and assumptions" in page and "roofline" in page


def test_bad_table_names_and_out_path(tmp_path):
    rep = Report("x")
    with pytest.raises(ValueError):
        rep.add_table("../evil", [])
    rep.add_table("ok", [])
    with pytest.raises(ValueError):
        rep.add_table("ok", [])
    (tmp_path / "file").write_text("x")
    from accelsim.errors import UserError

    with pytest.raises(UserError):
        rep.write(tmp_path / "file")
