"""Command-line flags of the serving modes (accelsim.modes), shared by predict, pareto and plan.
Argparse only at import; the library is imported when the flags are read."""

from __future__ import annotations

import argparse
from typing import Any

from accelsim import validate as V


def add_mode_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("serving modes")
    g.add_argument("--attention-dp", action="store_true",
                   help="MoE: attention data parallel over the EP group, experts over every chip (wide EP); "
                        "with --ep E and --tp T pins dp = E / T, else searched")
    g.add_argument("--spec-decode", default=None, metavar="SPEC",
                   help="speculative decoding: draft=MODEL,k=K,accept=A or mtp=K,accept=A")
    g.add_argument("--prefix-hit", type=V.number(0.0, 0.99, lo_open=False), default=0.0,
                   metavar="H", help="share of each prompt whose KV is already cached (prefix caching), 0..0.99")
    g.add_argument("--image-tokens", type=V.count(lo=0, hi=V.MAX_TOKENS), default=0, metavar="T",
                   help="image tokens per prompt (Llama 4: 144 per 336 px tile); adds the vision encoder")


def modes_from_args(args: argparse.Namespace) -> Any:
    """The `accelsim.modes.Modes` the flags ask for."""
    from accelsim.modes import Modes, parse_spec_decode

    spec = parse_spec_decode(args.spec_decode) if args.spec_decode else None
    return Modes(spec=spec, prefix_hit=args.prefix_hit, image_tokens=args.image_tokens)
