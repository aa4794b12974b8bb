"""The paged KV cache: block arithmetic, and preemption exactly when the blocks run out."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from serve_helpers import EFF, write_trace

from accelsim.serve.cluster import simulate
from accelsim.serve.config import ReplicaGroup, SimConfig, Traffic
from accelsim.serve.kv import BlockManager


@given(st.integers(0, 5000), st.integers(1, 300), st.integers(1, 64))
def test_phase_predicts_every_new_block(cached: int, steps: int, bs: int) -> None:
    # Brute force: a sequence with `cached` tokens entering decode at step s0 needs a new block at
    # step s iff its block count grows; the O(1) phase rule must say the same at every step.
    kv = BlockManager(1, bs)
    s0 = 7
    phase = kv.phase(s0, cached)
    for s in range(s0, s0 + steps):
        held = kv.blocks_for(cached + (s - s0))  # before the step
        need = kv.blocks_for(cached + (s - s0) + 1)  # after writing this step's token
        assert (need > held) == (s % bs == phase)


def test_allocate_release_bounds() -> None:
    kv = BlockManager(10, 16)
    assert kv.allocate(10) and not kv.allocate(1) and kv.free == 0
    kv.release(4)
    assert kv.used == 6
    with pytest.raises(AssertionError):
        kv.release(7)


def _two_requests(tmp_path, blocks: int) -> tuple[dict, object]:
    # Two requests of 16 prompt tokens and 200 output tokens, arriving together. The replica starts
    # its first step when request 0 arrives, so request 1 is prefilled one step later.
    trace = write_trace(tmp_path / "t.csv", [(0.0, 16, 200), (0.0, 16, 200)])
    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", kv_blocks=blocks, block_size=16),),
                    traffic=Traffic(arrival="trace", trace=trace), duration_s=1.0, drain=True)
    r = simulate(cfg, EFF)
    return r.summary, r.recorder


def test_preemption_exactly_when_blocks_run_out(tmp_path) -> None:
    # By hand: request 0 is prefilled at step 0, request 1 at step 1; at step s request 0 caches
    # 16 + s tokens and request 1 16 + s - 1, i.e. ceil(./16) blocks each. Their last decode steps
    # are 199 and 200 (199 output tokens after the first); the peak demand is 14 + 14 = 28 blocks.
    demand = [math.ceil((16 + s) / 16) * (s <= 199) + math.ceil((15 + s) / 16) * (1 <= s <= 200)
              for s in range(201)]
    peak = max(demand)
    assert peak == 28
    s, _ = _two_requests(tmp_path, peak)
    assert s["preemptions"] == 0
    s, rec = _two_requests(tmp_path, peak - 1)
    assert s["preemptions"] >= 1
    # The first preemption happens at the first step whose demand exceeds the budget, not before.
    _, _, step, victim = rec.preemption_log[0]
    assert step == next(s for s, d in enumerate(demand) if d > peak - 1)
    assert victim == 1  # the most recently admitted request goes first
    # Recompute preemption loses no output: every token is generated once and both finish.
    assert s["requests_completed"] == 2
    assert rec.tokens_total == 400


def test_tiny_budget_random_traffic_never_overcommits() -> None:
    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", kv_blocks=120, max_seqs=64),),
                    traffic=Traffic(rate_per_s=40, input_len=200, output_len=150, length_cv=0.8),
                    duration_s=20.0, drain=True, seed=4)
    r = simulate(cfg, EFF)
    s = r.summary
    assert s["preemptions"] > 0
    assert s["requests_completed"] + s["requests_rejected"] == s["requests_arrived"]
    # requests longer than the whole cache (120 blocks x 16 tokens) are rejected, the others finish
    need = r.recorder.stream.input_len + r.recorder.stream.output_len - 1
    assert s["requests_rejected"] == int((need > 120 * 16).sum())


def test_random_configurations_conserve_requests_tokens_and_blocks() -> None:
    # Tiny caches, failures, bursty arrivals, both routers: every request is settled, every token
    # accounted for, and every KV block is back in its pool once the run has drained.
    from accelsim.serve.failures import Component, FailureModel

    rng = np.random.default_rng(0)
    for trial in range(6):
        g = ReplicaGroup("h100-sxm", "llama3-8b", replicas=int(rng.integers(1, 4)),
                         kv_blocks=int(rng.integers(40, 300)), max_seqs=int(rng.integers(1, 48)),
                         max_batched_tokens=int(rng.integers(64, 2048)),
                         block_size=int(rng.choice([8, 16, 32])))
        fm = FailureModel((Component("c", float(rng.choice([0.0, 20.0])), float(rng.uniform(1, 20))),), "t")
        cfg = SimConfig(groups=(g,), traffic=Traffic(rate_per_s=float(rng.uniform(2, 20)), arrival="gamma", cv=2.0,
                                                     input_len=int(rng.integers(10, 400)),
                                                     output_len=int(rng.integers(1, 200)), length_cv=1.0),
                        duration_s=10.0, drain=True, failures=fm, seed=trial,
                        router=("round-robin", "least-outstanding")[trial % 2])
        r = simulate(cfg, EFF)
        s, rec = r.summary, r.recorder
        assert s["requests_completed"] + s["requests_rejected"] == s["requests_arrived"]
        done = ~np.isnan(rec.finish_s)
        assert rec.tokens_total == rec.stream.output_len[done].sum() + rec.tokens_lost
        assert all(rep.kv.free == rep.kv.total and not rep.running for rep in r.replicas)
