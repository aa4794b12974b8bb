"""The `accelsim study` contract: study files, params and [reduced], the runner call, executors, errors."""

import json
import sys
import types

import plotly.graph_objects as go
import pytest

from accelsim.cli import main
from accelsim.errors import UserError
from accelsim.report import Report
from accelsim.study import sweep
from accelsim.study.run import run_study
from accelsim.study.spec import load_study, parse_override

SEEN = {}


def toy_runner(params, *, reduced):
    SEEN.update(params=params, reduced=reduced)
    rep = Report(params["title"])
    rep.add_figure(go.Figure(go.Scatter(x=[1], y=[params["n"]], name="toy-trace"), layout={"title": "Toy"}), "c")
    rep.add_table("toy", [{"n": params["n"]}])
    return rep


def toy_executor_runner(params, *, reduced, executor):
    out = executor.map(_square, [1, 2, 3], label="toy")
    rep = Report("sq")
    rep.add_table("squares", [{"x": x} for x in out])
    return rep


def _square(x):
    return x * x


def not_a_report(params, *, reduced):
    return {"oops": 1}


def _study(tmp_path, runner="toy_runner", extra=""):
    path = tmp_path / "toy.toml"
    path.write_text(f'title = "Toy"\ndescription = "Opening words."\nrunner = "{__name__}:{runner}"\n'
                    f'[params]\ntitle = "Toy report"\nn = 3\n[reduced]\nn = 1\n{extra}')
    return path


def test_params_reduced_and_overrides(tmp_path):
    path = _study(tmp_path)
    res = run_study(str(path), tmp_path / "a")
    assert SEEN == {"params": {"title": "Toy report", "n": 3}, "reduced": False}
    res = run_study(str(path), tmp_path / "b", reduced=True)
    assert SEEN["params"]["n"] == 1 and SEEN["reduced"] is True
    res = run_study(str(path), tmp_path / "c", overrides={"n": 7})
    assert SEEN["params"]["n"] == 7
    page = res.report.read_text()
    assert "Opening words." in page and page.index("Opening words.") < page.index("toy-trace")
    assert (tmp_path / "c" / "toy.csv").read_text().splitlines() == ["n", "7"]


def test_runner_with_executor_gets_one(tmp_path):
    res = run_study(str(_study(tmp_path, "toy_executor_runner")), tmp_path / "o")
    assert (res.report.parent / "squares.csv").read_text().split() == ["x", "1", "4", "9"]


@pytest.mark.parametrize("runner,extra,match", [
    ("not_a_report", "", "expected accelsim.report.Report"),
    ("missing_function", "", "has no function"),
    ("toy_runner", "m = 2\n", "overrides no key"),
])
def test_bad_study_files(tmp_path, runner, extra, match):
    path = _study(tmp_path, runner, extra)
    with pytest.raises(UserError, match=match):
        run_study(str(path), tmp_path / "o")
    assert not (tmp_path / "o" / "index.html").exists()


def test_unknown_override_and_parse():
    spec = load_study("mtia_roadmap")
    with pytest.raises(UserError, match="no parameter"):
        spec.resolved_params(False, {"nope": 1})
    assert parse_override("chips=[\"mtia-450\"]") == ("chips", ["mtia-450"])
    assert parse_override("input_len=2000") == ("input_len", 2000)
    assert parse_override("stack=trtllm-fp8") == ("stack", "trtllm-fp8")
    with pytest.raises(UserError):
        parse_override("noequals")


def test_cli_prints_report_path_and_json(tmp_path, capsys):
    path = _study(tmp_path)
    assert main(["study", str(path), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == str(tmp_path / "o" / "index.html")
    assert main(["study", str(path), "--out", str(tmp_path / "j"), "--reduced", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["reduced"] and d["params"]["n"] == 1 and d["tables"] == [str(tmp_path / "j" / "toy.csv")]


@pytest.mark.parametrize("argv", [["study", "no_such_study", "--out", "x"],
                                  ["study", "missing.toml", "--out", "x"],
                                  ["study", "mtia_roadmap", "--out", "x", "--set", "bogus=1"]])
def test_cli_bad_input_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_ray_missing_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert main(["study", str(_study(tmp_path)), "--out", str(tmp_path / "o"), "--ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install ray" in err


def test_ray_executor_with_a_stand_in_ray(tmp_path, monkeypatch):
    """The Ray path (remote, wait, get, order kept, shutdown) against a minimal stand-in module."""
    log = []

    class Ref:
        def __init__(self, v):
            self.v = v

    fake = types.SimpleNamespace(
        is_initialized=lambda: False,
        init=lambda address=None, **kw: log.append(("init", address)),
        remote=lambda fn: types.SimpleNamespace(remote=lambda x: Ref(fn(x))),
        wait=lambda pending, num_returns=1: (pending[:num_returns], pending[num_returns:]),
        get=lambda refs: [r.v for r in refs],
        shutdown=lambda: log.append(("shutdown",)),
    )
    monkeypatch.setitem(sys.modules, "ray", fake)
    res = run_study(str(_study(tmp_path, "toy_executor_runner")), tmp_path / "o", ray="10.0.0.1:6379")
    assert (res.report.parent / "squares.csv").read_text().split() == ["x", "1", "4", "9"]
    assert log == [("init", "10.0.0.1:6379"), ("shutdown",)]
    ex = sweep.make_executor("local")
    assert ex.name == "ray" and log[-1] == ("init", None)
    ex.close()
