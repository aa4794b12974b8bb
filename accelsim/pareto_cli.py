"""`accelsim pareto`: the tokens/s-per-chip vs tokens/s-per-user front (argparse only at import)."""

from __future__ import annotations

import argparse
from typing import Any

from accelsim import args as A
from accelsim import validate as V
from accelsim.mode_args import add_mode_args, modes_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("pareto", help="front of tokens/s per chip vs tokens/s per user over layouts and batches")
    A.add_hardware(p)
    A.add_model(p)
    p.add_argument("--chips", type=V.count(), default=None, help="only layouts whose chips divide N")
    A.add_precision(p)
    A.add_request(p, batch=False)
    A.add_slos(p)
    A.add_efficiency(p)
    add_mode_args(p)
    p.add_argument("--html", type=V.output_file, default=None, metavar="FILE", help="write a Plotly chart")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_pareto)


def _pareto(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.errors import UserError
    from accelsim.pareto import figure, pareto
    from accelsim.search import default_dtype
    from accelsim.spec import load_model
    from accelsim.spec.model import LLM

    (chip,) = A.chips_from(args)
    model = load_model(args.model)
    if not isinstance(model, LLM):
        raise UserError(f"pareto serves LLMs; {model.name} is a ranking model")
    r = pareto(chip, model, eff=A.efficiency_from(args), chips=args.chips, dtype=args.dtype or default_dtype(model),
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
