"""`accelsim import aiconfigurator`: published GPU op measurements -> a measurement CSV.
Argument parsing only; pandas and pyarrow are imported inside the handler."""

from __future__ import annotations

import argparse
from typing import Any

from accelsim import validate as V
from accelsim.errors import UserError


def register(sub: Any) -> None:
    p = sub.add_parser("import", help="import published GPU measurements into the measurement schema")
    src = p.add_subparsers(dest="source", required=True, metavar="{aiconfigurator}")
    a = src.add_parser("aiconfigurator", help="NVIDIA AIConfigurator's op database (pip install 'accelsim[gpudata]')")
    a.add_argument("--list", action="store_true", help="list systems, ops, frameworks, versions and row counts")
    a.add_argument("--system", default=None, help="AIConfigurator system, e.g. h100_sxm (see --list)")
    a.add_argument("--framework", default=None, help="comma-separated frameworks (default: all), e.g. trtllm,vllm")
    a.add_argument("--ops", default=None, help="comma-separated: gemm,moe,attention,comm,quantize (default: all)")
    a.add_argument("--version", default=None,
                   help="framework version (default: per table, the version with the most rows)")
    a.add_argument("--kernel", default=None, help="keep rows whose kernel_source contains this text")
    a.add_argument("--routing", default=None, help="MoE: keep one routing distribution (balanced, power_law_1.2 ...)")
    a.add_argument("--limit", type=V.count(1, 10**9), default=None,
                   help="at most this many rows per table (a quick sample)")
    a.add_argument("--out", type=V.output_file, default=None, help="measurement CSV to write")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_aiconfigurator)


def _split(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _aiconfigurator(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.gpudata import aiconfigurator as A

    if args.list:
        tables = A.list_tables()
        rows = [{"system": t.system, "chip": t.chip, "op": t.op, "framework": t.framework, "version": t.version,
                 "table": t.name, "collection": t.collection, "rows": t.num_rows(),
                 "importable": t.name in A.CONVERTERS} for t in tables
                if args.system in (None, t.system)]
        if args.json:
            print_json({"package": A.PACKAGE, "package_version": A.package_version(), "license": A.LICENSE,
                        "tables": rows})
            return 0
        print(f"{A.PACKAGE} {A.package_version()} ({A.LICENSE}): {len(rows)} tables")
        print(f"  {'system':20s} {'chip':9s} {'op':12s} {'framework':9s} {'version':12s} {'table':34s} {'rows':>8s}")
        for r in rows:
            mark = "" if r["importable"] else "  (not imported)"
            print(f"  {r['system']:20s} {r['chip'] or '-':9s} {r['op']:12s} {r['framework']:9s} {r['version']:12s} "
                  f"{r['table']:34s} {r['rows']:8d}{mark}")
        return 0
    if not args.system or not args.out:
        raise UserError("accelsim import aiconfigurator needs --system and --out (or --list)")
    from accelsim import measurements as M

    tables = A.select(args.system, frameworks=_split(args.framework), ops=_split(args.ops), version=args.version)
    if not tables:
        raise UserError(f"no importable tables for {args.system} with these filters")
    rows, summary = A.import_rows(tables, limit=args.limit, kernel=args.kernel, routing=args.routing)
    if not rows:
        raise UserError(f"the selected {args.system} tables hold no rows in a supported format")
    M.write(args.out, rows)
    summary.update(out=args.out, rows=len(rows), system=args.system)
    if args.json:
        print_json(summary)
        return 0
    print(f"wrote {len(rows)} rows from {A.PACKAGE} {summary['package_version']} ({A.LICENSE}) to {args.out}")
    for t in summary["tables"]:
        print(f"  {t['op']:10s} {t['framework']:7s} {t['version']:12s} {t['table']:28s} {t['rows']:7d} rows"
              + (f", {t['skipped_format']} skipped (format)" if t["skipped_format"] else ""))
    return 0
