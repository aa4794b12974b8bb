"""`accelsim simulate` (serving fleet) and `accelsim simulate-training` (a training job under failures).

Argument parsing only (argparse and stdlib at import time); the work is in `cluster.simulate` and
`training.simulate_training`.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from accelsim import args as A
from accelsim import validate as V
from accelsim.args import Once
from accelsim.efficiency import DEFAULT_FIDELITY, FIDELITY_CHOICES
from accelsim.errors import UserError
from accelsim.serve.bounds import MAX_SEQS, MAX_TRAINING_EVENTS
from accelsim.spec.chip import SERVING_DTYPES

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration(text: str) -> float:
    """Seconds from '90', '90s', '15m', '2h' or '54d': finite, from 0 to ten years (validate.MAX_SECONDS)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"'{text[:40]}' is not a duration (e.g. 600, 90s, 15m, 2h, 54d)")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    V.check_range(seconds, f"duration '{text}'", lo=0.0, hi=V.MAX_SECONDS, exc=argparse.ArgumentTypeError)
    return seconds


def register(sub: Any) -> None:
    p = sub.add_parser("simulate", help="discrete-event simulation of a serving fleet (batching, KV, failures, power)")
    g = p.add_argument_group("cluster (one group from flags, or --cluster FILE)")
    g.add_argument("--hw", action=Once, help="chip name or .toml path")
    g.add_argument("--model", action=Once, help="LLM, or a ranking model to simulate ranking serving alone")
    g.add_argument("--chips", type=V.count(), help="chips in the cluster")
    g.add_argument("--tp", type=V.count(hi=V.MAX_PARALLEL), default=None,
                   help="tensor parallel size (default: chips / replicas / pp)")
    g.add_argument("--ep", type=V.count(hi=V.MAX_PARALLEL), default=1, help="expert parallel size (divides tp)")
    g.add_argument("--pp", type=V.count(hi=V.MAX_PARALLEL), default=1, help="pipeline stages")
    g.add_argument("--replicas", type=V.count(), default=None, help="replicas (default: chips / (tp x pp))")
    g.add_argument("--dtype", choices=SERVING_DTYPES, default=None,
                   help="weight/compute format (default: fp8 for LLMs, bf16 for ranking, as predict and plan)")
    g.add_argument("--kv-dtype", choices=SERVING_DTYPES, default=None)
    g.add_argument("--cluster", metavar="FILE", type=V.input_file,
                   help="TOML with [[llm]] and [[ranking]] replica groups (heterogeneous)")
    g.add_argument("--max-seqs", type=V.count(hi=MAX_SEQS), default=None,
                   help="running sequences per replica (default 256)")
    g.add_argument("--max-batched-tokens", type=V.count(hi=V.MAX_TOKENS), default=None,
                   help="tokens per step (default 8192)")
    g.add_argument("--block-size", type=V.count(hi=65536), default=None, help="KV block size in tokens (default 16)")
    g.add_argument("--kv-blocks", type=V.count(hi=10**10), default=None, help="override the KV blocks per replica")
    g.add_argument("--router", choices=("round-robin", "least-outstanding"), default="least-outstanding")
    A.add_placement(g)
    g.add_argument("--disagg", default=None, metavar="P:N,D:M",
                   help="disaggregated: N prefill chips P and M decode chips D, each pool in its best layout "
                        "(accelsim.disagg); replaces --hw/--chips")
    g.add_argument("--attention-dp", action="store_true",
                   help="MoE: attention data parallel, dp = ep / tp groups per replica (experts over all of them)")
    g.add_argument("--spec-decode", default=None, metavar="SPEC",
                   help="speculative decoding on every LLM replica: mtp=K,accept=A or draft=MODEL,k=K,accept=A")
    g.add_argument("--prefix-cache-share", type=V.number(0.0, 0.9, lo_open=False), default=0.0,
                   help="share of each replica's KV blocks kept as an LRU prefix cache (0: off)")
    t = p.add_argument_group("traffic")
    t.add_argument("--arrival-rate", type=V.number(hi=V.MAX_RATE), default=None, help="requests per second")
    t.add_argument("--arrival", choices=("poisson", "gamma", "trace"), default="poisson")
    t.add_argument("--cv", type=V.number(hi=100.0), default=1.0,
                   help="gamma: coefficient of variation of gaps (>1 bursty)")
    t.add_argument("--trace", metavar="CSV", type=V.input_file,
                   help="arrival_s,input_len,output_len per row (implies --arrival trace)")
    t.add_argument("--input-len", type=V.count(hi=V.MAX_TOKENS), default=1000, help="mean prompt tokens")
    t.add_argument("--output-len", type=V.count(hi=V.MAX_TOKENS), default=1000, help="mean output tokens")
    t.add_argument("--length-cv", type=V.number(0.0, 10.0, lo_open=False), default=0.5,
                   help="lognormal CV of lengths (0 = fixed)")
    t.add_argument("--image-tokens", type=V.count(lo=0, hi=V.MAX_TOKENS), default=0,
                   help="image tokens per prompt (Llama 4: 144 per tile; adds the vision encoder to prefill)")
    t.add_argument("--prefix-pool", type=V.count(lo=0), default=0,
                   help="distinct shared prompt prefixes requests draw from (0: none)")
    t.add_argument("--prefix-len", type=V.count(lo=0, hi=V.MAX_TOKENS), default=0, help="tokens of each prefix")
    t.add_argument("--prefix-zipf", type=V.number(0.0, 5.0, lo_open=False), default=0.0,
                   help="Zipf exponent of prefix popularity (0: uniform)")
    t.add_argument("--duration", type=duration, required=True, help="arrival window (600, 15m, 2h)")
    t.add_argument("--drain", action="store_true", help="run on until every request has finished")
    t.add_argument("--ranking-model", help="also serve a ranking stream of this model")
    t.add_argument("--ranking-rate", type=V.number(hi=V.MAX_RATE), default=None, help="ranking requests per second")
    t.add_argument("--ranking-samples", type=V.count(hi=V.MAX_BATCH), default=128, help="items per ranking request")
    t.add_argument("--ranking-slo", type=V.seconds(), default=0.060, help="ranking latency SLO, s")
    t.add_argument("--ranking-colocate", action="store_true", help="serve ranking on the LLM replicas")
    o = p.add_argument_group("failures, power, SLOs, output")
    o.add_argument("--failures", default="default", help="default | none | FILE (TOML, rates per chip-hour)")
    o.add_argument("--power-cap-w", type=V.number(hi=V.MAX_POWER_W), default=None,
                   help="site cap on accelerator power, W")
    # the SLO flags of predict and plan; here they count goodput (the old --slo-* names still work)
    o.add_argument("--max-ttft", "--slo-ttft", dest="slo_ttft", type=V.seconds(), default=2.0,
                   help="time to first token SLO, s, for goodput")
    o.add_argument("--max-tpot", "--slo-tpot", dest="slo_tpot", type=V.seconds(), default=0.2,
                   help="time per output token SLO, s, for goodput")
    o.add_argument("--interval", type=duration, default=None, help="time-series bin (default duration/200)")
    o.add_argument("--seed", type=V.seed, default=0)
    o.add_argument("--force", action="store_true",
                   help="run even when the expected requests, time-series bins or failures exceed the limits "
                        "of accelsim.serve.bounds (memory and time)")
    o.add_argument("--fidelity", choices=FIDELITY_CHOICES, default=DEFAULT_FIDELITY,
                   help=f"how operator efficiency is obtained (default {DEFAULT_FIDELITY}; as predict)")
    o.add_argument("--stack", default=None, type=V.name, help="software stack from accelsim/data/stacks.toml")
    o.add_argument("--calibration", default=None, type=V.input_file, help="calibration profile → fidelity calibrated")
    o.add_argument("--json", action="store_true")
    o.add_argument("--out", metavar="DIR", type=V.output_dir, help="write summary.json, requests.csv, timeseries.csv")
    p.set_defaults(func=_simulate)

    p = sub.add_parser("simulate-training", help="a synchronous training job under failures: effective time")
    p.add_argument("--chips", type=V.count(), required=True)
    p.add_argument("--duration", type=duration, required=True, help="wall time (e.g. 54d)")
    p.add_argument("--checkpoint-interval", default="auto", help="compute seconds between checkpoints, or auto "
                   "(Young: sqrt(2 x cost x MTBF))")
    p.add_argument("--checkpoint-cost", type=duration, default=30.0,
                   help="stall per checkpoint (default 30 s, assumed)")
    p.add_argument("--restart-cost", type=duration, default=300.0, help="time to resume after a failure "
                   "(default 300 s, assumed)")
    p.add_argument("--failures", default="default", help="default | none | FILE")
    p.add_argument("--seed", type=V.seed, default=0)
    p.add_argument("--force", action="store_true",
                   help=f"run even when the job needs more than {MAX_TRAINING_EVENTS:.0e} events")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_simulate_training)


def _config(args: argparse.Namespace) -> Any:
    import dataclasses

    from accelsim.search import default_dtype
    from accelsim.serve import config as C
    from accelsim.serve.failures import load_failures
    from accelsim.spec import load_model
    from accelsim.spec.model import Ranking

    overrides = {k: v for k, v in (("max_seqs", args.max_seqs), ("max_batched_tokens", args.max_batched_tokens),
                                   ("block_size", args.block_size), ("kv_blocks", args.kv_blocks),
                                   ("spec_decode", args.spec_decode)) if v is not None}
    ranking = None
    if args.ranking_model or args.ranking_rate is not None:
        if not (args.ranking_model and args.ranking_rate is not None):
            raise UserError("a ranking stream needs both --ranking-model and --ranking-rate")
        ranking = C.RankingTraffic(args.ranking_model, args.ranking_rate, args.ranking_samples, args.ranking_slo)
    traffic = None
    if args.cluster:
        given = [f"--{k}" for k in ("hw", "model", "chips", "tp", "replicas") if getattr(args, k) is not None]
        if given:
            raise UserError(f"--cluster defines the replicas; drop {', '.join(given)}")
        groups, rk_groups = C.load_cluster(args.cluster)
        groups = tuple(dataclasses.replace(g, **overrides) for g in groups)
    elif args.disagg:
        groups, rk_groups = _disagg_groups(args, overrides), ()
    else:
        missing = [f"--{k}" for k in ("hw", "model", "chips") if getattr(args, k) is None]
        if missing:
            raise UserError(f"give {', '.join(missing)} (or --cluster FILE)")
        if args.chips < 1:
            raise UserError(f"--chips must be >= 1, got {args.chips}")
        model = load_model(args.model)
        dtype = args.dtype or default_dtype(model)
        if isinstance(model, Ranking):
            if ranking is not None:
                raise UserError("--model is a ranking model already; drop --ranking-model/--ranking-rate")
            reps = args.replicas or 1
            if args.chips % reps:
                raise UserError(f"--chips {args.chips} is not a multiple of --replicas {reps}")
            rate = _rate(args)
            ranking = C.RankingTraffic(args.model, rate, args.ranking_samples, args.ranking_slo,
                                       "gamma" if args.arrival == "gamma" else "poisson", args.cv)
            groups, rk_groups = (), (C.RankingGroup(args.hw, reps, args.chips // reps, dtype,
                                                    None if args.placement == "auto" else args.placement),)
        else:
            dp = max(args.ep // (args.tp or 1), 1) if args.attention_dp else 1
            tp = args.tp if args.tp is not None else args.chips // ((args.replicas or 1) * args.pp * dp)
            reps = args.replicas if args.replicas is not None else args.chips // max(tp * dp * args.pp, 1)
            if tp < 1 or reps < 1 or reps * tp * dp * args.pp != args.chips:
                dps = f" x dp {dp}" if dp > 1 else ""
                raise UserError(f"--chips {args.chips} must equal replicas x tp x pp{dps} "
                                f"({args.replicas or '?'} x {args.tp or '?'} x {args.pp})")
            groups = (C.ReplicaGroup(args.hw, args.model, reps, tp, args.ep, args.pp, dtype, args.kv_dtype,
                                     serve_ranking=args.ranking_colocate, dp=dp, **overrides),)
            rk_groups = ()
    if groups:
        arrival = "trace" if args.trace else args.arrival
        rate = _rate(args) if arrival != "trace" else 1.0
        traffic = C.Traffic(rate, arrival, args.cv, args.trace, args.input_len, args.output_len, args.length_cv,
                            args.prefix_pool, args.prefix_len, args.prefix_zipf, args.image_tokens)
        if args.prefix_cache_share:
            groups = tuple(dataclasses.replace(g, prefix_cache_share=args.prefix_cache_share) for g in groups)
    return C.SimConfig(groups=groups, traffic=traffic, duration_s=args.duration, ranking_groups=rk_groups,
                       ranking=ranking, router=args.router, failures=load_failures(args.failures), seed=args.seed,
                       drain=args.drain, slo_ttft_s=args.slo_ttft, slo_tpot_s=args.slo_tpot,
                       power_cap_w=args.power_cap_w, interval_s=args.interval)


def _disagg_groups(args: argparse.Namespace, overrides: dict[str, Any]) -> tuple[Any, ...]:
    """A prefill and a decode group, each in the layout `predict --disagg` picks for its pool."""
    from accelsim.disagg import parse_disagg, predict_disagg
    from accelsim.efficiency import efficiency_from_args
    from accelsim.search import default_dtype
    from accelsim.serve import config as C
    from accelsim.spec import load_chip, load_model
    from accelsim.spec.model import LLM

    if args.hw or args.chips or args.model is None:
        raise UserError("--disagg gives the chips: drop --hw/--chips and give --model")
    (p_name, n_p), (d_name, n_d) = parse_disagg(args.disagg)
    if n_p is None or n_d is None:
        raise UserError("simulate --disagg needs both pool sizes (PREFILL_CHIP:N,DECODE_CHIP:M)")
    model = load_model(args.model)
    if not isinstance(model, LLM):
        raise UserError(f"--disagg serves LLMs; {model.name} is a ranking model")
    dtype = args.dtype or default_dtype(model)
    r = predict_disagg(load_chip(p_name), n_p, load_chip(d_name), n_d, model,
                       eff=efficiency_from_args(args.fidelity, args.stack), dtype=dtype, kv_dtype=args.kv_dtype,
                       input_len=args.input_len, output_len=args.output_len, attention_dp=args.attention_dp)
    return tuple(C.ReplicaGroup(pool.chip.name, args.model, pool.replicas, pool.stage.layout.tp, pool.stage.layout.ep,
                                pool.stage.layout.pp, dtype, args.kv_dtype, role=role, dp=pool.stage.layout.dp,
                                **overrides)
                 for role, pool in (("prefill", r.prefill), ("decode", r.decode)))


def _by_component(counts: dict[str, int]) -> str:
    """{'chip': 210, 'hbm': 77} -> ' (chip 210, hbm 77)'; '' when there are none."""
    return f" ({', '.join(f'{k} {v}' for k, v in counts.items())})" if counts else ""


def _rate(args: argparse.Namespace) -> float:
    if args.arrival_rate is None:
        raise UserError("give --arrival-rate (requests/s) or --trace CSV")
    return args.arrival_rate


def _simulate(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.efficiency import efficiency_from_args
    from accelsim.serve.cluster import simulate

    cfg = _config(args)
    if args.out:  # the files it will hold, checked now rather than after the run
        _check_outputs(args.out, ("summary.json", "requests.csv", "timeseries.csv"))
    eff = efficiency_from_args(args.fidelity, args.stack, args.calibration)
    if args.json or not sys.stdout.isatty():
        result = simulate(cfg, eff, force=args.force)
    else:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("simulating", total=1.0)
            result = simulate(cfg, eff, progress=lambda f: bar.update(task, completed=f), force=args.force)
    s = result.summary
    _warn_unfinished(s, args.drain)
    if args.out:
        s["files"] = result.write(args.out)
    if args.json:
        print_json(s)
        return 0
    _print_summary(s)
    return 0


def _check_outputs(out_dir: str, names: tuple[str, ...]) -> None:
    """UserError if a file `out_dir/name` could not be written (e.g. a directory of that name)."""
    import os

    from accelsim.io import check_output_path

    for name in names:
        try:
            check_output_path(os.path.join(out_dir, name), "file")
        except ValueError as exc:
            raise UserError(f"--out: {exc}") from None


def _warn_unfinished(s: dict[str, Any], drain: bool) -> None:
    """A draining run that hit its time limit with requests still in the system says so (stderr)."""
    left = s.get("requests_arrived", 0) - s.get("requests_completed", 0) - s.get("requests_rejected", 0)
    left += s.get("ranking_requests_arrived", 0) - s.get("ranking_requests_completed", 0)
    if drain and left > 0:
        s["unfinished_requests"] = left
        print(f"accelsim: warning: --drain stopped at {s['duration_s']:.0f} s (the limit) with {left:,} requests "
              f"unfinished; the fleet cannot keep up with the offered load", file=sys.stderr)


def _fmt(v: Any, scale: float = 1.0, spec: str = ",.1f") -> str:
    return "n/a" if v is None else format(v * scale, spec)


def _print_summary(s: dict[str, Any]) -> None:
    print(f"{s['chips']} chips, {s['replicas']} replicas, {s['duration_s']:.0f} s simulated  "
          f"[fidelity: {s['fidelity']}]  (wall {s['wall_s']:.1f} s)")
    if s["requests_arrived"]:
        print(f"  requests  {s['requests_completed']:,} of {s['requests_arrived']:,} completed, "
              f"{s['preemptions']:,} preemptions, {s['retries']:,} retries")
        print(f"  tokens/s  {_fmt(s['throughput_tokens_per_s'])} (goodput {_fmt(s['goodput_tokens_per_s'])}, "
              f"SLO attainment {_fmt(s['slo_attainment'], 100)}%)")
        print(f"  TTFT      p50 {_fmt(s['ttft_p50_s'], 1e3)} ms  p99 {_fmt(s['ttft_p99_s'], 1e3)} ms")
        print(f"  TPOT      p50 {_fmt(s['tpot_p50_s'], 1e3, '.2f')} ms  p99 {_fmt(s['tpot_p99_s'], 1e3, '.2f')} ms")
    if "ranking_requests_arrived" in s:
        tables = ", ".join(sorted({g["placement"] for g in s["groups"] if "placement" in g}))
        print(f"  ranking   {s['ranking_requests_completed']:,} of {s['ranking_requests_arrived']:,} queries, "
              f"{_fmt(s['ranking_samples_per_s'])} user-item pairs/s, p99 {_fmt(s['ranking_latency_p99_s'], 1e3)} ms, "
              f"SLO attainment {_fmt(s['ranking_slo_attainment'], 100)}%" + (f"; tables {tables}" if tables else ""))
    kwh = _fmt(s["energy_j"] / 3.6e6, 1, ",.3f")
    print(f"  power     mean {_fmt(s['mean_power_w'])} W (accelerators), energy {kwh} kWh")
    print(f"  failures  {s['interruptions']} interruptions{_by_component(s['interruptions_by_component'])}, "
          f"availability {_fmt(s['availability'], 100, '.3f')}%")
    for f in s.get("files", []):
        print(f"  wrote {f}")


def _simulate_training(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.serve.failures import load_failures
    from accelsim.serve.training import TrainingJob, simulate_training

    interval = None
    if args.checkpoint_interval != "auto":
        try:
            interval = duration(args.checkpoint_interval)
        except argparse.ArgumentTypeError as exc:
            raise UserError(f"--checkpoint-interval: {exc} or 'auto'") from None
    job = TrainingJob(args.chips, args.duration, args.checkpoint_cost, args.restart_cost, interval)
    r = simulate_training(job, load_failures(args.failures), args.seed, force=args.force)
    if args.json:
        print_json({k: v for k, v in r.items() if k != "interruptions_by_day"})
        return 0
    print(f"{r['chips']:,} chips for {r['duration_s'] / 86400:.1f} days, failures: {r['failures']}")
    mtbf = r["mtbf_s"]
    print(f"  job MTBF {mtbf / 3600:.2f} h" if mtbf else "  no failures")
    print(f"  interruptions {r['interruptions']} ({r['interruptions_per_day']:.2f}/day; expected "
          f"{r['expected_interruptions_per_day']:.2f}/day){_by_component(r['interruptions_by_component'])}")
    print(f"  checkpoint every {r['checkpoint_interval_s']:.0f} s (cost {r['checkpoint_s']:.0f} s), "
          f"restart {r['restart_s']:.0f} s")
    print(f"  effective training time {100 * r['effective_fraction']:.2f}% "
          f"(exact expectation {100 * r['expected_fraction']:.2f}%)")
    return 0
