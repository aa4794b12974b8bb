"""`plan` for a demand in requests/s, with serving modes: the fewest whole replicas that serve it."""

from __future__ import annotations

import json

import pytest

from accelsim.cli import main


def _plan(capsys, *extra: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert main(["plan", "--hw", "mtia-450", "--model", "llama4-maverick", "--max-tpot", "0.05", "--json",
                 *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_requests_per_s_is_tokens_per_s_over_output_len_and_the_fewest_replicas(capsys) -> None:  # type: ignore[no-untyped-def]
    by_req = _plan(capsys, "--demand-requests-per-s", "700", "--output-len", "500")
    by_tok = _plan(capsys, "--demand-tokens-per-s", "350000", "--output-len", "500")
    assert by_req["chips"] == by_tok["chips"] and by_req["demand_tokens_per_s"] == pytest.approx(350000)
    per_replica = by_req["servable_tokens_per_s"] / (by_req["chips"] / by_req["replica"]["chips"])
    replicas = by_req["chips"] // by_req["replica"]["chips"]
    assert replicas * per_replica >= 350000 > (replicas - 1) * per_replica  # one replica fewer falls short


def test_modes_reach_the_planners_search(capsys) -> None:  # type: ignore[no-untyped-def]
    plain = _plan(capsys, "--demand-requests-per-s", "700")
    wide = _plan(capsys, "--demand-requests-per-s", "700", "--attention-dp")
    spec = _plan(capsys, "--demand-requests-per-s", "700", "--spec-decode", "mtp=2,accept=0.8")
    assert wide["chips"] <= plain["chips"] and spec["chips"] <= plain["chips"]
    assert spec["chips"] < plain["chips"]  # two MTP drafts at 80% acceptance: fewer decode steps per token
