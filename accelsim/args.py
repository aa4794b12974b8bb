"""Command-line flags shared by every command that takes them: one name, one type, one default.

Groups (each adds an argparse argument group, so `--help` lists flags under the same headings in
`predict`, `compare`, `plan` and `simulate`):
    hardware     --hw, --what-if
    model        --model
    parallelism  --tp, --ep, --pp, --placement (and --chips where a command deploys a fixed count)
    precision    --dtype, --kv-dtype
    request      --input-len, --output-len, --batch
    SLOs         --max-ttft, --max-tpot, --max-latency
    efficiency   --fidelity, --stack, --calibration
Readers turn the parsed flags into library objects (`chips_from`, `efficiency_from`, `query_from`,
`layout_from`). argparse only at import time: registering a command costs no heavy imports.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from accelsim import validate as V
from accelsim.efficiency import DEFAULT_FIDELITY, FIDELITY_CHOICES
from accelsim.spec.chip import SERVING_DTYPES, WHAT_IF_KEYS

if TYPE_CHECKING:
    from accelsim.perf import Efficiency
    from accelsim.predict import Layout
    from accelsim.search import Query
    from accelsim.spec import Chip, Model


class Once(argparse.Action):
    """A flag that may be given once: `--hw a --hw b` is an error, not the last one silently."""

    def __call__(self, parser: argparse.ArgumentParser, ns: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if getattr(ns, self.dest, None) is not None:
            hint = " (to compare chips: accelsim compare --hw A,B,...)" if self.dest == "hw" else ""
            parser.error(f"argument {option_string}: given more than once{hint}")
        setattr(ns, self.dest, values)


def add_hardware(p: argparse.ArgumentParser, *, many: bool = False, required: bool = True) -> None:
    g = p.add_argument_group("hardware")
    what = "chip names or .toml paths, comma separated" if many else "chip name or .toml path"
    g.add_argument("--hw", required=required, action=Once, help=what)
    g.add_argument("--what-if", default=None, action=Once, metavar="K=F,...",
                   help=f"scale chip values, e.g. mem_bw=2,flops=0.5 (keys: {', '.join(WHAT_IF_KEYS)})")


def add_model(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", required=True, action=Once, help="model name or .toml path")


def add_parallelism(p: argparse.ArgumentParser, *, chips: bool = False, chips_required: bool = True) -> None:
    g = p.add_argument_group("parallelism (none given: the layout is searched)")
    if chips:
        g.add_argument("--chips", type=V.count(), required=chips_required,
                       help="chips deployed, as chips / (tp x pp) replicas (compare: of each chip; default "
                            "one replica of its best layout)")
    g.add_argument("--tp", type=V.count(hi=V.MAX_PARALLEL), default=None,
                   help="tensor parallel size; pins the layout" + (" (default with --ep/--pp: chips / pp)"
                                                                   if chips else ""))
    g.add_argument("--ep", type=V.count(hi=V.MAX_PARALLEL), default=None,
                   help="expert parallel size (divides tp); pins the layout (default with --tp/--pp: 1)")
    g.add_argument("--pp", type=V.count(hi=V.MAX_PARALLEL), default=None,
                   help="pipeline stages; pins the layout (default with --tp/--ep: 1)")
    add_placement(g)


PLACEMENTS = ("auto", "replicated", "table_wise", "row_wise", "column_wise", "hybrid")


def add_placement(g: Any) -> None:
    """--placement (ranking): where the embedding tables live (accelsim.ranking)."""
    g.add_argument("--placement", choices=PLACEMENTS, default=None,
                   help="ranking: where the embedding tables live (default auto: replicas when they fit on one "
                        "chip, else the fastest TorchRec-style sharding over the smallest group that holds them)")


def add_precision(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("precision")
    g.add_argument("--dtype", choices=SERVING_DTYPES, default=None,
                   help="weight/compute format (default: fp8 for LLMs, bf16 for ranking)")
    g.add_argument("--kv-dtype", choices=SERVING_DTYPES, default=None,
                   help="KV-cache format (default: fp8 when --dtype is fp8/fp4, else bf16)")


def add_request(p: argparse.ArgumentParser, *, batch: bool = True) -> None:
    g = p.add_argument_group("request shape")
    g.add_argument("--input-len", type=V.count(hi=V.MAX_TOKENS), default=1000, help="prompt tokens (LLM)")
    g.add_argument("--output-len", type=V.count(hi=V.MAX_TOKENS), default=1000, help="output tokens (LLM)")
    if batch:
        g.add_argument("--batch", type=V.count(hi=V.MAX_BATCH), default=None,
                       help="pin the batch: sequences per replica (LLM) or samples per chip (ranking)")


def add_slos(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("SLOs (the batch is the largest-throughput one that meets them)")
    g.add_argument("--max-ttft", type=V.seconds(), default=None, help="time to first token, s")
    g.add_argument("--max-tpot", type=V.seconds(), default=None, help="time per output token, s")
    g.add_argument("--max-latency", type=V.seconds(), default=None, help="ranking batch latency, s (default 0.06)")


def add_efficiency(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("efficiency model")
    g.add_argument("--fidelity", choices=FIDELITY_CHOICES, default=DEFAULT_FIDELITY,
                   help=f"how operator efficiency is obtained (default {DEFAULT_FIDELITY})")
    g.add_argument("--stack", default=None, type=V.name, help="software stack from accelsim/data/stacks.toml")
    g.add_argument("--calibration", default=None, type=V.input_file,
                   help="calibration profile (accelsim calibrate): fidelity calibrated")


def add_serving(p: argparse.ArgumentParser, *, chips: bool = False, chips_required: bool = True) -> None:
    """Every group a serving prediction takes (predict, compare, plan)."""
    add_model(p)
    add_parallelism(p, chips=chips, chips_required=chips_required)
    add_precision(p)
    add_request(p)
    add_slos(p)
    add_efficiency(p)


# -- readers ---------------------------------------------------------------------------------------


MAX_HW = 256  # chips one command compares: ~5 ms and ~0.2 MB each, and a table a reader can read


def hw_names(args: argparse.Namespace) -> list[str]:
    from accelsim.errors import UserError

    names = [n.strip() for n in args.hw.split(",") if n.strip()]
    if not names:
        raise UserError("--hw is empty: give a chip name or .toml path")
    if len(names) > MAX_HW:
        raise UserError(f"--hw names {len(names):,} chips; at most {MAX_HW} at once")
    return names


def chips_from(args: argparse.Namespace) -> list[Chip]:
    """The chips named by --hw (comma separated), each with --what-if applied."""
    from accelsim.efficiency import parse_what_if
    from accelsim.spec import load_chip

    factors = parse_what_if(args.what_if)
    chips = [load_chip(n) for n in hw_names(args)]
    return [c.scaled(**factors) if factors else c for c in chips]


def efficiency_from(args: argparse.Namespace) -> Efficiency:
    from accelsim.efficiency import efficiency_from_args

    # one chip: its own efficiency (calibrated or projected, with its band); several: resolved per chip
    chips = chips_from(args) if getattr(args, "hw", None) else []
    chip = chips[0] if len(chips) == 1 else None
    return efficiency_from_args(args.fidelity, args.stack, args.calibration, chip=chip)  # type: ignore[no-any-return]


def query_from(args: argparse.Namespace, model: Model, eff: Efficiency, **extra: Any) -> Query:
    """The search query the flags describe (`extra`: Query fields a command adds, e.g. modes)."""
    from accelsim.ranking import parse_placement
    from accelsim.search import query

    batch = getattr(args, "batch", None)
    extra.setdefault("placement", parse_placement(getattr(args, "placement", None)))
    return query(model, eff, args.dtype, kv_dtype=args.kv_dtype, input_len=args.input_len,
                 output_len=args.output_len, batch=batch, max_ttft=args.max_ttft, max_tpot=args.max_tpot,
                 max_latency=args.max_latency, **extra)


def layout_from(args: argparse.Namespace, model: Model, chips: int | None = None) -> Layout | None:
    """The LLM layout --tp/--ep/--pp pin (None when none is given). Unset values: tp = chips / pp
    (or 1 without a chip count), ep = pp = 1."""
    from accelsim.graph import Parallel
    from accelsim.spec import LLM

    if not isinstance(model, LLM) or (args.tp, args.ep, args.pp) == (None, None, None):
        return None
    pp = args.pp or 1
    tp = args.tp if args.tp is not None else max((chips or pp) // pp, 1)
    return Parallel(tp=tp, ep=args.ep or 1, pp=pp)
