"""Disaggregated prefill/decode in `predict` against the tandem closed form: the pools' rates,
computed here from their own step costs, and throughput = the slower pool's rate."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.disagg import best_split, parse_disagg, predict_disagg
from accelsim.errors import UserError
from accelsim.graph import Precision, llm_ops
from accelsim.perf import HwVec, cost
from accelsim.predict import CHUNK_TOKENS
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack

L, OUT = 1000, 1000


def _t(c: object) -> float:
    return float(np.ravel(c)[0])


@pytest.mark.parametrize(("n_p", "n_d"), [(16, 32), (8, 64), (32, 8)])
def test_throughput_is_the_slower_pools_rate(n_p: int, n_d: int) -> None:
    eff, model, prec = load_stack(), load_model("llama4-maverick"), Precision.for_serving("fp8")
    a, b = load_chip("mtia-400"), load_chip("mtia-450")
    r = predict_disagg(a, n_p, b, n_d, model, eff=eff, dtype="fp8", input_len=L, output_len=OUT)
    p, d = r.prefill.stage, r.decode.stage
    # prefill pool: replicas x prompts per full chunk / chunk time
    chunk = cost(llm_ops(model, p.layout, prec, "prefill", CHUNK_TOKENS, L / 2, prefill_sequences=CHUNK_TOKENS / L),
                 HwVec.from_chips([a]), eff)
    r_p = (n_p // p.layout.chips) * (CHUNK_TOKENS / L) / _t(chunk.total_s)
    # decode pool: replicas x batch / step time / the OUT - 1 tokens after the prefill's first
    step = cost(llm_ops(model, d.layout, prec, "decode", d.batch, L + OUT / 2), HwVec.from_chips([b]), eff)
    r_d = (n_d // d.layout.chips) * d.batch / _t(step.total_s) / (OUT - 1)
    assert r.prefill.rate_req_s == pytest.approx(r_p, rel=1e-9)
    assert r.decode.rate_req_s == pytest.approx(r_d, rel=1e-9)
    assert r.throughput == pytest.approx(min(r_p, r_d, r.link.rate_req_s) * OUT, rel=1e-9)
    assert r.bottleneck == ("prefill" if r_p < r_d else "decode")
    # the faster pool idles for the rest: its utilisation is the ratio of the rates
    slow, fast = sorted((r_p, r_d))
    pools = r.to_dict()
    assert max(pools["prefill"]["utilisation"], pools["decode"]["utilisation"]) == pytest.approx(1.0)
    assert min(pools["prefill"]["utilisation"], pools["decode"]["utilisation"]) == pytest.approx(slow / fast)


def test_the_split_search_is_at_least_every_fixed_split() -> None:
    eff, model = load_stack(), load_model("llama4-scout")
    a, b = load_chip("h100-sxm"), load_chip("h200-sxm")
    best = best_split(a, b, 16, model, eff=eff, dtype="fp8")
    for n_p in (2, 4, 8, 12):
        fixed = predict_disagg(a, n_p, b, 16 - n_p, model, eff=eff, dtype="fp8")
        assert best.throughput >= fixed.throughput * (1 - 1e-12)
    assert best.chips == 16


def test_kv_crosses_scale_out_between_families() -> None:
    eff, model = load_stack(), load_model("llama4-scout")
    r = predict_disagg(load_chip("mtia-400"), 8, load_chip("h200-sxm"), 8, model, eff=eff, dtype="fp8")
    assert r.link.fabric == "scale-out"
    nics = min(load_chip("mtia-400").scale_out_bw_bytes_per_s, load_chip("h200-sxm").scale_out_bw_bytes_per_s)
    assert r.link.bytes_per_s == pytest.approx(8 * nics * eff.network_eff)  # the narrower pool's NICs bind


@pytest.mark.parametrize("text", ["mtia-400:8", "mtia-400:8,mtia-450", "a:0,b:3", "a:x,b:2", "a,b,c"])
def test_bad_disagg_is_one_user_error(text: str) -> None:
    with pytest.raises(UserError, match="--disagg"):
        parse_disagg(text)


def test_predict_cli_disagg_and_mode_flags(capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from accelsim.cli import main

    assert main(["predict", "--model", "llama4-scout", "--disagg", "h100-sxm:8,h200-sxm:8", "--dtype", "fp8",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["mode"] == "disaggregated" and d["chips"] == 16 and d["bottleneck"] in ("prefill", "decode", "kv_transfer")
    assert d["throughput_tokens_per_s"] == pytest.approx(d["requests_per_s"] * d["output_len"])
    assert main(["predict", "--model", "llama4-scout", "--disagg", "h100-sxm,h200-sxm", "--chips", "16",
                 "--dtype", "fp8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chips"] == 16
    assert main(["predict", "--hw", "h200-sxm", "--model", "llama4-maverick", "--chips", "8", "--dtype", "fp8",
                 "--attention-dp", "--spec-decode", "mtp=2,accept=0.8", "--prefix-hit", "0.5", "--image-tokens",
                 "144"]) == 0
    assert "dp=8" in capsys.readouterr().out
    for bad in (["--spec-decode", "mtp=2"], ["--prefix-hit", "1.5"], ["--image-tokens", "-1"]):
        assert main(["predict", "--hw", "h200-sxm", "--model", "llama3-8b", "--chips", "1", *bad]) == 2
    assert main(["predict", "--model", "llama3-8b", "--disagg", "h100-sxm:1"]) == 2
    assert main(["predict", "--model", "llama3-8b"]) == 2
