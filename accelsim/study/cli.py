"""`accelsim study`: run a declarative study and write its HTML report (argparse only at import)."""

from __future__ import annotations

import argparse
from typing import Any

from accelsim import validate as V


def register(sub: Any) -> None:
    p = sub.add_parser("study", help="run a study (studies/*.toml) and write an HTML report with CSVs")
    p.add_argument("study", metavar="FILE_OR_NAME", help="a shipped study name (e.g. mtia_roadmap) or a .toml path")
    p.add_argument("--out", required=True, metavar="DIR", type=V.output_dir,
                   help="report directory (DIR/index.html + CSVs)")
    p.add_argument("--reduced", action="store_true", help="apply the study's [reduced] overrides (fast, for CI)")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDR", type=V.ray_address,
                   help="run sweep chunks on Ray: a local instance, or the cluster at ADDR (needs pip install ray)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a [params] value (TOML syntax), e.g. --set input_len=2000")
    p.add_argument("--json", action="store_true", help="print the result (report path, CSVs, params) as JSON")
    p.set_defaults(func=_study)


def _study(args: argparse.Namespace) -> int:
    import os

    from accelsim.cli import print_json
    from accelsim.errors import UserError
    from accelsim.io import check_output_path
    from accelsim.study.run import run_study
    from accelsim.study.spec import parse_override

    overrides = dict(parse_override(s) for s in args.set)
    try:  # the page it will write, checked now rather than after the study ran
        check_output_path(os.path.join(args.out, "index.html"), "file")
    except ValueError as exc:
        raise UserError(f"--out: {exc}") from None
    V.check_reachable(args.ray)
    result = run_study(args.study, args.out, reduced=args.reduced, ray=args.ray, overrides=overrides)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"{result.title}: {len(result.tables)} tables, {result.wall_s:.1f} s")
        print(result.report)
    return 0
