"""Core subcommands: `hw`, `workloads`, `predict`. Argument parsing only; logic lives in the library."""

from __future__ import annotations

import argparse
from typing import Any

from accelsim.efficiency import efficiency_from_args, parse_what_if

_DTYPES = ("bf16", "fp8", "fp4")


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
    p.add_argument("--hw", required=True, help="chip name or .toml path")
    p.add_argument("--model", required=True, help="model name or .toml path")
    p.add_argument("--chips", type=int, required=True)
    p.add_argument("--tp", type=int, default=None, help="tensor parallel size (default: chips / pp, one replica)")
    p.add_argument("--ep", type=int, default=1, help="expert parallel size (divides tp)")
    p.add_argument("--pp", type=int, default=1, help="pipeline stages")
    p.add_argument("--dtype", choices=_DTYPES, default="bf16", help="weight/compute format")
    p.add_argument("--kv-dtype", choices=_DTYPES, default=None,
                   help="KV-cache format (default: fp8 if --dtype is fp8/fp4)")
    p.add_argument("--input-len", type=int, default=1000)
    p.add_argument("--output-len", type=int, default=1000)
    p.add_argument("--batch", type=int, default=None, help="sequences per replica (LLM) or samples per chip (ranking)")
    p.add_argument("--max-ttft", type=float, default=None, help="SLO on time to first token, s")
    p.add_argument("--max-tpot", type=float, default=None, help="SLO on time per output token, s")
    p.add_argument("--max-latency", type=float, default=None, help="ranking: SLO on batch latency, s (default 0.06)")
    p.add_argument("--fidelity", choices=("analytical", "roofline"), default="analytical")
    p.add_argument("--stack", default=None, help="software stack from accelsim/data/stacks.toml")
    p.add_argument("--calibration", default=None, help="calibration profile (accelsim calibrate) → fidelity calibrated")
    p.add_argument("--what-if", default=None, metavar="K=F,...",
                   help="scale chip values, e.g. mem_bw=2,flops=0.5 (keys: mem_bw, flops, capacity, tdp)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_predict)


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
        print(f"{'name':10s} {'year':>4s} {'BF16 TF':>8s} {'HBM TB/s':>8s} {'GB':>6s} {'TDP W':>6s}  chip")
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
        for k, v in d.items():
            print(f"  {k:26s} {v}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from accelsim.cli import print_json
    from accelsim.predict import predict
    from accelsim.spec import load_chip, load_model

    chip = load_chip(args.hw)
    factors = parse_what_if(args.what_if)
    if factors:
        chip = chip.scaled(**factors)
    model = load_model(args.model)
    kw = dict(chips=args.chips, tp=args.tp, ep=args.ep, pp=args.pp, dtype=args.dtype, kv_dtype=args.kv_dtype,
              input_len=args.input_len, output_len=args.output_len, batch=args.batch, max_ttft=args.max_ttft,
              max_tpot=args.max_tpot, max_latency=args.max_latency)
    if args.calibration:  # calibrated mid prediction plus its projection band
        from accelsim.calibrate.profile import read_profile
        from accelsim.calibrate.project import predict_band
        from accelsim.stacks import DEFAULT_STACK, load_stack

        r = predict_band(chip, model, read_profile(args.calibration), base=load_stack(args.stack or DEFAULT_STACK),
                         **kw)
    else:
        r = predict(chip, model, eff=efficiency_from_args(args.fidelity, args.stack), **kw)
    if args.json:
        print_json(r)
        return 0
    print(f"{r['model']} on {r['chips']} x {r['hw']}  [fidelity: {r['fidelity']}]")
    if "throughput_tokens_per_s" in r:
        print(f"  tp={r['tp']} ep={r['ep']} pp={r['pp']} replicas={r['replicas']}  batch {r['batch']}  "
              f"dtype {r['dtype']} (computes in {r['compute_dtype']}), kv {r['kv_dtype']}")
        print(f"  throughput  {r['throughput_tokens_per_s']:,.0f} output tokens/s "
              f"({r['per_chip_tokens_per_s']:,.0f} per chip)")
        print(f"  TTFT {r['ttft_s'] * 1e3:,.1f} ms   TPOT {r['tpot_s'] * 1e3:,.2f} ms   bound: {r['bound']}")
        print(f"  power {r['power_w']:,.0f} W per chip   {r['joules_per_token']:.3f} J per output token")
    else:
        print(f"  batch {r['batch']} per chip  latency {r['latency_s'] * 1e3:.2f} ms  bound: {r['bound']}")
        print(f"  throughput {r['throughput_samples_per_s']:,.0f} samples/s   power {r['power_w']:,.0f} W per chip   "
              f"{r['joules_per_sample'] * 1e3:.3f} mJ per sample")
    if "calibrated_on" in r:
        key = "throughput_tokens_per_s" if "throughput_tokens_per_s" in r else "throughput_samples_per_s"
        print(f"  calibrated on {r['calibrated_on']}; band {r[key + '_low']:,.0f} .. {r[key + '_high']:,.0f} "
              f"(transfer: {r['band_transfer']})")
    if r["assumed_hw_values"]:
        print(f"  assumed chip values: {', '.join(r['assumed_hw_values'])}")
    return 0
