"""The `accelsim simulate` / `simulate-training` commands, reproducibility, workloads, bad inputs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from serve_helpers import write_trace

from accelsim.cli import main
from accelsim.errors import UserError
from accelsim.serve.cluster import simulate
from accelsim.serve.config import ReplicaGroup, SimConfig, Traffic, load_cluster
from accelsim.serve.workload import arrival_times, lengths, read_trace

KEYS = ("requests_completed", "throughput_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
        "mean_power_w", "energy_j", "availability", "interruptions", "fidelity")
BASE = ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "2", "--tp", "1", "--arrival-rate", "4",
        "--input-len", "300", "--output-len", "50", "--duration", "20"]


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_json_and_out_files(capsys, tmp_path) -> None:
    s = _json(capsys, [*BASE, "--json", "--out", str(tmp_path)])
    assert all(k in s for k in KEYS)
    assert s["replicas"] == 2 and s["chips"] == 2 and s["fidelity"] == "calibrated"  # H100 ships its own profile
    with open(tmp_path / "requests.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == s["requests_arrived"]
    done = [r for r in rows if r["finish_s"] != "nan"]
    assert len(done) == s["requests_completed"]
    with open(tmp_path / "timeseries.csv", newline="") as fh:
        ts = list(csv.DictReader(fh))
    assert len(ts) == 200  # duration / 200 bins by default
    mean_power = np.mean([float(r["power_w"]) for r in ts])
    assert mean_power == pytest.approx(s["mean_power_w"], rel=1e-9)
    assert json.loads((tmp_path / "summary.json").read_text())["requests_completed"] == s["requests_completed"]


def test_out_is_all_or_nothing_when_interrupted_mid_write(capsys, tmp_path, monkeypatch) -> None:
    """An interrupt after requests.csv is written but before timeseries.csv leaves no --out directory
    and no temporary one; into an existing directory, its earlier files are left as they were."""
    from accelsim.serve import recorder

    real = recorder.csv.DictWriter

    def broken(*a, **k):  # the timeseries writer: requests.csv is already on disk by now
        raise KeyboardInterrupt

    monkeypatch.setattr(recorder.csv, "DictWriter", broken)
    out = tmp_path / "run"
    assert main([*BASE, "--json", "--out", str(out)]) == 130
    assert list(tmp_path.iterdir()) == []
    old = tmp_path / "old"
    old.mkdir()
    (old / "requests.csv").write_text("earlier run\n")
    assert main([*BASE, "--json", "--out", str(old)]) == 130
    assert [f.name for f in old.iterdir()] == ["requests.csv"] and (old / "requests.csv").read_text() == "earlier run\n"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["old"]
    monkeypatch.setattr(recorder.csv, "DictWriter", real)
    assert main([*BASE, "--json", "--out", str(out)]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["requests.csv", "summary.json", "timeseries.csv"]
    capsys.readouterr()


def test_same_seed_same_result_different_seed_different(capsys) -> None:
    a = _json(capsys, [*BASE, "--json", "--seed", "7", "--failures", "default"])
    b = _json(capsys, [*BASE, "--json", "--seed", "7", "--failures", "default"])
    c = _json(capsys, [*BASE, "--json", "--seed", "8", "--failures", "default"])
    for d in (a, b, c):
        d.pop("wall_s")
    assert a == b
    assert a != c


def test_training_command(capsys) -> None:
    s = _json(capsys, ["simulate-training", "--chips", "16384", "--duration", "10d", "--json"])
    assert s["interruptions_per_day"] > 0 and 0.5 < s["effective_fraction"] < 1
    assert s["expected_interruptions_per_day"] == pytest.approx(419 / 54)


def test_ranking_only_and_cluster_file(capsys, tmp_path) -> None:
    s = _json(capsys, ["simulate", "--hw", "h100-sxm", "--model", "dlrm-v2", "--chips", "2", "--arrival-rate",
                       "100", "--duration", "2", "--json"])
    assert s["ranking_requests_completed"] > 100
    f = tmp_path / "c.toml"
    f.write_text('[[llm]]\nhw = "h100-sxm"\nmodel = "llama3-8b"\nreplicas = 2\n'
                 '[[llm]]\nhw = "h200-sxm"\nmodel = "llama3-8b"\nreplicas = 1\n')
    s = _json(capsys, ["simulate", "--cluster", str(f), "--arrival-rate", "6", "--duration", "20", "--json",
                       "--failures", "none", "--router", "round-robin", "--input-len", "200", "--output-len", "50"])
    assert s["replicas"] == 3 and [g["hw"] for g in s["groups"]] == ["h100-sxm", "h200-sxm"]
    assert s["requests_completed"] > 50


BAD = [
    (["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "3", "--tp", "2", "--arrival-rate", "1",
      "--duration", "5"], "must equal replicas x tp x pp"),
    (["simulate", "--hw", "nope", "--model", "llama3-8b", "--chips", "1", "--arrival-rate", "1", "--duration", "5"],
     "unknown chip"),
    ([*BASE[:-2], "--duration", "-5"], "--duration"),
    ([*BASE, "--arrival-rate", "0"], "--arrival-rate: must be in (0"),
    ([*BASE, "--failures", "missing.toml"], "neither default, none"),
    ([*BASE, "--arrival", "gamma", "--cv", "0"], "--cv: must be in (0"),
    ([*BASE, "--power-cap-w", "10"], "at or below the fleet's idle power"),
    (["simulate", "--model", "llama3-8b", "--chips", "1", "--arrival-rate", "1", "--duration", "5"], "give --hw"),
    (["simulate", "--hw", "h100-sxm", "--model", "llama3.1-405b", "--chips", "1", "--arrival-rate", "1",
      "--duration", "5"], "does not fit"),
    ([*BASE, "--trace", "missing.csv"], "'missing.csv' does not exist"),
    ([*BASE, "--ranking-model", "dlrm-v2"], "both --ranking-model and --ranking-rate"),
    (["simulate-training", "--chips", "8", "--duration", "1d", "--checkpoint-interval", "soon"],
     "--checkpoint-interval"),
    (["simulate-training", "--chips", "0", "--duration", "1d"], "--chips: must be in [1"),
]


@pytest.mark.parametrize(("argv", "msg"), BAD)
def test_bad_inputs_exit_2_with_one_line(capsys, argv: list[str], msg: str) -> None:
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err and "Traceback" not in err


def test_trace_and_cluster_validation(tmp_path) -> None:
    cases = {"arrival_s,input_len\n0,1\n": "header lacks output_len",
             "arrival_s,input_len,output_len\n1,5,5\n0.5,5,5\n": "line 3",
             "arrival_s,input_len,output_len\n0,x,5\n": "line 2",
             "arrival_s,input_len,output_len\n0,0,5\n": ">= 1",
             "arrival_s,input_len,output_len\n": "no requests"}
    for text, msg in cases.items():
        p = tmp_path / "t.csv"
        p.write_text(text)
        with pytest.raises(UserError, match=msg):
            read_trace(str(p))
    for text, msg in {'[[llm]]\nhw = "h100-sxm"\n': "missing required key 'model'",
                      '[[llm]]\nhw = "h100-sxm"\nmodel = "x"\ntp = "4"\n': "'tp' must be int",
                      '[[llm]]\nhw = "h100-sxm"\nmodel = "x"\ncolour = 1\n': "unknown key",
                      '[[gpu]]\nhw = "h100-sxm"\n': "unknown key",
                      '[[llm]]\nhw = "h100-sxm"\nmodel = "x"\nreplicas = 0\n': "replicas must be >= 1"}.items():
        p = tmp_path / "c.toml"
        p.write_text(text)
        with pytest.raises(UserError, match=msg):
            load_cluster(str(p))


def test_trace_drives_arrivals(tmp_path) -> None:
    trace = write_trace(tmp_path / "t.csv", [(0.5, 100, 10), (1.5, 200, 20), (99.0, 10, 1)])
    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b"),), traffic=Traffic(arrival="trace", trace=trace),
                    duration_s=10.0, drain=True)
    r = simulate(cfg)
    assert r.summary["requests_arrived"] == 2  # the third is past the duration
    assert r.recorder.stream.input_len.tolist() == [100, 200]
    assert r.recorder.first_s[0] > 0.5


def test_arrival_and_length_distributions() -> None:
    rng = np.random.default_rng(0)
    t = arrival_times("poisson", 100.0, 1.0, 1000.0, rng)
    n = len(t)
    assert abs(n - 100_000) < 4 * math.sqrt(100_000)
    g = np.diff(arrival_times("gamma", 100.0, 3.0, 1000.0, rng))
    assert g.std() / g.mean() == pytest.approx(3.0, rel=0.05)
    assert g.mean() == pytest.approx(0.01, rel=0.05)
    x = lengths(1000, 0.5, 200_000, rng)
    assert x.mean() == pytest.approx(1000, rel=0.01) and x.std() / x.mean() == pytest.approx(0.5, rel=0.03)
    assert (lengths(7, 0.0, 5, rng) == 7).all()
