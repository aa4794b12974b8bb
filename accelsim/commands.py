"""Core subcommands: `hw`, `workloads`, `predict`. Argument parsing only; logic lives in the library."""

from __future__ import annotations

import argparse
from typing import Any

from accelsim import args as A
from accelsim.errors import UserError
from accelsim.mode_args import add_mode_args, modes_from_args


def register(sub: Any) -> None:
    hw = sub.add_parser("hw", help="list or show chips in the catalog (hwmodels/)")
    hw_sub = hw.add_subparsers(dest="hw_cmd", required=True, metavar="{list,show}")
    p = hw_sub.add_parser("list", help="list catalog chips")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_hw_list)
    p = hw_sub.add_parser("show", help="one chip's values with their sources or assumptions")
    p.add_argument("name", help="catalog name (e.g. mtia-450) or a path to a chip .toml")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_hw_show)

    wl = sub.add_parser("workloads", help="list or show models in the catalog (workloads/)")
    wl_sub = wl.add_subparsers(dest="wl_cmd", required=True, metavar="{list,show}")
    p = wl_sub.add_parser("list", help="list catalog models")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_wl_list)
    p = wl_sub.add_parser("show", help="one model's architecture and parameter counts")
    p.add_argument("name", help="catalog name (e.g. llama4-maverick) or a path to a model .toml")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_wl_show)

    p = sub.add_parser("predict", help="throughput, latency, power and energy of a model on N chips")
    A.add_hardware(p, required=False)  # not with --disagg
    A.add_serving(p, chips=True, chips_required=False)
    add_mode_args(p)
    p.add_argument("--disagg", default=None, metavar="PREFILL_CHIP:N,DECODE_CHIP:M",
                   help="disaggregated prefill/decode pools (e.g. mtia-400:16,mtia-450:32); without :N,:M the "
                        "split of --chips is searched")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_predict)

    p = sub.add_parser("compare", help="chips side by side: each at its best layout and batch for one model")
    A.add_hardware(p, many=True)
    A.add_serving(p, chips=True, chips_required=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_compare)


def _hw_list(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.spec import list_chips, load_chip

    chips = [load_chip(n) for n in list_chips()]
    rows = [{"name": c.name, "display_name": c.display_name, "family": c.family, "year": c.availability_year,
             "bf16_flops": c.peak_flops["bf16"], "mem_bw_bytes_per_s": c.mem_bw_bytes_per_s,
             "mem_capacity_bytes": c.mem_capacity_bytes, "tdp_w": c.tdp_w} for c in chips]
    if args.json:
        print_json(rows)
    else:
        print(f"{'name':10s} {'year':>4s} {'BF16 TF':>8s} {'mem TB/s':>8s} {'mem GB':>6s} {'TDP W':>6s}  chip")
        for r in rows:
            print(f"{r['name']:10s} {r['year']:4d} {r['bf16_flops'] / 1e12:8.0f} {r['mem_bw_bytes_per_s'] / 1e12:8.2f} "
                  f"{r['mem_capacity_bytes'] / 1e9:6.0f} {r['tdp_w']:6.0f}  {r['display_name']}")
    return 0


def _hw_show(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.spec import load_chip

    d = load_chip(args.name).to_dict()
    if args.json:
        print_json(d)
        return 0
    print(f"{d['display_name']} ({d['name']})")
    for key, v in d["provenance"].items():
        tag = f"ASSUMED: {v['assumed']}" if "assumed" in v else v["source"]
        print(f"  {key:26s} {v['value']:<12.4g} {tag}")
    return 0


def _wl_list(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.spec import list_models, load_model

    models = [load_model(n) for n in list_models()]
    rows = [{"name": m.name, "display_name": m.display_name, "kind": m.kind, "total_params": m.total_params,
             "active_params": m.active_params} for m in models]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(f"{r['name']:16s} {r['kind']:8s} {r['total_params'] / 1e9:8.1f}B total "
                  f"{r['active_params'] / 1e9:8.2f}B active  {r['display_name']}")
    return 0


def _wl_show(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.spec import load_model

    d = load_model(args.name).to_dict()
    if args.json:
        print_json(d)
    else:
        print("\n".join(_lines(d)))
    return 0


def _lines(d: dict[str, Any], indent: str = "  ") -> list[str]:
    """A nested dict as aligned 'key  value' lines; sub-tables indented under their key (no raw dicts)."""
    out: list[str] = []
    for k, v in d.items():
        if isinstance(v, dict):
            if v:
                out.append(f"{indent}{k}")
                out += _lines(v, indent + "  ")
        elif isinstance(v, float) and v.is_integer() and abs(v) >= 1e6:
            out.append(f"{indent}{k:{28 - len(indent)}s} {v:,.0f}")
        else:
            out.append(f"{indent}{k:{28 - len(indent)}s} {v:,}" if isinstance(v, int) and not isinstance(v, bool)
                       else f"{indent}{k:{28 - len(indent)}s} {v}")
    return out


def _predict(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.predict import predict
    from accelsim.spec import load_model

    if args.disagg:
        return _predict_disagg(args)
    if args.hw is None or args.chips is None:
        raise UserError("predict needs --hw and --chips (or --disagg PREFILL_CHIP:N,DECODE_CHIP:M)")
    (chip,) = A.chips_from(args)
    model = load_model(args.model)
    kw = dict(chips=args.chips, tp=args.tp, ep=args.ep, pp=args.pp, dtype=args.dtype, kv_dtype=args.kv_dtype,
              input_len=args.input_len, output_len=args.output_len, batch=args.batch, max_ttft=args.max_ttft,
              max_tpot=args.max_tpot, max_latency=args.max_latency)
    if args.placement:
        kw["placement"] = args.placement
    modes = modes_from_args(args)
    if not modes.plain or args.attention_dp:
        kw.update(modes=modes, attention_dp=args.attention_dp)
    if args.calibration:  # calibrated mid prediction plus its projection band
        from accelsim.calibrate.profile import read_profile
        from accelsim.calibrate.project import predict_band
        from accelsim.stacks import DEFAULT_STACK, load_stack

        r = predict_band(chip, model, read_profile(args.calibration), base=load_stack(args.stack or DEFAULT_STACK),
                         **kw)
    else:
        eff = A.efficiency_from(args)
        if hasattr(eff, "band_for"):  # calibrated or projected: the prediction and its measured band
            from accelsim.calibrate.project import predict_with_band

            r = predict_with_band(chip, model, eff, **kw)
        else:
            r = predict(chip, model, eff=eff, **kw)
    if args.json:
        print_json(r)
        return 0
    print(f"{r['model']} on {r['chips']} x {r['hw']}  [fidelity: {r['fidelity']}]")
    if r.get("what_if"):
        print(f"  what-if: {_factors(r['what_if'])} (catalog values scaled)")
    if "throughput_tokens_per_s" in r:
        print(f"  requests of {r['input_len']:,} prompt + {r['output_len']:,} output tokens")
        dp = f" dp={r['dp']}" if r.get("dp", 1) > 1 else ""
        print(f"  tp={r['tp']} ep={r['ep']} pp={r['pp']}{dp} replicas={r['replicas']}  batch {r['batch']}  "
              f"dtype {r['dtype']} (computes in {r['compute_dtype']}), kv {r['kv_dtype']}")
        print(f"  throughput  {r['throughput_tokens_per_s']:,.0f} output tokens/s "
              f"({r['per_chip_tokens_per_s']:,.0f} per chip)")
        print(f"  TTFT {r['ttft_s'] * 1e3:,.1f} ms   TPOT {r['tpot_s'] * 1e3:,.2f} ms   bound: {r['bound']}")
        print(f"  power {r['power_w']:,.0f} W per chip   {r['joules_per_token']:.3f} J per output token")
    else:
        print(f"  {_ranking_deployment(r['chips'], r['shards'])}")
        print(f"  placement {r['placement']} over {r['shards']} chip(s) x {r['replicas']} replicas  "
              f"batch {r['batch']} pairs per chip  latency {r['latency_s'] * 1e3:.2f} ms  bound: {r['bound']} "
              f"(gather: {r['gather_limit']})")
        print(f"  throughput {r['throughput_queries_per_s']:,.0f} queries/s of {r['candidates_per_query']:g} pairs = "
              f"{r['throughput_pairs_per_s']:,.0f} user-item pairs/s   power {r['power_w']:,.0f} W per chip   "
              f"{r['joules_per_query'] * 1e3:.2f} mJ per query")
    if "calibrated_on" in r:
        key = "throughput_tokens_per_s" if "throughput_tokens_per_s" in r else "throughput_samples_per_s"
        on = r["calibrated_on"] if isinstance(r["calibrated_on"], str) else ", ".join(r["calibrated_on"])
        why = r.get("band_transfer") or r.get("band_source")
        verb = "projected from" if r.get("fidelity") == "projected" else "calibrated on"
        print(f"  {verb} {on}; band {r[key + '_low']:,.0f} .. {r[key + '_high']:,.0f} ({why})")
    if r["assumed_hw_values"]:
        print(f"  assumed chip values: {', '.join(r['assumed_hw_values'])}")
    return 0


def _factors(what_if: dict[str, float]) -> str:
    """{'mem_bw': 2.0} -> 'mem_bw x2'."""
    return ", ".join(f"{k} x{v:g}" for k, v in sorted(what_if.items()))


def _ranking_deployment(chips: int, shards: int) -> str:
    """What `--chips N` means for a ranking model: replicas, one sharded model, or both."""
    replicas = chips // shards
    if shards == 1:
        return f"{chips} chip{'s' * (chips > 1)} = {replicas} replica{'s' * (replicas > 1)}, each holding all tables"
    one = f"one model sharded over {shards} chips"
    return f"{chips} chips = {one}" if replicas == 1 else f"{chips} chips = {replicas} replicas, each {one}"


def _predict_disagg(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.disagg import best_split, parse_disagg, predict_disagg
    from accelsim.spec import load_chip, load_model

    (p_name, n_p), (d_name, n_d) = parse_disagg(args.disagg)
    model = load_model(args.model)
    kw = dict(eff=A.efficiency_from(args), dtype=args.dtype, kv_dtype=args.kv_dtype,
              input_len=args.input_len, output_len=args.output_len, max_ttft=args.max_ttft, max_tpot=args.max_tpot,
              modes=modes_from_args(args), attention_dp=args.attention_dp)
    pc, dc = load_chip(p_name), load_chip(d_name)
    if n_p is None or n_d is None:
        if args.chips is None or args.chips < 2:
            raise UserError("--disagg without pool sizes searches the split of --chips N (N >= 2)")
        r = best_split(pc, dc, args.chips, model, **kw)
    else:
        r = predict_disagg(pc, n_p, dc, n_d, model, **kw)
    d = r.to_dict()
    if args.json:
        print_json(d)
        return 0
    print(f"{d['model']} disaggregated on {d['chips']} chips  [fidelity: {d['fidelity']}]")
    for role in ("prefill", "decode"):
        p = d[role]
        print(f"  {role:7s} {p['chips']:4d} x {p['hw']:10s} tp={p['tp']} ep={p['ep']} pp={p['pp']} dp={p['dp']} "
              f"x {p['replicas']} replicas  batch {p['batch']}  {p['requests_per_s']:,.1f} req/s  "
              f"busy {p['utilisation']:.0%}  bound: {p['bound']}")
    x = d["kv_transfer"]
    print(f"  KV over {x['fabric']}: {x['bytes_per_request'] / 1e6:,.1f} MB per request, "
          f"{x['latency_s'] * 1e3:.2f} ms, link capacity {x['requests_per_s']:,.0f} req/s")
    print(f"  throughput {d['throughput_tokens_per_s']:,.0f} output tokens/s "
          f"({d['per_chip_tokens_per_s']:,.0f} per chip)  bottleneck: {d['bottleneck']}")
    print(f"  TTFT {d['ttft_s'] * 1e3:,.1f} ms   TPOT {d['tpot_s'] * 1e3:,.2f} ms   "
          f"{d['joules_per_token']:.3f} J per output token")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.perf import fidelity_mix
    from accelsim.search import search
    from accelsim.spec import load_model

    chips = A.chips_from(args)
    model = load_model(args.model)
    q = A.query_from(args, model, A.efficiency_from(args))
    found = search(chips, q, total_chips=args.chips, layout=A.layout_from(args, model, args.chips))
    if args.json:
        print_json([{"hw": c.name, "error": str(r)} if isinstance(r, UserError) else r.to_dict()
                    for c, r in zip(chips, found)])
        return 0
    ok = [r for r in found if not isinstance(r, UserError)]
    u = "tokens" if model.kind == "llm" else "samples"
    where = f"on {args.chips} chips each" if args.chips else "per chip, each at its best replica layout"
    # each chip's own (calibrated on a measured chip, projected elsewhere)
    fid = fidelity_mix((r.chip.name, r.fidelity) for r in ok) or str(q.eff.fidelity)
    print(f"{model.name}, {q.dtype}, {where}  [fidelity: {fid}]")
    if model.kind == "llm":
        print(f"  requests of {q.input_len:,} prompt + {q.output_len:,} output tokens")
    print(_compare_table(chips, found, u))
    return 0 if ok else 2


def _compare_table(chips: list[Any], found: list[Any], u: str) -> str:
    from accelsim.search import describe

    head = ["chip", "layout", "batch", f"{u}/s/chip", f"{u}/J", "W/chip",
            *(("TTFT ms", "TPOT ms") if u == "tokens" else ("latency ms",)), "bound"]
    rows = []
    for chip, r in zip(chips, found):
        if isinstance(r, UserError):
            rows.append([chip.name, f"no point: {r}"])
            continue
        times = ([f"{r.ttft_s * 1e3:,.1f}", f"{r.tpot_s * 1e3:,.2f}"] if u == "tokens"
                 else [f"{r.latency_s * 1e3:,.2f}"])
        per_j = 1 / r.joules_per_unit
        rows.append([chip.name, describe(r.layout), str(r.batch), f"{r.rate_per_chip:,.0f}",
                     f"{per_j:,.0f}" if per_j >= 100 else f"{per_j:.3g}", f"{r.power_w:,.0f}", *times, r.bound])
    width = [max(len(row[i]) for row in [head, *rows] if i < len(row) and len(row) == len(head))
             for i in range(len(head))]
    lines = ["  " + "  ".join(h.ljust(w) for h, w in zip(head, width)).rstrip()]
    for row in rows:
        lines.append("  " + ("  ".join(c.ljust(w) for c, w in zip(row, width)).rstrip() if len(row) == len(head)
                             else f"{row[0].ljust(width[0])}  {row[1]}"))
    return "\n".join(lines)
