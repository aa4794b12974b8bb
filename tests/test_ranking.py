"""Ranking: gather physics against closed forms, hot-row caching against brute force, placement
conservation, the replica/sharded flip at the capacity edge, and queries <-> pairs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from accelsim import ops as O
from accelsim import ranking as R
from accelsim.errors import UserError
from accelsim.gather import gather_limit, gather_time_s
from accelsim.graph import Precision, ranking_ops
from accelsim.memory import RESERVE_FRACTION
from accelsim.perf import Analytical, HwVec, cost
from accelsim.predict import predict
from accelsim.spec.chip import load_chip
from accelsim.spec.model import load_model
from accelsim.stacks import load_stack

EFF = load_stack()


def toy_hw(*, bw: float = 100e9, latency: float = 100e-9, inflight: float = 10.0, request: float = 64.0,
           granule: float = 64.0, sram_bw: float = 1e12) -> HwVec:
    one = lambda x: np.full((1,), float(x))
    return HwVec(("toy",), {d: one(1e15) for d in ("fp32", "bf16", "fp8", "fp4", "int8")}, one(bw), one(1e11),
                 one(8), one(1e10), one(100), one(10), sram_bytes=one(0), sram_bw=one(sram_bw),
                 gather_latency_s=one(latency), gather_inflight=one(inflight), gather_request_bytes=one(request),
                 gather_granule_bytes=one(granule))


# an efficiency model with no streaming loss, ramp, overhead or page-activation cost: only physics
IDEAL = Analytical(compute_eff=1.0, memory_eff=1.0, kernel_overhead_s=0.0, ramp_s=0.0, gather_overhead_bytes=0.0)


def bag_time(hw: HwVec, rows: float, dim: int, row_bytes: float = 1.0, hit: float = 0.0) -> float:
    """Time of `rows` one-lookup bags of `dim` x `row_bytes`; the pooled output is one byte per bag
    (negligible next to the rows, but a gather always writes one)."""
    op = O.embedding_bag("eb", rows, 1, 1, 1, dtype="bf16", row_bytes=dim * row_bytes, out_bytes=1e-9,
                         sram_hit=hit)
    return float(cost([op], hw, IDEAL).total_s[0])


def test_gather_rate_concurrency_bound_small_rows():
    # 10 requests of one 64-B line in flight, 100 ns each: 1e8 rows/s, below 100 GB/s / 64 B
    hw = toy_hw()
    assert bag_time(hw, 1e6, 64) == pytest.approx(1e6 / (10 / 100e-9), rel=1e-9)


def test_gather_rate_bandwidth_bound_with_deep_queues():
    # plenty in flight: rows/s = bw / (row rounded up to whole 64-B granules); 100 B moves 128 B
    hw = toy_hw(inflight=1e9)
    assert bag_time(hw, 1e6, 100) == pytest.approx(1e6 * 128 / 100e9, rel=1e-9)
    assert bag_time(hw, 1e6, 128) == pytest.approx(bag_time(hw, 1e6, 100), rel=1e-9)


def test_gather_requests_scale_with_row_over_request_size():
    # 512-B rows need 8 line requests each (request = 64 B) but one warp-wide request of 512 B
    lines = toy_hw(inflight=10, request=64, bw=1e15)
    warp = toy_hw(inflight=10, request=512, bw=1e15)
    assert bag_time(lines, 1e5, 512) == pytest.approx(1e5 * 8 * 100e-9 / 10, rel=1e-9)
    assert bag_time(warp, 1e5, 512) == pytest.approx(1e5 * 1 * 100e-9 / 10, rel=1e-9)


def test_sram_hits_move_reads_on_chip():
    hw = toy_hw(inflight=1e9, sram_bw=1e12)
    t = bag_time(hw, 1e6, 64, hit=1.0)
    assert t == pytest.approx(1e6 * 64 / 1e12, rel=1e-9)  # all rows from SRAM at its bandwidth
    half = bag_time(hw, 1e6, 64, hit=0.5)
    assert half == pytest.approx(max(0.5e6 * 64 / 100e9, 0.5e6 * 64 / 1e12), rel=1e-9)


def test_gather_limit_names_the_binding_term():
    kw = dict(bw=100e9, eff=1.0, latency_s=100e-9, request_bytes=64.0, granule_bytes=64.0, sram_bw=1e12,
              activation_bytes=0.0)
    assert gather_limit(1e6, 64, 0.0, 0.0, inflight=10.0, **kw) == "concurrency"
    assert gather_limit(1e6, 64, 0.0, 0.0, inflight=1e9, **kw) == "bandwidth"
    assert gather_limit(0.0, 64, 0.0, 1e9, inflight=1e9, **kw) == "sram"
    t = gather_time_s(1e6, 64, 0.0, 0.0, inflight=10.0, **kw)
    assert float(t) == pytest.approx(1e6 * 100e-9 / 10)


def test_harmonic_matches_exact_sums():
    for alpha in (0.5, 1.0, 1.2):
        for n in (1, 2, 7, 100, 1000):
            exact = sum(k ** -alpha for k in range(1, n + 1))
            assert float(R.harmonic(n, alpha)) == pytest.approx(exact, rel=1e-3)


def test_hot_hit_uniform_caches_densest_tables_first():
    # table 0: 10 rows, 5 lookups (dense); table 1: 1000 rows, 5 lookups. 10 + 495 rows fit.
    hit = R.hot_hit_fraction([10, 1000], [5, 5], 1.0, 505.0, 0.0)
    assert float(hit) == pytest.approx((5 + 5 * 495 / 1000) / 10)


def test_hot_hit_zipf_matches_brute_force_greedy():
    rows, lookups, alpha = [50, 400], [3.0, 1.0], 1.1
    pop = [(lk / sum(k ** -alpha for k in range(1, n + 1)) * k ** -alpha, lk) for n, lk in zip(rows, lookups)
           for k in range(1, n + 1)]
    pop.sort(key=lambda x: -x[0])
    budget = 120
    brute = sum(p for p, _ in pop[:budget]) / sum(lookups)
    assert float(R.hot_hit_fraction(rows, lookups, 1.0, float(budget), alpha)) == pytest.approx(brute, rel=0.02)
    assert float(R.hot_hit_fraction(rows, lookups, 1.0, 1e9, alpha)) == pytest.approx(1.0)
    assert float(R.hot_hit_fraction(rows, lookups, 1.0, 0.0, alpha)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("placement", R.SHARDED)
def test_sharding_conserves_rows_and_bytes(placement):
    model = load_model("dlrm-v2")
    elem = 1.0
    n = 8 if placement != R.Placement.TABLE_WISE else 4
    plan = R.plan_for(model, n, placement, elem)
    total = float(R.table_bytes(model, elem).sum())
    assert plan.total_bytes == pytest.approx(total)
    if placement == R.Placement.HYBRID:  # heavy tables row-wise on every chip, the rest whole on one
        tb = R.table_bytes(model, elem)
        lk = np.asarray(model.lookups_per_table, float)
        heavy = R.heavy_tables(lk, tb, n)
        assert heavy.any() and not heavy.all()
        owner = R.table_wise_owners(lk[~heavy], tb[~heavy], n)
        held = np.bincount(owner, weights=tb[~heavy], minlength=n) + tb[heavy].sum() / n
        lookups = np.bincount(owner, weights=lk[~heavy], minlength=n) + lk[heavy].sum() / n
        assert held.sum() == pytest.approx(total) and plan.held_bytes == pytest.approx(held.max())
        assert lookups.sum() == pytest.approx(model.lookups_per_sample) and plan.lookups == pytest.approx(lookups.max())
        assert sum(plan.local_rows) <= sum(model.table_rows)
        return
    if placement == R.Placement.TABLE_WISE:
        tb = R.table_bytes(model, elem)
        owner = R.table_wise_owners(model.lookups_per_table, tb, n)
        held = np.bincount(owner, weights=tb, minlength=n)
        lookups = np.bincount(owner, weights=np.asarray(model.lookups_per_table, float), minlength=n)
        assert held.sum() == pytest.approx(total) and plan.held_bytes == pytest.approx(held.max())
        assert lookups.sum() == model.lookups_per_sample and plan.lookups == lookups.max()
        return
    # every chip holds an equal share: n shares rebuild every row and byte of every table
    assert plan.held_bytes * n == pytest.approx(total)
    if placement == R.Placement.ROW_WISE:
        assert np.asarray(plan.local_rows) * n == pytest.approx(np.asarray(model.table_rows, float))
        assert plan.lookups * n == pytest.approx(model.lookups_per_sample)
    else:
        assert plan.dim * n == model.embedding_dim and plan.lookups == model.lookups_per_sample
    # gathered bytes of the group's pairs, summed over the n chips, equal the unsharded gather
    prec = Precision.for_serving("fp8")
    one = ranking_ops(model, 1, prec, 1000.0 * n)[0]
    share = ranking_ops(model, n, prec, 1000.0, plan=plan)[0]
    assert float(share.gather_rows * share.gather_bytes) * n == pytest.approx(float(one.gather_rows * one.gather_bytes))


def _fit_factor(chip, model, prec) -> float:
    """Capacity scale at which one chip exactly holds the tables and dense weights."""
    need = float(R.table_bytes(model, R.embedding_bytes_per_elem(model, prec.weights)).sum())
    need += model.dense_params * prec.w_bytes
    return need / ((1 - RESERVE_FRACTION) * chip.mem_capacity_bytes)


def test_replica_or_sharded_flips_exactly_when_tables_stop_fitting():
    chip, model = load_chip("h100-sxm"), load_model("dlrm-rm2")
    f = _fit_factor(chip, model, Precision.for_serving("fp8"))
    fits = predict(chip.scaled(capacity=f * 1.001), model, chips=8, eff=EFF, dtype="fp8")
    tight = predict(chip.scaled(capacity=f * 0.999), model, chips=8, eff=EFF, dtype="fp8")
    assert fits.placement == "replicated" and fits.shards == 1 and fits.replicas == 8
    assert tight.placement in {p.value for p in R.SHARDED} and tight.shards == 2 and tight.replicas == 4


def test_queries_and_pairs_convert_both_ways():
    x = np.array([1.0, 2.7e7])
    assert R.pairs_from_queries(R.queries_from_pairs(x, 270.0), 270.0) == pytest.approx(x)
    r = predict(load_chip("h100-sxm"), load_model("dlrm-v2"), chips=2, eff=EFF, dtype="fp8")
    d = r.to_dict()
    assert d["per_chip_queries_per_s"] * 270 == pytest.approx(d["per_chip_pairs_per_s"])
    assert d["throughput_queries_per_s"] == pytest.approx(2 * d["per_chip_queries_per_s"])
    assert d["joules_per_query"] == pytest.approx(270 * d["joules_per_sample"])
    assert d["sample_unit"] == "user-item pair" and d["candidates_per_query"] == 270


def test_placement_override_and_bad_input():
    chip, model = load_chip("h100-sxm"), load_model("dlrm-v2")
    r = predict(chip, model, chips=8, eff=EFF, dtype="fp8", placement="row_wise")
    assert (r.placement, r.shards, r.replicas) == ("row_wise", 8, 1)
    assert r.to_dict()["placement"] == "row_wise"
    with pytest.raises(UserError, match="placement"):
        predict(chip, model, chips=8, eff=EFF, dtype="fp8", placement="diagonal")
    with pytest.raises(UserError):  # 104 GB of fp32 tables do not fit one 80 GB chip
        predict(chip, dataclasses.replace(model, embedding_dtype="fp32"), chips=8, eff=EFF, dtype="fp8",
                placement="replicated")


def test_dlrm_v2_as_submitted():
    m = load_model("dlrm-v2")
    assert (m.num_tables, m.lookups_per_sample, m.embedding_dim) == (26, 214, 128)
    assert m.candidates_per_query == 270 and m.embedding_dtype == "int8"
    assert "inference.access_zipf_alpha" in m.assumptions


def test_placement_flag_in_predict_plan_and_simulate(capsys):
    from accelsim.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("predict", "--hw", "h100-sxm", "--model", "dlrm-v2", "--chips", "4", "--placement",
                       "table_wise", "--fidelity", "analytical", "--json")
    d = json.loads(out)
    assert code == 0 and (d["placement"], d["shards"]) == ("table_wise", 4)
    code, out, _ = run("plan", "--hw", "h100-sxm", "--model", "dlrm-v2", "--demand-samples-per-s", "1e9",
                       "--placement", "row_wise", "--fidelity", "analytical", "--json")
    assert code == 0 and json.loads(out)["replica"]["placement"] == "row_wise"
    code, out, _ = run("simulate", "--hw", "h100-sxm", "--model", "dlrm-v2", "--chips", "2", "--duration", "1",
                       "--arrival-rate", "50", "--placement", "column_wise", "--fidelity", "analytical", "--json")
    assert code == 0 and json.loads(out)["groups"][0]["placement"] == "column_wise"
    code, _, err = run("predict", "--hw", "h100-sxm", "--model", "dlrm-v2", "--chips", "2", "--placement", "diagonal")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "placement" in err
    code, _, err = run("predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--placement", "row_wise")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "ranking" in err
