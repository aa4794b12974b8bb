"""The pieces behind the hostile-input promise, one by one: output-path checks, number types, the
tuning store's refusal of foreign databases, simulation bounds, the --drain warning, and the
dashboard's HTTP answers to forged callback bodies."""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
from pathlib import Path

import pytest

from accelsim import validate as V
from accelsim.cli import main
from accelsim.errors import UserError
from accelsim.io import check_input_file, check_output_path


# -- paths ------------------------------------------------------------------------------------------
def test_output_path_checks_create_nothing(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    bad = {"": "empty", str(f / "x.csv"): "which is a file", "/proc/x.csv": "under /proc", str(tmp_path): "directory",
           str(tmp_path / ("n" * 256)): "longer than 255", str(tmp_path / "a\nb"): "control character",
           "/sys/kernel/x": "under /sys"}
    for path, why in bad.items():
        with pytest.raises(ValueError, match=why):
            check_output_path(path, "file")
    with pytest.raises(ValueError, match="not a directory"):
        check_output_path(f, "dir")
    deep = tmp_path / "new" / "deeper" / "out.csv"
    assert check_output_path(deep, "file") == deep and not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_input_file_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a directory"):
        check_input_file(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        check_input_file(tmp_path / "nope")
    with pytest.raises(ValueError, match="not a regular file"):
        check_input_file("/dev/null")


# -- numbers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "0", "-1", "1e400", "x", "", "9" * 70, "1e6000"])
def test_positive_number_type_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        V.number(hi=1e6)(text)


def test_number_types_accept_the_range_and_state_it() -> None:
    assert V.number(hi=10.0)("10") == 10.0 and V.count(lo=0, hi=3)("0") == 0 and V.seed("0") == 0
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be in \[1, 4096\], got 4097"):
        V.count(hi=4096)("4097")
    with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
        V.count()("2.5")
    assert V.check_range(0.5, "x", lo=0, hi=1) == 0.5
    with pytest.raises(UserError, match="finite"):
        V.check_range(math.nan, "x", lo=0, hi=1, exc=UserError)


# -- the tuning store -------------------------------------------------------------------------------
def _foreign(path: Path, table: str = "notes") -> bytes:
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {table} (a INTEGER, b TEXT)")
        db.execute(f"INSERT INTO {table} VALUES (1, 'mine')")
    db.close()
    return path.read_bytes()


@pytest.mark.parametrize("table", ["notes", "results"])
def test_store_leaves_a_foreign_database_untouched(tmp_path: Path, table: str) -> None:
    from accelsim.tune.store import ResultStore

    path = tmp_path / "theirs.sqlite"
    before = _foreign(path, table)
    with pytest.raises(UserError, match="not an accelsim tuning store"):
        ResultStore(path, {"device": "x"})
    assert path.read_bytes() == before  # no table added, journal mode not switched to WAL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.sqlite"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()


def test_store_marks_its_own_and_refuses_another_app_or_version(tmp_path: Path) -> None:
    from accelsim.tune.store import APPLICATION_ID, SCHEMA_VERSION, ResultStore

    own = tmp_path / "own.sqlite"
    ResultStore(own).close()
    ResultStore(own).close()  # reopening its own file is fine
    with sqlite3.connect(own) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(UserError, match="schema version"):
        ResultStore(own)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("PRAGMA application_id = 1234")
    db.close()
    with pytest.raises(UserError, match="another program"):
        ResultStore(other)


def test_store_adopts_an_unmarked_store_of_its_own_schema(tmp_path: Path) -> None:
    """Stores written before the marker existed hold exactly the schema: they are claimed, rows kept."""
    from accelsim.tune import store as S

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(S._SCHEMA)
        db.execute("INSERT INTO fingerprints VALUES ('k', '{}')")
    db.close()
    with S.ResultStore(path) as st:
        assert st.count() == 0 and st.integrity_ok()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == S.APPLICATION_ID
        assert db.execute("SELECT COUNT(*) FROM fingerprints").fetchone()[0] == 1
    db.close()


# -- simulation bounds ------------------------------------------------------------------------------
def test_bounds_estimate_matches_the_traffic(capsys: pytest.CaptureFixture[str]) -> None:
    from accelsim.serve import bounds
    from accelsim.serve.config import ReplicaGroup, SimConfig, Traffic
    from accelsim.serve.failures import FailureModel

    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", replicas=2),), traffic=Traffic(rate_per_s=50.0),
                    duration_s=1000.0, failures=FailureModel.default())
    est = bounds.expected_serving(cfg, drain_limit=20.0)
    assert est["requests"] == pytest.approx(50_000) and est["bins"] == pytest.approx(200)
    assert est["failure_events"] == pytest.approx(FailureModel.default().rate_per_s(2) * 1000.0)
    big = SimConfig(groups=cfg.groups, traffic=Traffic(rate_per_s=1e6), duration_s=100.0)
    with pytest.raises(UserError, match="requests, over the limit"):
        bounds.check_serving(big, 20.0)
    assert bounds.check_serving(big, 20.0, force=True)["requests"] == pytest.approx(1e8)


def test_simulate_refuses_an_unbounded_run_before_simulating(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--arrival-rate", "1e6",
            "--duration", "3d"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err


def test_drain_that_stops_early_warns(capsys: pytest.CaptureFixture[str]) -> None:
    """500 requests/s of 1000-token outputs overload one H100 serving Llama 3 8B: the drain limit
    (20 x duration) ends the run with requests unfinished, and the summary and stderr say so."""
    code = main(["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--arrival-rate", "500",
                 "--duration", "2", "--drain", "--failures", "none", "--json"])
    out, err = capsys.readouterr()
    s = json.loads(out)
    assert code == 0 and s["unfinished_requests"] == s["requests_arrived"] - s["requests_completed"] > 0
    assert "warning: --drain stopped" in err and err.count("\n") == 1


def test_training_bound(capsys: pytest.CaptureFixture[str]) -> None:
    from accelsim.serve.bounds import MAX_TRAINING_EVENTS, expected_training

    assert expected_training(86400.0, 1e-9, 0.0, math.inf) > MAX_TRAINING_EVENTS
    assert expected_training(86400.0, 3600.0, 30.0, 3600.0) == pytest.approx(86400 / 3630 + 24 + 1)


# -- the dashboard's HTTP edge ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def dash_client() -> object:
    pytest.importorskip("dash")
    from accelsim.dashboard.app import create_app

    app = create_app()
    return app, app.server.test_client()


def _body(app: object, values: dict[str, object]) -> dict[str, object]:
    from accelsim.dashboard.app import CONTROL_IDS

    key = next(iter(app.callback_map))  # type: ignore[attr-defined]
    outs = [dict(zip(("id", "property"), o.split("."))) for o in key.strip(".").split("...")]
    return {"output": key, "outputs": outs, "changedPropIds": ["mem_bw.value"],
            "inputs": [{"id": i, "property": "value", "value": values.get(i)} for i in CONTROL_IDS]}


def _good() -> dict[str, object]:
    """The page's default control values, as the browser sends them (sliders as log2 0)."""
    from accelsim.dashboard.app import CONTROL_IDS, SLIDERS
    from accelsim.dashboard.controls import DEFAULTS

    special = {k: 0 for k, _ in SLIDERS} | {"site_power_mw": DEFAULTS.site_power_w / 1e6, "tp": "auto",
                                            "model": "llama3-8b"}
    return {k: special.get(k, getattr(DEFAULTS, k, None)) for k in CONTROL_IDS}


def test_forged_slider_is_clamped_not_a_500(dash_client: tuple[object, object]) -> None:
    app, client = dash_client
    r = client.post("/_dash-update-component", json=_body(app, _good() | {"mem_bw": 1e308}))  # type: ignore[attr-defined]
    assert r.status_code == 200
    assert "4×" in r.get_data(as_text=True) or "4x" in r.get_data(as_text=True)


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"output": "nosuch", "inputs": []}', b'{"output": 3}'])
def test_malformed_callback_is_400_with_one_line(dash_client: tuple[object, object], body: bytes) -> None:
    _, client = dash_client
    r = client.post("/_dash-update-component", data=body, content_type="application/json")  # type: ignore[attr-defined]
    assert r.status_code == 400 and "Traceback" not in r.get_data(as_text=True)


def test_huge_callback_body_is_refused_unread(dash_client: tuple[object, object]) -> None:
    app, client = dash_client
    r = client.post("/_dash-update-component", json=_body(app, _good() | {"input_len": "9" * 5_000_000}))  # type: ignore[attr-defined]
    assert r.status_code == 413


def test_long_field_message_is_cut_short(dash_client: tuple[object, object]) -> None:
    app, client = dash_client
    r = client.post("/_dash-update-component", json=_body(app, _good() | {"input_len": "x" * 100_000}))  # type: ignore[attr-defined]
    text = r.get_data(as_text=True)
    assert r.status_code == 200 and "is not a number" in text and "x" * 100 not in text


def test_dashboard_bind_rules(capsys: pytest.CaptureFixture[str]) -> None:
    from accelsim.dashboard.cli import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    assert main(["dashboard", "--host", "0.0.0.0"]) == 2
    assert "--expose" in capsys.readouterr().err
    assert main(["dashboard", "--host", "0.0.0.0", "--expose", "--debug"]) == 2
    assert "Werkzeug debugger" in capsys.readouterr().err
