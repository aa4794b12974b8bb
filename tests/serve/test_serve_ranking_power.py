"""Ranking serving against the spine's batch costs; power and energy against the power model."""

from __future__ import annotations

import numpy as np
import pytest
from serve_helpers import EFF, hw

from accelsim.graph import Parallel, Precision, llm_ops
from accelsim.memory import kv_bytes_per_seq, plan_llm
from accelsim.perf import cost
from accelsim.power import chip_power_w
from accelsim.predict import ranking_metrics
from accelsim.serve.cluster import simulate
from accelsim.serve.config import RankingGroup, RankingTraffic, ReplicaGroup, SimConfig, Traffic
from accelsim.serve.service import RANKING_BATCH_SLO_FRACTION
from accelsim.spec import load_chip, load_model

BF16 = Precision()


def _batch_s(k: int, samples: int, chips: int) -> float:
    m = ranking_metrics(hw(), load_model("dlrm-v2"), chips, BF16, np.asarray(float(k * samples) / chips), EFF)
    return float(np.asarray(m.latency_s).ravel()[0])


def _ranking(rate: float, chips: int = 2, samples: int = 128, duration: float = 5.0) -> dict:
    cfg = SimConfig(ranking_groups=(RankingGroup("h100-sxm", 1, chips),),
                    ranking=RankingTraffic("dlrm-v2", rate, samples), duration_s=duration, seed=1)
    return simulate(cfg, EFF).summary


def test_light_ranking_load_latency_is_one_batch() -> None:
    s = _ranking(rate=20.0)
    one = _batch_s(1, 128, 2)
    assert s["ranking_requests_completed"] == s["ranking_requests_arrived"] > 50
    assert s["ranking_latency_p50_s"] == pytest.approx(one, rel=1e-9)  # nobody queues at 20 req/s


def test_overloaded_ranking_runs_full_batches_at_the_spine_rate() -> None:
    # the largest batch within the SLO share, from the spine's costs of k = 1, 2, ... requests
    m = ranking_metrics(hw(), load_model("dlrm-v2"), 2, BF16, np.arange(1, 8193) * 128.0 / 2, EFF)
    k_ref = int(np.nonzero(np.ravel(m.latency_s) <= RANKING_BATCH_SLO_FRACTION * 0.060)[0][-1]) + 1
    t_one, t_k, d = _batch_s(1, 128, 2), _batch_s(k_ref, 128, 2), 0.5
    s = _ranking(rate=3 * k_ref / t_k, duration=d)  # three times what one replica serves
    assert s["groups"][0]["max_batch_requests"] == k_ref
    # the first request arrives to an idle replica and goes alone; from then on full batches run
    # back to back: (d - t_one) / t_k of them, give or take the one cut by the end of the run
    full = (s["ranking_samples_per_s"] * d / 128 - 1) / k_ref
    assert abs(full - (d - t_one) / t_k) <= 1.0
    assert s["ranking_slo_attainment"] < 0.5  # the queue grows without bound


def test_colocated_ranking_takes_kv_memory_and_is_served() -> None:
    g = ReplicaGroup("h100-sxm", "llama3-70b", tp=4, serve_ranking=True)
    cfg = SimConfig(groups=(g,), traffic=Traffic(rate_per_s=1.0, input_len=500, output_len=100),
                    ranking=RankingTraffic("dlrm-v2", 50.0, 64), duration_s=20.0, seed=3)
    s = simulate(cfg, EFF).summary
    chip, m, rk = load_chip("h100-sxm"), load_model("llama3-70b"), load_model("dlrm-v2")
    par = Parallel(4)
    free = plan_llm(chip, m, par, BF16, 1.0).free_for_kv_bytes
    # int8 tables as submitted, split evenly (row- or column-wise) over the 4 chips, plus bf16 dense
    ranking_bytes = rk.embedding_params * 1 / 4 + rk.dense_params * 2
    per_block = float(kv_bytes_per_seq(m, par, BF16, 1.0)) * 16
    assert s["groups"][0]["kv_blocks"] == int((free - ranking_bytes) // per_block)
    assert s["ranking_requests_completed"] >= 0.95 * s["ranking_requests_arrived"]
    assert s["requests_completed"] > 0


def test_idle_fleet_draws_idle_power() -> None:
    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", replicas=3),), traffic=None, duration_s=100.0)
    s = simulate(cfg, EFF).summary
    idle = load_chip("h100-sxm").idle_w
    assert s["mean_power_w"] == pytest.approx(3 * idle)
    assert s["energy_j"] == pytest.approx(3 * idle * 100.0)


def test_step_energy_is_the_power_models(tmp_path) -> None:
    # One request of 64 prompt tokens and 1 output token: one prefill step. Its energy above idle
    # must be (chip_power_w(utilisation while working, duty) - idle) x time, from the spine directly:
    # the operators' compute- and memory-bound time works, launch gaps draw the floor (accelsim.power).
    from serve_helpers import write_trace

    trace = write_trace(tmp_path / "t.csv", [(1.0, 64, 1)])
    cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b"),), traffic=Traffic(arrival="trace", trace=trace),
                    duration_s=10.0)
    s = simulate(cfg, EFF).summary
    h = hw()
    c = cost(llm_ops(load_model("llama3-8b"), Parallel(), BF16, "prefill", 64.0, 32.0), h, EFF)
    work = c.compute_s + c.memory_s
    u_c, u_m = c.flops / (h.peak["bf16"] * work), c.bytes / (h.mem_bw * work)
    p = float(np.ravel(chip_power_w(h.idle_w, h.tdp_w, u_c, u_m, work / c.total_s))[0])
    t = float(np.ravel(c.total_s)[0])
    idle = load_chip("h100-sxm").idle_w
    assert s["energy_j"] - idle * 10.0 == pytest.approx((p - idle) * t, rel=1e-6)


def test_site_power_cap_throttles() -> None:
    def run(cap: float | None) -> dict:
        cfg = SimConfig(groups=(ReplicaGroup("h100-sxm", "llama3-8b", replicas=2),),
                        traffic=Traffic(rate_per_s=40.0, input_len=2000, output_len=100), duration_s=30.0,
                        power_cap_w=cap, seed=2)
        return simulate(cfg, EFF).summary

    free = run(None)
    cap = 0.5 * (free["mean_power_w"] + 2 * load_chip("h100-sxm").idle_w)
    capped = run(cap)
    assert free["mean_power_w"] > cap
    assert capped["mean_power_w"] <= cap * (1 + 1e-6)
    assert capped["ttft_p50_s"] > free["ttft_p50_s"]


def test_ranking_batch_cut_by_a_failure_still_counts_its_energy() -> None:
    """As an LLM step cut by a failure: the energy above idle until the failure was spent."""
    import simpy

    from accelsim.serve.failures import Component
    from accelsim.serve.ranking import RankingReplica, RankingRouter
    from accelsim.serve.recorder import Recorder
    from accelsim.serve.workload import Stream

    class Batch1s300J:  # any batch: 1 s and 300 J per chip
        per_batch = 4

        def batch(self, k: int) -> tuple[float, float]:
            return 1.0, 300.0

    env = simpy.Environment()
    empty = np.zeros(0, np.int64)
    rec = Recorder(Stream(np.zeros(0), empty, empty), np.zeros(1), 1, 10.0, 2, 200.0)
    router = RankingRouter([])
    rep = RankingReplica(env, 0, 2, Batch1s300J(), 1, rec, router, idle_w=100.0)
    router.workers, router.up = [rep.worker], [rep.worker]
    router.dispatch(0)

    def fail_at_quarter():
        yield env.timeout(0.25)
        rep.fail(Component("chip", 0.0, 1.0))
        yield env.timeout(1.0)
        rep.recover()

    env.process(fail_at_quarter())
    env.run(until=5.0)
    # 2 chips x (300 J - 100 W x 1 s) x 0.25 of the cut batch, then the retried batch in full
    assert sum(rec.excess_j) == pytest.approx(2 * 200 * 0.25 + 2 * 200)
    assert rec.rk_finish_s[0] == pytest.approx(2.25)
