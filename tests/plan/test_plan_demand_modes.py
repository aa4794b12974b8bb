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


def test_disaggregated_plan_sizes_each_pool_with_the_fewest_chips() -> None:
    import math

    from accelsim.disagg import decode_stages, prefill_stages
    from accelsim.graph import Precision
    from accelsim.modes import PLAIN
    from accelsim.plan.disagg import plan_disagg
    from accelsim.spec import load_chip, load_model
    from accelsim.stacks import load_stack

    a, b, model, eff = load_chip("mtia-400"), load_chip("mtia-450"), load_model("llama4-maverick"), load_stack()
    r = plan_disagg(a, b, model, demand_tokens_per_s=500_000, eff=eff, dtype="fp8", max_tpot=0.05, headroom=0.1)
    need = 500_000 * 1.1 / 1000
    prec = Precision.for_serving("fp8")
    for role, stages in (("prefill", prefill_stages(a, model, prec, eff, 1000, PLAIN)),
                         ("decode", decode_stages(b, model, prec, eff, 1000, 1000, PLAIN, max_tpot=0.05))):
        pool = r[role]
        assert pool["chips"] == min(math.ceil(need / s.rate_req_s) * s.layout.chips for s in stages)
        assert pool["requests_per_s"] >= need > pool["requests_per_s"] * (pool["replicas"] - 1) / pool["replicas"]
    assert r["chips"] == r["prefill"]["chips"] + r["decode"]["chips"] and r["kv_link_carries_demand"]


def test_plan_cli_disagg(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["plan", "--model", "llama4-maverick", "--disagg", "mtia-400,mtia-450", "--demand-requests-per-s",
                 "500", "--max-tpot", "0.05", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["disaggregated"] and r["demand_tokens_per_s"] == pytest.approx(500_000)
    assert main(["plan", "--model", "llama4-maverick", "--disagg", "mtia-400:4,mtia-450:8",
                 "--demand-requests-per-s", "5"]) == 2
    assert main(["plan", "--model", "llama4-maverick", "--demand-requests-per-s", "5"]) == 2
