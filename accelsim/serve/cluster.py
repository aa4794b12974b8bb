"""A whole run: build the replicas from a `SimConfig`, route requests, run SimPy, summarise.

Randomness: one root seed; every random process draws from its own NumPy Generator seeded by
`SeedSequence(seed, spawn_key=(purpose, index))`, so a run is reproducible and adding a replica
does not reshuffle the arrivals.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision
from accelsim.memory import ranking_weight_bytes_per_chip
from accelsim.modes import Modes, parse_spec_decode
from accelsim.perf import Efficiency, fidelity_on
from accelsim.power import energy_report
from accelsim.serve.config import SimConfig
from accelsim.serve.disagg import DecodeReplica, KVHandoff
from accelsim.serve.failures import failure_process
from accelsim.serve.prefix_cache import PrefixCache, blocks_for_capacity
from accelsim.serve.ranking import RankingReplica, RankingRouter, RankingWorker, ranking_arrivals
from accelsim.serve.recorder import Recorder
from accelsim.serve.replica import LLMReplica, Request
from accelsim.serve.service import LLMService, RankingService, kv_budget
from accelsim.serve.workload import Stream, arrival_times, generate
from accelsim.spec import load_chip, load_model
from accelsim.spec.model import LLM, Ranking

DRAIN_LIMIT = 20.0  # a draining run stops at this many durations even if requests remain
# spawn keys of the random streams
_ARRIVALS, _LENGTHS, _FAILURES, _RANKING, _RANKING_FAILURES = range(5)


def rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


class Router:
    """Sends each LLM request to an up replica that can hold it: round-robin or least-outstanding.
    While no such replica is up, requests wait here and go out when one recovers.
    `load[i]` is replica i's outstanding requests (kept by the replicas), inf while it is down, so
    the least-outstanding choice is two C-level passes over a list."""

    def __init__(self, env: Any, policy: str, recorder: Recorder) -> None:
        self.env, self.rec, self.lor = env, recorder, policy == "least-outstanding"
        self.replicas: list[LLMReplica] = []
        self.up: list[LLMReplica] = []
        self.load: list[float] = []
        self.pending: deque[Request] = deque()
        self._rr = 0
        self.min_cap = self.max_cap = 0

    def add(self, replicas: list[LLMReplica]) -> None:
        self.replicas = replicas
        self.up = list(replicas)
        self.load = [0.0] * len(replicas)
        caps = [r.cap_tokens for r in replicas]
        self.min_cap, self.max_cap = min(caps), max(caps)

    def dispatch(self, req: Request) -> None:
        need = req.need_tokens
        if need > self.min_cap:  # heterogeneous KV budgets: only replicas that can hold it
            if need > self.max_cap:
                self.rec.reject(self.env.now)
                return
            fits = [r for r in self.up if r.cap_tokens >= need]
            if not fits:
                self.pending.append(req)
            elif self.lor:
                min(fits, key=lambda r: self.load[r.rid]).enqueue(req)
            else:
                self._rr += 1
                fits[self._rr % len(fits)].enqueue(req)
            return
        if not self.up:
            self.pending.append(req)
        elif self.lor:
            load = self.load
            self.replicas[load.index(min(load))].enqueue(req)
        else:
            self._rr += 1
            self.up[self._rr % len(self.up)].enqueue(req)

    def replica_down(self, replica: LLMReplica) -> None:
        self.up = [r for r in self.replicas if r.up]
        self.load[replica.rid] = math.inf

    def replica_up(self, replica: LLMReplica) -> None:
        self.up = [r for r in self.replicas if r.up]
        self.load[replica.rid] = 0.0
        pending, self.pending = self.pending, deque()
        for req in pending:
            self.dispatch(req)


def _arrivals(env: Any, stream: Stream, router: Router, rec: Recorder, prefix_len: int = 0,
              images: int = 0) -> Any:
    """Requests into the router at their arrival times; `images` image tokens join every prompt."""
    inp, out, level = stream.input_len, stream.output_len, rec.in_system
    pid = stream.prefix_id
    for lo in range(0, len(stream), 65536):
        ids = [-1] * len(inp[lo:lo + 65536]) if pid is None else pid[lo:lo + 65536].tolist()
        for i, t, a, b, p in zip(range(lo, lo + 65536), stream.arrival_s[lo:lo + 65536].tolist(),
                                 inp[lo:lo + 65536].tolist(), out[lo:lo + 65536].tolist(), ids):
            yield env.timeout(t - env.now)
            level.add(t, 1)
            router.dispatch(Request(i, a + images, b, p, prefix_len))


@dataclass
class SimResult:
    summary: dict[str, Any]
    recorder: Recorder
    replicas: list[LLMReplica]

    def write(self, out_dir: str | os.PathLike[str]) -> list[str]:
        """summary.json, requests.csv, timeseries.csv under `out_dir`, all or none: they are written
        into a temporary directory beside it, then renamed into place (the whole directory when
        `out_dir` does not exist yet), so an interrupt never leaves some of them behind."""
        import shutil
        import tempfile

        from accelsim.io import write_json

        target = os.path.abspath(out_dir)
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.", dir=parent)
        try:
            names = [os.path.basename(p) for p in self.recorder.write(tmp)]
            write_json(os.path.join(tmp, "summary.json"), self.summary)
            names = ["summary.json", *names]
            if not os.path.exists(target):
                os.rename(tmp, target)
            else:
                for name in names:
                    os.replace(os.path.join(tmp, name), os.path.join(target, name))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return [os.path.join(out_dir, name) for name in names]


class _Fleet:
    """What each group's replicas are (chip, service tables, KV budget) and the fleet's totals."""

    def __init__(self) -> None:
        self.llm: list[tuple[Any, Any, LLMService, int, RankingService | None]] = []
        self.ranking: list[tuple[Any, Any, RankingService]] = []
        self.chips, self.idle_w, self.tdp_w = 0, 0.0, 0.0

    def _count(self, chip: Any, chips: int) -> None:
        self.chips += chips
        self.idle_w += chips * chip.idle_w
        self.tdp_w += chips * chip.tdp_w

    def add_llm_group(self, g: Any, eff: Efficiency, max_ctx: float, rk_model: Ranking | None, rk: Any,
                      traffic: Any = None) -> None:
        chip, model = load_chip(g.hw), load_model(g.model)
        if not isinstance(model, LLM):
            raise UserError(f"model '{g.model}' is a ranking model; serve it with --model on its own or "
                            "as the ranking stream (--ranking-model)")
        par, prec = Parallel(g.tp, g.ep, g.pp, g.dp), Precision.for_serving(g.dtype, g.kv_dtype)
        par.validate(model)
        chip.compute_dtype(g.dtype)
        rk_service, extra = None, 0.0
        if g.serve_ranking and rk_model is not None:  # co-located: the tables share the HBM with the KV
            extra = ranking_weight_bytes_per_chip(rk_model, par.chips, prec)
            rk_service = RankingService(chip, rk_model, par.chips, prec, eff, rk.samples, rk.slo_s,
                                        check_capacity=False)
        budget = kv_budget(chip, model, par, prec, g.max_batched_tokens, g.block_size, extra)
        # each attention-DP group's chips hold their own sequences' KV (budget.blocks: one group's)
        blocks = g.kv_blocks if g.kv_blocks is not None else budget.blocks * par.dp
        if blocks < 1:
            raise UserError(f"{model.name} on {par.chips} x {chip.name} leaves no memory for the KV cache "
                            f"({budget.free_bytes / 1e9:.2f} GB free per chip); use more chips or a smaller dtype")
        images = traffic.image_tokens if traffic is not None else 0
        modes = Modes(spec=parse_spec_decode(g.spec_decode) if g.spec_decode else None, image_tokens=images)
        modes.validate(model)
        svc = LLMService(chip, model, par, prec, eff, max_seqs=g.max_seqs, max_tokens=g.max_batched_tokens,
                         max_ctx=min(max_ctx, blocks * g.block_size), modes=modes,
                         mean_prompt=(traffic.input_len if traffic is not None else 1000) + images)
        self.llm.append((g, chip, svc, blocks, rk_service))
        self._count(chip, g.replicas * par.chips)

    def add_ranking_group(self, rg: Any, eff: Efficiency, rk_model: Ranking, rk: Any) -> None:
        chip = load_chip(rg.hw)
        chip.compute_dtype(rg.dtype)
        svc = RankingService(chip, rk_model, rg.chips, Precision.for_serving(rg.dtype), eff, rk.samples, rk.slo_s,
                             placement=rg.placement)
        self.ranking.append((rg, chip, svc))
        self._count(chip, rg.replicas * rg.chips)


def simulate(cfg: SimConfig, eff: Efficiency | None = None,
             progress: Callable[[float], None] | None = None, force: bool = False) -> SimResult:
    """Run one simulation. Raises UserError for inputs that cannot be simulated (a model that does
    not fit, an unknown chip, a power cap below idle ...) and for a run expected to exceed the
    limits of `accelsim.serve.bounds` (unless `force`)."""
    from accelsim.serve.bounds import check_serving
    from accelsim.stacks import load_stack

    cfg.validate()
    check_serving(cfg, DRAIN_LIMIT, force)
    eff = eff or load_stack()
    wall0 = time.perf_counter()
    seed = cfg.seed
    stream = (generate(cfg.traffic, cfg.duration_s, rng(seed, _ARRIVALS), rng(seed, _LENGTHS)) if cfg.traffic
              else Stream(np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64)))
    rk = cfg.ranking
    rk_model = _ranking_model(rk.model) if rk else None
    rk_arr = (arrival_times(rk.arrival, rk.rate_per_s, rk.cv, cfg.duration_s, rng(seed, _RANKING)) if rk
              else np.zeros(0))
    images = cfg.traffic.image_tokens if cfg.traffic else 0
    max_ctx = float((stream.input_len + stream.output_len).max()) + images if len(stream) else 2.0

    fleet = _Fleet()
    for g in cfg.groups:
        fleet.add_llm_group(g, eff, max_ctx, rk_model, rk, cfg.traffic)
    for rg in cfg.ranking_groups:
        if rk_model is None or rk is None:
            raise UserError("ranking replicas need a ranking stream (--ranking-model and --ranking-rate)")
        fleet.add_ranking_group(rg, eff, rk_model, rk)
    llm_groups, rk_groups = fleet.llm, fleet.ranking
    chips_total, idle_total = fleet.chips, fleet.idle_w

    def cap_share(chip: Any) -> float | None:
        if cfg.power_cap_w is None:
            return None
        share = cfg.power_cap_w * chip.tdp_w / fleet.tdp_w
        if share <= chip.idle_w:
            raise UserError(f"--power-cap-w {cfg.power_cap_w:.0f} W is at or below the fleet's idle power "
                            f"({idle_total:.0f} W); raise the cap")
        return share

    # ---- the SimPy model ----------------------------------------------------------------------
    env = simpy.Environment()
    rec = Recorder(stream, rk_arr, rk.samples if rk else 0, cfg.bin_s, chips_total, idle_total)
    router = Router(env, cfg.router, rec)
    rk_router = RankingRouter([])
    replicas: list[LLMReplica] = []
    workers: list[RankingWorker] = []
    decode_router = Router(env, cfg.router, rec)  # the decode pool's, when serving is disaggregated
    front: list[LLMReplica] = []  # replicas the arrivals go to (all but the decode pool)
    back: list[LLMReplica] = []
    handoff = _handoff(env, cfg, llm_groups, decode_router, eff)
    for g, chip, svc, blocks, rk_service in llm_groups:
        for _ in range(g.replicas):
            pool, own, cls = (back, decode_router, DecodeReplica) if g.role == "decode" else (front, router, LLMReplica)
            n_prefixes, cache_blocks = _prefix_cache_size(cfg, g, blocks)
            r = cls(env, len(pool), g.chips_per_replica, svc, blocks - cache_blocks, g.block_size, g.max_seqs,
                    g.max_batched_tokens, rec, own, chip.idle_w, cap_share(chip))
            if n_prefixes:
                r.prefix_cache = PrefixCache(n_prefixes)
            pool.append(r)
            if g.role == "prefill":
                r.handoff = handoff
            if rk_service is not None:
                r.ranking = RankingWorker(r, rk_service, rk.samples, rec, rk_router)
                workers.append(r.ranking)
            env.process(failure_process(env, r, r.chips, cfg.failures, rng(seed, _FAILURES, len(replicas))))
            replicas.append(r)
    for rg, chip, rk_service in rk_groups:
        for _ in range(rg.replicas):
            rr = RankingReplica(env, len(workers), rg.chips, rk_service, rk.samples, rec, rk_router, chip.idle_w)
            workers.append(rr.worker)
            env.process(failure_process(env, rr, rg.chips, cfg.failures, rng(seed, _RANKING_FAILURES, len(workers))))
    rk_router.workers, rk_router.up = workers, list(workers)
    if back:
        decode_router.add(back)
    if front:
        router.add(front)
        t = cfg.traffic
        env.process(_arrivals(env, stream, router, rec, t.prefix_len if t else 0, t.image_tokens if t else 0))
    if rk:
        env.process(ranking_arrivals(env, rk_arr, rk_router))

    total = len(stream) + len(rk_arr)
    limit = cfg.duration_s * (DRAIN_LIMIT if cfg.drain else 1.0)
    if progress is not None:
        env.process(_progress(env, limit, progress))
    if cfg.drain and total:
        end = env.event()
        rec.on_settled = lambda: None if rec.settled < total or end.triggered else end.succeed()
        env.run(until=simpy.AnyOf(env, [end, env.timeout(limit)]))
        horizon = max(env.now, cfg.duration_s)
    else:
        env.run(until=limit)
        horizon = limit
    rec.close(horizon)
    s = rec.summary(horizon, cfg.slo_ttft_s, cfg.slo_tpot_s, rk.slo_s if rk else math.nan)
    deployed = [(chip, g.replicas * g.chips_per_replica) for g, chip, _, _, _ in llm_groups]
    deployed += [(chip, rg.replicas * rg.chips) for rg, chip, _ in rk_groups]
    fid = str(fidelity_on(eff, [chip for chip, _ in deployed]))  # calibrated only if every chip is
    s["energy"] = energy_report(deployed, s["mean_power_w"], s["throughput_tokens_per_s"], fid)
    s.update({
        "chips": chips_total, "replicas": len(replicas) + sum(rg.replicas for rg, _, _ in rk_groups),
        "groups": [_describe(g, blocks) for g, _, _, blocks, _ in llm_groups]
        + [{"hw": rg.hw, "ranking_model": rk.model, "replicas": rg.replicas, "chips_per_replica": rg.chips,
            "max_batch_requests": svc.per_batch, "placement": svc.placement} for rg, _, svc in rk_groups],
        "router": cfg.router, "seed": seed, "failures": cfg.failures.source,
        "fidelity": fid,
        "assumed_hw_values": {c.name: c.assumed_keys for c in [x[1] for x in llm_groups] + [x[1] for x in rk_groups]},
        "assumptions": _assumptions(cfg),
        "simulated_steps": sum(r.step_no for r in replicas),
        "prefix_cache": _prefix_summary(replicas),
        "kv_transfers": handoff.moved if handoff else None,
        "kv_transfer_mean_s": handoff.bytes_s / handoff.moved if handoff and handoff.moved else None,
        "kv_transfer_wait_mean_s": handoff.wait_s / handoff.moved if handoff and handoff.moved else None,
        "wall_s": time.perf_counter() - wall0,
    })
    return SimResult(_clean(s), rec, replicas)


def _prefix_cache_size(cfg: SimConfig, g: Any, blocks: int) -> tuple[int, int]:
    """(prefixes, KV blocks) of a replica's prefix cache: (0, 0) when the group or traffic has none."""
    t = cfg.traffic
    if t is None or not t.prefix_pool or not g.prefix_cache_share or g.role == "decode":
        return 0, 0
    n, used = blocks_for_capacity(blocks, g.prefix_cache_share, t.prefix_len, g.block_size)
    if n < 1:
        raise UserError(f"prefix_cache_share {g.prefix_cache_share} of {blocks} KV blocks holds no prefix of "
                        f"{t.prefix_len} tokens; raise it")
    return n, used


def _prefix_summary(replicas: list[LLMReplica]) -> dict[str, Any] | None:
    caches = [r.prefix_cache for r in replicas if r.prefix_cache is not None]
    if not caches:
        return None
    lookups = sum(c.lookups for c in caches)
    return {"capacity_prefixes": caches[0].capacity, "lookups": lookups, "hits": sum(c.hits for c in caches),
            "hit_rate": sum(c.hits for c in caches) / lookups if lookups else 0.0,
            "prefill_tokens_saved": sum(c.tokens_saved for c in caches)}


def _handoff(env: Any, cfg: SimConfig, llm_groups: list[Any], decode_router: Router,
             eff: Efficiency) -> KVHandoff | None:
    """The KV move from the prefill pool to the decode pool (its time per prompt from
    `accelsim.disagg`, over the fabric the two pools share), or None when serving is not split."""
    from accelsim.disagg import fabric, kv_request_bytes

    pre = [(g, c) for g, c, *_ in llm_groups if g.role == "prefill"]
    dec = [(g, c) for g, c, *_ in llm_groups if g.role == "decode"]
    if not pre:
        return None
    (gp, cp), (_, cd) = pre[0], dec[0]
    n_p = sum(g.replicas * g.chips_per_replica for g, _ in pre)
    n_d = sum(g.replicas * g.chips_per_replica for g, _ in dec)
    _, bw_p, _ = fabric(cp, n_p, cd, n_d, eff)
    model, prec = load_model(gp.model), Precision.for_serving(gp.dtype, gp.kv_dtype)
    send = gp.chips_per_replica * bw_p
    return KVHandoff(env, decode_router, lambda tokens: kv_request_bytes(model, prec, tokens) / send
                     + eff.link_latency_s)


def _assumptions(cfg: SimConfig) -> list[str]:
    """What the run assumed rather than took from a source (shown with every result)."""
    out = ["mixed prefill+decode steps cost the sum of the two parts (as predict.llm_metrics), not a fused kernel",
           "accelerator power only; failed chips draw idle power until repaired"]
    if cfg.traffic is not None and cfg.traffic.arrival != "trace" and cfg.traffic.length_cv > 0:
        out.append(f"lognormal request lengths, CV {cfg.traffic.length_cv:g}, clipped to 8 x mean")
    if cfg.failures.components and cfg.failures.source.startswith("default"):
        out.append("default repair times: " + ", ".join(f"{c.name} {c.repair_s / 60:g} min"
                                                          for c in cfg.failures.components))
    if cfg.groups:
        out.append("engine limits (vLLM-like defaults unless set): max_seqs, max_batched_tokens, KV block size")
    if cfg.ranking is not None:
        out.append("ranking batches fill at most half the latency SLO")
    if cfg.power_cap_w is not None:
        out.append("power cap: replicas get TDP-proportional shares and stretch steps at constant energy above idle")
    return out


def _describe(g: Any, blocks: int) -> dict[str, Any]:
    return {"hw": g.hw, "model": g.model, "replicas": g.replicas, "tp": g.tp, "ep": g.ep, "pp": g.pp, "dp": g.dp,
            "dtype": g.dtype, "max_seqs": g.max_seqs, "max_batched_tokens": g.max_batched_tokens,
            "kv_blocks": blocks, "block_size": g.block_size, "serve_ranking": g.serve_ranking, "role": g.role}


def _ranking_model(name: str) -> Ranking:
    m = load_model(name)
    if not isinstance(m, Ranking):
        raise UserError(f"ranking model '{name}' is an LLM; give a ranking model (e.g. dlrm-v2)")
    return m


def _progress(env: Any, limit: float, report: Callable[[float], None]) -> Any:
    step = limit / 100
    while True:
        report(min(env.now / limit, 1.0))
        yield env.timeout(step)


def _clean(obj: Any) -> Any:
    """NaN → None so the summary is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj

