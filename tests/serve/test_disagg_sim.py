"""Disaggregated serving in the simulator against the tandem closed form: once saturated, the
prefill and decode pools run in series, so the output rate is the slower pool's rate."""

from __future__ import annotations

import pytest

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.serve.cluster import simulate
from accelsim.serve.config import FailureModel, ReplicaGroup, SimConfig, Traffic
from accelsim.serve.service import LLMService
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack

L, O, C, S = 2000, 200, 8192, 256  # noqa: E741 - prompt, output, prefill tokens per step, decode sequences


def _pool_rates(n_prefill: int, n_decode: int) -> tuple[float, float]:
    """Requests/s of each pool from its own step costs: full prefill chunks of C tokens (prompts
    attend to L/2 on average); a full decode batch of S sequences at mean context L + O/2, each
    needing O - 1 steps after the prefill's first token."""
    eff, model, prec = load_stack(), load_model("llama3-8b"), Precision.for_serving("bf16")
    kw = dict(max_seqs=S, max_tokens=C, max_ctx=L + O)
    pre = LLMService(load_chip("h100-sxm"), model, Parallel(1), prec, eff, **kw)
    dec = LLMService(load_chip("h200-sxm"), model, Parallel(1), prec, eff, **kw)
    r_p = n_prefill * (C / L) / pre.step(0, 0, C, C * L / 2)[0]
    r_d = n_decode * S / (dec.step(S, S * (L + O / 2), 0, 0)[0] * (O - 1))
    return r_p, r_d


@pytest.mark.parametrize(("n_prefill", "n_decode"), [(1, 3), (3, 1)])
def test_disaggregated_throughput_is_the_slower_pools_rate(n_prefill: int, n_decode: int) -> None:
    r_p, r_d = _pool_rates(n_prefill, n_decode)
    groups = (ReplicaGroup("h100-sxm", "llama3-8b", replicas=n_prefill, role="prefill"),
              ReplicaGroup("h200-sxm", "llama3-8b", replicas=n_decode, role="decode"))
    cfg = SimConfig(groups=groups, traffic=Traffic(rate_per_s=3 * min(r_p, r_d), input_len=L, output_len=O,
                                                   length_cv=0), duration_s=200, failures=FailureModel.none())
    s = simulate(cfg).summary
    assert s["throughput_tokens_per_s"] == pytest.approx(min(r_p, r_d) * O, rel=0.03)
    # every request that finished crossed the link once, after its prefill
    assert s["kv_transfers"] >= s["requests_completed"] > 0
    assert s["kv_transfer_mean_s"] > 0
    assert [g["role"] for g in s["groups"]] == ["prefill", "decode"]


def test_kv_transfer_time_is_the_prompts_cache_over_the_fabric() -> None:
    """H100 and H200 share NVLink 4 (same family, 2 chips <= 8): KV(L) / (450 GB/s x eff) + latency."""
    from accelsim.disagg import fabric, kv_request_bytes

    eff = load_stack()
    kind, bw, _ = fabric(load_chip("h100-sxm"), 1, load_chip("h200-sxm"), 1, eff)
    assert kind == "scale-up"
    assert bw == pytest.approx(load_chip("h100-sxm").scale_up_bw_bytes_per_s / 2 * eff.network_eff)
    # llama3-8b bf16: 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes per token
    assert kv_request_bytes(load_model("llama3-8b"), Precision.for_serving("bf16"), L) == 32 * 8 * 128 * 2 * 2 * L
    groups = (ReplicaGroup("h100-sxm", "llama3-8b", role="prefill"),
              ReplicaGroup("h200-sxm", "llama3-8b", role="decode"))
    s = simulate(SimConfig(groups=groups, traffic=Traffic(rate_per_s=2, input_len=L, output_len=O, length_cv=0),
                           duration_s=5, failures=FailureModel.none())).summary
    assert s["kv_transfer_mean_s"] == pytest.approx(32 * 8 * 128 * 4 * L / bw + eff.link_latency_s)


def test_a_prefill_pool_needs_a_decode_pool() -> None:
    with pytest.raises(UserError, match="decode"):
        SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", role="prefill"),), traffic=Traffic()).validate()


def test_attention_dp_replica_holds_a_kv_budget_per_dp_group() -> None:
    from accelsim.serve.service import kv_budget

    g = ReplicaGroup("h200-sxm", "llama4-scout", tp=1, ep=8, dp=8, dtype="fp8")
    s = simulate(SimConfig(groups=(g,), traffic=Traffic(rate_per_s=20, input_len=500, output_len=50, length_cv=0),
                           duration_s=5, failures=FailureModel.none())).summary
    one_group = kv_budget(load_chip("h200-sxm"), load_model("llama4-scout"), Parallel(1, 8, 1, 8),
                          Precision.for_serving("fp8"), g.max_batched_tokens, g.block_size).blocks
    assert s["chips"] == 8 and s["groups"][0]["dp"] == 8
    assert s["groups"][0]["kv_blocks"] == 8 * one_group
    assert s["requests_completed"] > 0


def test_a_slow_link_queues_transfers_at_its_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Over scale-out (MTIA prefill to H200 decode: different families), at 10 GB/s a replica's link
    moves a 2000-token llama3-8b cache (262 MB) in ~37 ms: prompts arriving faster than that queue,
    so the pools' tandem rate is capped by the link, min(r_p, r_d, r_link)."""
    import dataclasses

    from accelsim.disagg import kv_request_bytes
    from accelsim.serve import cluster

    eff = load_stack()
    slow = dataclasses.replace(load_chip("mtia-400"), scale_out_bw_bytes_per_s=10e9)
    orig = cluster.load_chip
    monkeypatch.setattr(cluster, "load_chip", lambda name: slow if name == "mtia-400" else orig(name))
    groups = (ReplicaGroup("mtia-400", "llama3-8b", role="prefill"),
              ReplicaGroup("h200-sxm", "llama3-8b", replicas=4, role="decode"))
    s = simulate(SimConfig(groups=groups, traffic=Traffic(rate_per_s=60, input_len=L, output_len=20, length_cv=0),
                           duration_s=30, failures=FailureModel.none()), eff).summary
    per = kv_request_bytes(load_model("llama3-8b"), Precision.for_serving("bf16"), L) / (10e9 * eff.network_eff)
    assert s["kv_transfer_mean_s"] == pytest.approx(per + eff.link_latency_s)
    assert s["kv_transfer_wait_mean_s"] > per  # 60 prompts/s against ~27/s of link: a queue builds
    assert s["kv_transfers"] <= 30 / per + 1  # the link moved no more than its rate allows
