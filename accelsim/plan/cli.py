"""`accelsim plan`: chips, racks and megawatts for a site or a demand (argparse only at import)."""

from __future__ import annotations

import argparse
from typing import Any

_DTYPES = ("bf16", "fp8", "fp4")


def register(sub: Any) -> None:
    p = sub.add_parser("plan", help="capacity of a site, or the site a demand needs (chips, racks, MW, tokens/J)")
    p.add_argument("--hw", required=True, help="chip name or .toml path")
    p.add_argument("--model", required=True, help="model name or .toml path")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--site-power-w", type=float, help="facility power budget, W (e.g. 1e9 for 1 GW)")
    goal.add_argument("--demand-tokens-per-s", type=float, help="LLM demand, output tokens/s")
    goal.add_argument("--demand-samples-per-s", type=float, help="ranking demand, samples/s")
    p.add_argument("--pue", type=float, default=None, help="power usage effectiveness (default 1.08, Meta fleet)")
    p.add_argument("--pue-range", default=None, metavar="LO,HI",
                   help="seasonal PUE range: provision at HI, average energy at the midpoint")
    p.add_argument("--input-len", type=int, default=1000)
    p.add_argument("--output-len", type=int, default=1000)
    p.add_argument("--max-ttft", type=float, default=None, help="SLO on time to first token, s")
    p.add_argument("--max-tpot", type=float, default=None, help="SLO on time per output token, s")
    p.add_argument("--max-latency", type=float, default=None, help="ranking: SLO on batch latency, s (default 0.06)")
    p.add_argument("--headroom", type=float, default=0.0, help="spare capacity as a fraction of demand (0.2 = +20%%)")
    p.add_argument("--availability", type=float, default=None,
                   help="replica availability in (0, 1] (default: from the failure model in plan/defaults.toml)")
    p.add_argument("--power-cap-w", type=float, default=None, help="cap each chip at this power (lower clocks)")
    p.add_argument("--dtype", choices=_DTYPES, default=None, help="weight format (default fp8 for LLMs, bf16 ranking)")
    p.add_argument("--tp", type=int, default=None, help="pin the replica layout instead of searching")
    p.add_argument("--ep", type=int, default=1)
    p.add_argument("--pp", type=int, default=1)
    p.add_argument("--host-overhead-w", type=float, default=None, help="W of host/network/fans per chip")
    p.add_argument("--chips-per-rack", type=int, default=None)
    p.add_argument("--rack-power-limit-w", type=float, default=None)
    p.add_argument("--fidelity", choices=("analytical", "roofline"), default="analytical")
    p.add_argument("--stack", default=None, help="software stack from accelsim/data/stacks.toml")
    p.add_argument("--calibration", default=None, help="calibration profile (accelsim calibrate)")
    p.add_argument("--what-if", default=None, metavar="K=F,...", help="scale chip values, e.g. mem_bw=2,flops=0.5")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_plan)


def _pue_range(text: str | None) -> tuple[float, float] | None:
    from accelsim.errors import UserError

    if text is None:
        return None
    lo, sep, hi = text.partition(",")
    try:
        if not sep:
            raise ValueError
        return float(lo), float(hi)
    except ValueError:
        raise UserError(f"--pue-range '{text}' must be LO,HI, e.g. 1.05,1.12") from None


def _plan(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.efficiency import efficiency_from_args, parse_what_if
    from accelsim.errors import UserError
    from accelsim.graph import Parallel
    from accelsim.plan.planner import plan
    from accelsim.spec import load_chip

    if args.pue is not None and args.pue_range is not None:
        raise UserError("give --pue or --pue-range, not both")
    chip = load_chip(args.hw)
    factors = parse_what_if(args.what_if)
    if factors:
        chip = chip.scaled(**factors)
    r = plan(chip, args.model, site_power_w=args.site_power_w, demand_tokens_per_s=args.demand_tokens_per_s,
             demand_samples_per_s=args.demand_samples_per_s, pue=args.pue, pue_range=_pue_range(args.pue_range),
             input_len=args.input_len, output_len=args.output_len, max_ttft=args.max_ttft, max_tpot=args.max_tpot,
             max_latency=args.max_latency, headroom=args.headroom, availability=args.availability,
             power_cap_w=args.power_cap_w, dtype=args.dtype,
             eff=efficiency_from_args(args.fidelity, args.stack, args.calibration),
             layout=Parallel(args.tp, args.ep, args.pp) if args.tp else None,
             host_overhead_w_per_chip=args.host_overhead_w, chips_per_rack=args.chips_per_rack,
             rack_power_limit_w=args.rack_power_limit_w)
    if args.json:
        print_json(r)
        return 0
    u = "tokens" if r["kind"] == "llm" else "samples"
    rep = r["replica"]
    goal = (f"site of {r['site_power_w'] / 1e6:,.1f} MW" if r["mode"] == "site"
            else f"demand of {r[f'demand_{u}_per_s']:,.0f} {u}/s (+{r['headroom']:.0%} headroom)")
    print(f"{r['model']} on {r['hw']}: {goal}  [fidelity: {r['fidelity']}]")
    print(f"  {r['chips']:,} chips in {r['racks']:,} racks ({r['chips_per_rack']} per rack"
          f"{', rack power limit binds' if r['rack_limit_binds'] else ''}); replica tp={rep['tp']} ep={rep['ep']} "
          f"pp={rep['pp']} batch {rep['batch']} {rep['dtype']}")
    print(f"  power: IT {r['it_power_w'] / 1e6:,.2f} MW, facility {r['facility_power_w'] / 1e6:,.2f} MW at PUE "
          f"{r['pue']:g} (provisioned); average draw {r['facility_power_avg_w'] / 1e6:,.2f} MW")
    print(f"  serves {r[f'throughput_{u}_per_s']:,.0f} {u}/s at full load, {r[f'servable_{u}_per_s']:,.0f} {u}/s "
          f"after availability {r['availability']:.4f} and headroom; {r[f'{u}_per_joule']:.3g} {u}/J (facility)")
    print(f"  bound: {r['bound']}; binding: {r['binding']}")
    if r["assumed_hw_values"]:
        print(f"  assumed chip values: {', '.join(r['assumed_hw_values'])}")
    print(f"  assumed planning values: {', '.join(r['assumptions'])}")
    return 0
