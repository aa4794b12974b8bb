"""The front against a brute-force dominance check and against the one search's best point."""

from __future__ import annotations

import json

import pytest

from accelsim.cli import main
from accelsim.pareto import front, pareto, points
from accelsim.search import Query, best
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack


def test_front_is_exactly_the_non_dominated_points() -> None:
    chip, model, eff = load_chip("h200-sxm"), load_model("llama4-scout"), load_stack()
    allp = points(chip, Query(model, eff, "fp8", max_tpot=0.1), 8)
    f = front(allp)
    dominated = lambda p: any(q.tokens_per_s_per_user >= p.tokens_per_s_per_user
                              and q.tokens_per_s_per_chip > p.tokens_per_s_per_chip for q in allp)
    assert set(map(id, f)) == {id(p) for p in allp if not dominated(p)}
    assert len(f) >= 3


def test_the_fronts_fastest_per_chip_point_is_the_searchs_best() -> None:
    chip, model, eff = load_chip("mtia-450"), load_model("llama4-maverick"), load_stack()
    r = pareto(chip, model, eff=eff, chips=16, max_ttft=2.0, max_tpot=0.05)
    top = max(r["points"], key=lambda p: p["tokens_per_s_per_chip"])
    b = best(chip, Query(model, eff, "fp8", max_ttft=2.0, max_tpot=0.05), total_chips=16)
    assert top["tokens_per_s_per_chip"] == pytest.approx(b.rate_per_chip, rel=1e-9)
    assert all(p["tpot_s"] <= 0.05 and p["ttft_s"] <= 2.0 for p in r["points"])


def test_pareto_cli_json_and_chart(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    html = tmp_path / "front.html"
    assert main(["pareto", "--hw", "h100-sxm", "--model", "llama3-70b", "--max-tpot", "0.1", "--json",
                 "--html", str(html)]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"tokens_per_s_per_chip", "tokens_per_s_per_user", "layout", "batch"} <= set(r["points"][0])
    assert "plotly" in html.read_text()
    assert main(["pareto", "--hw", "h100-sxm", "--model", "dlrm-v2"]) == 2
