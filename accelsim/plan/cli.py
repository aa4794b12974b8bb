"""`accelsim plan`: chips, racks and megawatts for a site or a demand (argparse only at import)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from accelsim import args as A
from accelsim import validate as V
from accelsim.mode_args import add_mode_args, modes_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("plan", help="capacity of a site, or the site a demand needs (chips, racks, MW, tokens/J)")
    A.add_hardware(p, required=False)
    p.add_argument("--disagg", default=None, metavar="P,D",
                   help="disaggregated: size a prefill pool of chip P and a decode pool of chip D for the demand "
                        "(replaces --hw)")
    A.add_serving(p)
    g = p.add_argument_group("goal (one of)")
    goal = g.add_mutually_exclusive_group(required=True)
    goal.add_argument("--site-power-w", type=V.number(hi=V.MAX_POWER_W),
                      help="facility power budget, W (e.g. 1e9 for 1 GW)")
    goal.add_argument("--demand-tokens-per-s", type=V.number(hi=1e12), help="LLM demand, output tokens/s")
    goal.add_argument("--demand-samples-per-s", type=V.number(hi=1e12),
                      help="ranking demand in samples/s: user-item pairs (a query carries candidates_per_query)")
    goal.add_argument("--demand-requests-per-s", type=V.number(hi=1e12),
                      help="LLM demand, requests/s (x --output-len output tokens each)")
    add_mode_args(p)
    g = p.add_argument_group("site")
    g.add_argument("--pue", type=V.number(1.0, 3.0, lo_open=False), default=None,
                   help="power usage effectiveness (default 1.08, Meta fleet)")
    g.add_argument("--pue-range", default=None, metavar="LO,HI",
                   help="seasonal PUE range: provision at HI, average energy at the midpoint")
    g.add_argument("--headroom", type=V.number(0.0, 100.0, lo_open=False), default=0.0,
                   help="spare capacity as a fraction of demand (0.2 = +20%%)")
    g.add_argument("--availability", type=V.fraction(lo_open=True), default=None,
                   help="replica availability in (0, 1] (default: the failure model in accelsim/data/deployment.toml)")
    g.add_argument("--power-cap-w", type=V.number(hi=1e5), default=None,
                   help="cap each chip at this power (lower clocks)")
    g.add_argument("--host-overhead-w", type=V.number(0.0, 1e5, lo_open=False), default=None,
                   help="W of host/network/fans per chip")
    g.add_argument("--chips-per-rack", type=V.count(hi=100_000), default=None)
    g.add_argument("--rack-power-limit-w", type=V.number(hi=1e8), default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_plan)


def _plan_disagg(args: argparse.Namespace, model: Any) -> int:
    from accelsim.cli import print_json
    from accelsim.disagg import parse_disagg
    from accelsim.errors import UserError
    from accelsim.plan.disagg import plan_disagg
    from accelsim.spec import load_chip

    if args.hw is not None:
        raise UserError("--disagg names the chips: drop --hw")
    (p_name, n_p), (d_name, n_d) = parse_disagg(args.disagg)
    if n_p is not None or n_d is not None:
        raise UserError("plan --disagg sizes the pools: give PREFILL_CHIP,DECODE_CHIP without counts")
    tokens = args.demand_tokens_per_s
    if args.demand_requests_per_s is not None:
        tokens = args.demand_requests_per_s * args.output_len
    if tokens is None:
        raise UserError("plan --disagg needs --demand-tokens-per-s or --demand-requests-per-s")
    r = plan_disagg(load_chip(p_name), load_chip(d_name), model, demand_tokens_per_s=tokens,
                    eff=A.efficiency_from(args), dtype=args.dtype, kv_dtype=args.kv_dtype, input_len=args.input_len,
                    output_len=args.output_len, max_ttft=args.max_ttft, max_tpot=args.max_tpot,
                    headroom=args.headroom, pue=args.pue, modes=modes_from_args(args),
                    attention_dp=args.attention_dp)
    if args.json:
        print_json(r)
        return 0
    print(f"{r['model']} disaggregated for {r['demand_tokens_per_s']:,.0f} tokens/s "
          f"({r['demand_requests_per_s']:,.1f} requests/s, +{r['headroom']:.0%} headroom)  [fidelity: {r['fidelity']}]")
    for role in ("prefill", "decode"):
        q = r[role]
        print(f"  {role:7s} {q['chips']:5,d} x {q['hw']:10s} tp={q['tp']} ep={q['ep']} pp={q['pp']} dp={q['dp']} "
              f"x {q['replicas']} replicas  {q['requests_per_s']:,.1f} req/s capacity  bound: {q['bound']}")
    print(f"  {r['chips']:,} chips; KV over {r['kv_transfer']['fabric']}"
          f"{'' if r['kv_link_carries_demand'] else ' (the KV link cannot carry the demand)'}")
    print(f"  power: IT {r['it_power_w'] / 1e6:,.3f} MW, facility {r['facility_power_w'] / 1e6:,.3f} MW at PUE "
          f"{r['pue']:g}; {r['tokens_per_joule_facility']:.3g} tokens/J (facility)")
    print(f"  assumed: {', '.join(r['assumptions'])}")
    return 0


def _pue_range(text: str | None) -> tuple[float, float] | None:
    from accelsim.errors import UserError

    if text is None:
        return None
    lo, sep, hi = text.partition(",")
    try:
        if not sep:
            raise ValueError
        pair = float(lo), float(hi)
    except ValueError:
        raise UserError(f"--pue-range '{text}' must be LO,HI, e.g. 1.05,1.12") from None
    if not (all(map(math.isfinite, pair)) and 1.0 <= pair[0] <= pair[1] <= 3.0):
        raise UserError(f"--pue-range '{text}' must be LO,HI with 1 <= LO <= HI <= 3")
    return pair


def _plan(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.errors import UserError
    from accelsim.plan.planner import plan
    from accelsim.spec import load_model

    if args.pue is not None and args.pue_range is not None:
        raise UserError("give --pue or --pue-range, not both")
    model = load_model(args.model)
    if args.disagg:
        return _plan_disagg(args, model)
    if args.hw is None:
        raise UserError("plan needs --hw (or --disagg PREFILL_CHIP,DECODE_CHIP)")
    (chip,) = A.chips_from(args)
    if args.batch is not None:
        raise UserError("plan searches the batch under the SLOs; --batch is for predict")
    tokens = args.demand_tokens_per_s
    if args.demand_requests_per_s is not None:
        tokens = args.demand_requests_per_s * args.output_len
    r = plan(chip, model, site_power_w=args.site_power_w, demand_tokens_per_s=tokens,
             demand_samples_per_s=args.demand_samples_per_s, pue=args.pue, pue_range=_pue_range(args.pue_range),
             input_len=args.input_len, output_len=args.output_len, max_ttft=args.max_ttft, max_tpot=args.max_tpot,
             max_latency=args.max_latency, headroom=args.headroom, availability=args.availability,
             power_cap_w=args.power_cap_w, dtype=args.dtype, kv_dtype=args.kv_dtype, eff=A.efficiency_from(args),
             layout=A.layout_from(args, model), host_overhead_w_per_chip=args.host_overhead_w,
             chips_per_rack=args.chips_per_rack, rack_power_limit_w=args.rack_power_limit_w,
             modes=modes_from_args(args), attention_dp=args.attention_dp, placement=args.placement)
    if args.json:
        print_json(r)
        return 0
    u = "tokens" if r["kind"] == "llm" else "samples"
    rep = r["replica"]
    goal = (f"site of {r['site_power_w'] / 1e6:,.1f} MW" if r["mode"] == "site"
            else f"demand of {r[f'demand_{u}_per_s']:,.0f} {u}/s (+{r['headroom']:.0%} headroom)")
    print(f"{r['model']} on {r['hw']}: {goal}  [fidelity: {r['fidelity']}]")
    racks = f"{r['racks']:,} rack{'s' * (r['racks'] != 1)}"
    print(f"  {r['chips']:,} chip{'s' * (r['chips'] != 1)} in {racks} ({r['chips_per_rack']} per rack"
          f"{', rack power limit binds' if r['rack_limit_binds'] else ''}); replica {rep['layout']} "
          f"batch {rep['batch']} {rep['dtype']}" + (f", tables {rep['placement']}" if rep.get("placement") else ""))
    print(f"  power: IT {r['it_power_w'] / 1e6:,.2f} MW, facility {r['facility_power_w'] / 1e6:,.2f} MW at PUE "
          f"{r['pue']:g} (provisioned); average draw {r['facility_power_avg_w'] / 1e6:,.2f} MW")
    print(f"  serves {r[f'throughput_{u}_per_s']:,.0f} {u}/s at full load, {r[f'servable_{u}_per_s']:,.0f} {u}/s "
          f"after availability {r['availability']:.4f} and headroom; {r[f'{u}_per_joule']:.3g} {u}/J (facility)")
    print(f"  bound: {r['bound']}; binding: {r['binding']}")
    if r["assumed_hw_values"]:
        print(f"  assumed chip values: {', '.join(r['assumed_hw_values'])}")
    print(f"  assumed planning values: {', '.join(r['assumptions'])}")
    return 0
