"""Failures: counts and availability against the configured rates (Poisson / renewal bounds),
the default model against the Llama 3 table, retries conserve work, bad failure files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from serve_helpers import EFF

from accelsim.errors import UserError
from accelsim.serve.cluster import simulate
from accelsim.serve.config import ReplicaGroup, SimConfig, Traffic
from accelsim.serve.failures import Component, FailureModel, load_failures

MODEL = FailureModel((Component("a", 0.01, 600.0), Component("b", 0.02, 1800.0)), "test")


def test_failure_counts_and_availability_match_rates() -> None:
    reps, chips, hours = 4, 8, 3000.0
    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", replicas=reps, tp=chips),), traffic=None,
                    duration_s=hours * 3600, failures=MODEL, seed=11)
    s = simulate(cfg, EFF).summary
    n = s["interruptions"]
    # Failures arrive as a Poisson process in up-time: N ~ Poisson(rate x up-time) given the up-time.
    up_chip_h = s["availability"] * reps * chips * hours
    expected = MODEL.rate_per_chip_hour * up_chip_h
    assert abs(n - expected) < 4 * math.sqrt(expected)
    # Each failure is component a with probability 1/3: binomial bound.
    k = s["interruptions_by_component"]["a"]
    assert abs(k - n / 3) < 4 * math.sqrt(n * (1 / 3) * (2 / 3))
    # Alternating renewal: availability = MTBF / (MTBF + mean repair); cycle-level CLT bound.
    mtbf = 3600 / (chips * MODEL.rate_per_chip_hour)
    mean_r = (600 + 2 * 1800) / 3
    a = mtbf / (mtbf + mean_r)
    var_r = (600**2 + 2 * 1800**2) / 3 - mean_r**2
    sd = math.sqrt((mtbf**2 * (1 - a) ** 2 + var_r * a**2) / n) / (mtbf + mean_r)
    assert abs(s["availability"] - a) < 4 * sd


def test_failed_replicas_requests_are_retried_and_work_is_conserved() -> None:
    fm = FailureModel((Component("chip", 30.0, 20.0),), "test")  # ~ one failure per 2 min per chip
    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", replicas=3),),
                    traffic=Traffic(rate_per_s=4.0, input_len=300, output_len=300), duration_s=600.0,
                    failures=fm, drain=True, seed=2)
    r = simulate(cfg, EFF)
    s, rec = r.summary, r.recorder
    assert s["interruptions"] > 5 and s["retries"] > 0
    assert s["requests_completed"] == s["requests_arrived"]  # every request finishes somewhere
    # every token generated either belongs to a finished request or was lost with a failed replica
    assert rec.tokens_total == rec.stream.output_len.sum() + rec.tokens_lost
    assert rec.tokens_lost > 0
    assert s["availability"] < 1.0
    assert s["goodput_tokens_per_s"] <= s["throughput_tokens_per_s"]


def test_requests_wait_while_the_only_replica_is_down() -> None:
    # Up ~60 s, down 20 s (availability 3/4): requests arriving during a repair wait at the router.
    fm = FailureModel((Component("chip", 60.0, 20.0),), "test")
    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b"),),
                    traffic=Traffic(rate_per_s=2.0, input_len=100, output_len=20), duration_s=300.0,
                    failures=fm, drain=True, seed=1)
    r = simulate(cfg, EFF)
    assert r.summary["requests_completed"] == r.summary["requests_arrived"]
    ttft = r.recorder.ttft_s()
    assert 5.0 < np.nanmax(ttft) < 20.5 + 1.0  # somebody waited out (part of) a repair, never more
    assert r.summary["ttft_p50_s"] < 0.1  # most arrive while it is up


def test_default_model_reproduces_the_llama3_table() -> None:
    fm = FailureModel.default()
    exposure = 16_384 * 54 * 24
    assert fm.rate_per_chip_hour * exposure == pytest.approx(419)
    counts = {c.name: c.rate_per_chip_hour * exposure for c in fm.components}
    assert counts == pytest.approx({"chip": 196, "hbm": 72, "host": 53, "network": 42, "software": 56})
    assert counts["hbm"] / 419 == pytest.approx(0.172, abs=1e-3)  # the table's 17.2% for HBM3
    assert fm.mtbf_s(16_384) / 3600 == pytest.approx(3.09, abs=0.01)  # job MTBI 3.09 h (reference §5.1)


def test_failure_files(tmp_path) -> None:
    good = tmp_path / "f.toml"
    good.write_text("[chip]\nrate_per_chip_hour = 1e-4\nrepair_s = 3600\n[net]\nrate_per_chip_hour = 0\nrepair_s = 1\n")
    fm = load_failures(str(good))
    assert fm.rate_per_chip_hour == pytest.approx(1e-4) and fm.mean_repair_s == pytest.approx(3600)
    assert load_failures("none").rate_per_chip_hour == 0
    bad = {
        "[chip]\nrate_per_chip_hour = -1\nrepair_s = 1\n": r"'chip.rate_per_chip_hour' = -1 is out of range \[0,",
        "[chip]\nrate_per_chip_hour = 1\n": "'chip.repair_s' is missing",
        "[chip]\nrate_per_chip_hour = inf\nrepair_s = 1\n": "must be a finite number",
        "[chip]\nrate = 1\nrepair_s = 1\n": "'chip.rate_per_chip_hour' is missing",
        "[chip]\nrate_per_chip_hour = 1\nrepair_s = 1\nrate = 2\n": "unknown key 'chip.rate'",
        "chip = 3\n": "must be a table",
        "[chip\n": "not valid TOML",
        "": "defines no component",
    }
    for text, msg in bad.items():
        p = tmp_path / "bad.toml"
        p.write_text(text)
        with pytest.raises(UserError, match=msg) as e:
            load_failures(str(p))
        assert "\n" not in str(e.value)
    with pytest.raises(UserError, match="neither default, none"):
        load_failures(str(tmp_path / "missing.toml"))
