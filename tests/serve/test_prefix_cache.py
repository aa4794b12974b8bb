"""Prefix caching: the LRU against independent-reference-model answers (C / N for uniform
popularity, Che's approximation for Zipf), and the simulated prefill saving against predict's
closed form at the hit rate the workload produced."""

from __future__ import annotations

import numpy as np
import pytest

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.modes import Modes
from accelsim.perf import HwVec
from accelsim.predict import llm_metrics
from accelsim.serve.cluster import simulate
from accelsim.serve.config import FailureModel, ReplicaGroup, SimConfig, Traffic
from accelsim.serve.prefix_cache import PrefixCache, che_hit_rate, zipf_popularity
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack


def _lru_hit_rate(pool: int, capacity: int, s: float, n: int = 200_000) -> float:
    ids = np.random.default_rng(1).choice(pool, size=n, p=zipf_popularity(pool, s))
    cache = PrefixCache(capacity)
    for i in ids.tolist():
        cache.lookup(i, 1)
    return cache.hit_rate


def test_uniform_popularity_hits_capacity_over_pool() -> None:
    assert _lru_hit_rate(100, 25, 0.0) == pytest.approx(0.25, abs=0.01)


@pytest.mark.parametrize(("s", "capacity"), [(0.8, 20), (1.2, 10)])
def test_zipf_popularity_matches_ches_approximation(s: float, capacity: int) -> None:
    assert _lru_hit_rate(500, capacity, s) == pytest.approx(che_hit_rate(zipf_popularity(500, s), capacity), abs=0.02)


def test_lru_evicts_the_least_recently_used() -> None:
    c = PrefixCache(2)
    assert [c.lookup(k, 10) for k in (1, 2, 1, 3, 2, 1)] == [False, False, True, False, False, False]
    assert c.tokens_saved == 10


def test_simulated_prefix_hits_save_what_predict_says_at_that_hit_rate() -> None:
    L, P, O = 3000, 2000, 20  # noqa: E741 - prompt, shared prefix, output tokens
    runs = {}
    for share in (0.0, 0.3):
        cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", prefix_cache_share=share),),
                        traffic=Traffic(rate_per_s=100, input_len=L, output_len=O, length_cv=0, prefix_pool=100,
                                        prefix_len=P), duration_s=100, failures=FailureModel.none())
        runs[share] = simulate(cfg).summary
    pc = runs[0.3]["prefix_cache"]
    # the hit rate comes from the workload: uniform over 100 prefixes, C of them cached -> C / 100
    assert pc["hit_rate"] == pytest.approx(pc["capacity_prefixes"] / 100, abs=0.05)
    assert pc["prefill_tokens_saved"] == pc["hits"] * P
    assert runs[0.0]["prefix_cache"] is None
    # saturated and prefill bound: throughput rises as predict's prefill with a hit share h P / L
    hw = HwVec.from_chips([load_chip("h100-sxm")], shape=(1,))
    args = (hw, load_model("llama3-8b"), Parallel(1), Precision.for_serving("bf16"), L, O, np.array([256.0]),
            load_stack())
    gain = float(llm_metrics(*args, Modes(prefix_hit=pc["hit_rate"] * P / L)).throughput_replica[0]
                 / llm_metrics(*args).throughput_replica[0])
    assert runs[0.3]["throughput_tokens_per_s"] / runs[0.0]["throughput_tokens_per_s"] == pytest.approx(gain, rel=0.04)


def test_prefix_flags_go_together() -> None:
    with pytest.raises(UserError, match="prefix"):
        Traffic(prefix_pool=10).validate()
