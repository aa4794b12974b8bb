"""`accelsim pareto`: the tokens/s-per-chip vs tokens/s-per-user front (argparse only at import)."""

from __future__ import annotations

import argparse
from typing import Any

from accelsim import validate as V
from accelsim.mode_args import add_mode_args, modes_from_args

_DTYPES = ("bf16", "fp8", "fp4")


def register(sub: Any) -> None:
    p = sub.add_parser("pareto", help="front of tokens/s per chip vs tokens/s per user over layouts and batches")
    p.add_argument("--hw", required=True, help="chip name or .toml path")
    p.add_argument("--model", required=True, help="LLM name or .toml path")
    p.add_argument("--chips", type=V.count(), default=None, help="only layouts whose chips divide N")
    p.add_argument("--dtype", choices=_DTYPES, default="fp8")
    p.add_argument("--kv-dtype", choices=_DTYPES, default=None)
    p.add_argument("--input-len", type=V.count(hi=V.MAX_TOKENS), default=1000)
    p.add_argument("--output-len", type=V.count(hi=V.MAX_TOKENS), default=1000)
    p.add_argument("--max-ttft", type=V.seconds(), default=None, help="SLO on time to first token, s")
    p.add_argument("--max-tpot", type=V.seconds(), default=None, help="SLO on time per output token, s")
    p.add_argument("--fidelity", choices=("analytical", "roofline"), default="analytical")
    p.add_argument("--stack", default=None, help="software stack from accelsim/data/stacks.toml")
    p.add_argument("--what-if", default=None, metavar="K=F,...", help="scale chip values, e.g. mem_bw=2")
    add_mode_args(p)
    p.add_argument("--html", type=V.output_file, default=None, metavar="FILE", help="write a Plotly chart")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_pareto)


def _pareto(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.efficiency import efficiency_from_args, parse_what_if
    from accelsim.errors import UserError
    from accelsim.pareto import figure, pareto
    from accelsim.spec import load_chip, load_model
    from accelsim.spec.model import LLM

    chip = load_chip(args.hw)
    factors = parse_what_if(args.what_if)
    if factors:
        chip = chip.scaled(**factors)
    model = load_model(args.model)
    if not isinstance(model, LLM):
        raise UserError(f"pareto serves LLMs; {model.name} is a ranking model")
    r = pareto(chip, model, eff=efficiency_from_args(args.fidelity, args.stack), chips=args.chips, dtype=args.dtype,
               kv_dtype=args.kv_dtype, input_len=args.input_len, output_len=args.output_len, max_ttft=args.max_ttft,
               max_tpot=args.max_tpot, modes=modes_from_args(args), attention_dp=args.attention_dp)
    if args.html:
        from accelsim.io import write_text

        write_text(args.html, figure(r).to_html(include_plotlyjs=True, full_html=True))
    if args.json:
        print_json(r)
        return 0
    print(f"{r['model']} on {r['hw']}: {len(r['points'])} front points of {r['evaluated']} (layout, batch) points "
          f"[fidelity: {r['fidelity']}]")
    print(f"  {'tok/s/user':>10s} {'tok/s/chip':>11s} {'TTFT ms':>8s}  layout")
    for p in r["points"]:
        lay = p["layout"]
        print(f"  {p['tokens_per_s_per_user']:10.1f} {p['tokens_per_s_per_chip']:11,.0f} {p['ttft_s'] * 1e3:8.1f}  "
              f"tp={lay['tp']} ep={lay['ep']} pp={lay['pp']} dp={lay['dp']} batch {p['batch']}")
    if args.html:
        print(f"  chart: {args.html}")
    return 0
