#!/usr/bin/env python
"""Measure the serving path's operators on one GPU, in accelsim's measurement schema, so that
`accelsim validate` can hold the shipped calibrated profiles against a run they never saw.

One call on a lent GPU (about 4 minutes on an H200; needs torch, triton, numpy):

  python benchmarks/gpu_measure_ops.py --out-dir $OUT
  python benchmarks/gpu_measure_ops.py --smoke --out-dir /tmp/smoke   # CPU, tiny shapes, no timing claims

Writes to --out-dir:
- ops.csv: bf16 and fp8 GEMMs (cuBLAS through torch), causal prefill and one-token decode attention
  (torch scaled_dot_product_attention, GQA), and accelsim's own Triton fused-MoE kernel, each the
  median of triton.testing.do_bench (L2 flushed between repetitions), checked against a reference first.
- layer.csv: a Llama-3-8B-shaped decoder stack (32 layers, distinct weights) run as one CUDA graph,
  beside the sum of the same kernels timed one by one: how far summing isolated kernel times (what
  accelsim's lowering does) is from running them back to back.
- power.csv: board power (nvidia-smi, 100 ms samples) idle and under sustained compute-bound,
  memory-bound and decode-step load, with the achieved FLOP/s and bytes/s of each phase.
The script never changes clocks or power limits.
"""

# ruff: noqa: B023  (every closure below is called before its loop variables move on)
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

TOOL = "benchmarks/gpu_measure_ops.py"
# (n, k) of Llama 3 8B / 70B / 405B linear layers at TP 1, 2, 8 (qkv, o, gate_up, down)
GEMM_NK = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336),  # 8B TP1
           (5120, 8192), (8192, 4096), (28672, 8192), (8192, 14336),  # 70B TP2
           (2304, 16384), (16384, 2048), (13312, 16384), (16384, 6656)]  # 405B TP8
GEMM_M = [1, 8, 32, 128, 512, 2048, 8192]
FP8_M = [16, 32, 128, 512, 2048, 8192]
# (heads, kv_heads) per GPU: 8B/70B TP1-TP8 and 405B TP8
ATTN_HEADS = [(32, 8), (64, 8), (16, 2), (8, 1)]
PREFILL = [(1, 1024), (1, 4096), (4, 2048), (1, 16384), (16, 512)]  # (batch, seq)
DECODE = [(1, 1024), (16, 2048), (64, 1024), (64, 4096), (256, 2048)]  # (batch, kv length)
# fused-MoE shapes (E, H, I per rank, top_k) as AIConfigurator's vLLM tables hold them on H200
MOE = [(8, 4096, 14336, 2), (16, 5120, 8192, 1), (128, 5120, 1024, 1), (128, 2048, 768, 8)]
MOE_M = [1, 16, 64, 256, 1024, 4096]


class Bench:
    def __init__(self, smoke: bool):
        import torch

        self.torch, self.smoke = torch, smoke
        self.dev = torch.device("cpu" if smoke else "cuda")
        self.rows: list[dict] = []
        self._graphs: list = []
        from accelsim import measurements as MS

        self.MS = MS
        dev_info = {"device": "cpu-smoke", "device_kind": "cpu"}
        if not smoke:
            cc = torch.cuda.get_device_capability()
            dev_info = {"device": torch.cuda.get_device_name(), "device_kind": "gpu",
                        "compute_capability": f"{cc[0]}.{cc[1]}", "driver": _smi("driver_version")}
        self.prov = MS.provenance(TOOL, **dev_info)

    def time(self, fn) -> tuple[float, float, float]:
        """(median, p20, p80) seconds."""
        if self.smoke:
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            return dt, dt, dt
        import triton.testing

        q = triton.testing.do_bench(fn, warmup=10, rep=40, quantiles=[0.5, 0.2, 0.8])
        return q[0] / 1e3, q[1] / 1e3, q[2] / 1e3

    def graph(self, fn, calls: int = 10):
        """A CUDA graph of `calls` back-to-back calls of fn (warmed on a side stream); returns its replay.
        On the CPU smoke run, a plain loop."""
        if self.smoke:
            return lambda: [fn() for _ in range(calls)]
        torch = self.torch
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for _ in range(calls):
                fn()
        self._graphs.append(g)
        return g.replay

    def time_graph(self, fn, calls: int = 10) -> tuple[float, float, float]:
        """(median, p20, p80) seconds per call, timing a CUDA graph of `calls` back-to-back calls
        (no L2 flush between them, no host launch cost)."""
        t = self.time(self.graph(fn, calls))
        self._graphs.clear()
        return t[0] / calls, t[1] / calls, t[2] / calls

    def add(self, op: str, name: str, dtype: str, shape: dict, t: tuple, *, flops: float, nbytes: float,
            config: dict | None = None) -> None:
        self.rows.append(self.MS.row(op=op, name=name, dtype=dtype, shape=shape, config=config or {},
                                     flops=flops, bytes=nbytes, median_s=t[0], p20_s=t[1], p80_s=t[2],
                                     reps=40, **self.prov))


def _smi(field: str) -> str:
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return ""


def rel_err(out, ref) -> float:
    return float((out.float() - ref.float()).norm() / ref.float().norm().clamp_min(1e-30))


def gemms(b: Bench) -> None:
    torch = b.torch
    nk = GEMM_NK[:2] if b.smoke else GEMM_NK
    ms = [1, 8] if b.smoke else GEMM_M
    dt = torch.float32 if b.smoke else torch.bfloat16
    for n, k in nk:
        if b.smoke:
            n, k = n // 64, k // 64
        w = torch.randn(n, k, device=b.dev, dtype=dt) / math.sqrt(k)
        for m in ms:
            x = torch.randn(m, k, device=b.dev, dtype=dt)
            out = x @ w.T
            err = rel_err(out, x.double() @ w.double().T)
            if err > 2e-2:
                raise RuntimeError(f"bf16 gemm {m}x{n}x{k}: rel err {err:.1e}")
            t = b.time(lambda: x @ w.T)
            b.add("gemm", "gemm_bfloat16", "bf16", {"m": m, "n": n, "k": k}, t,
                  flops=2.0 * m * n * k, nbytes=2.0 * (m * k + n * k + m * n), config={"kernel_source": "torch_cublas"})
    if b.smoke or not hasattr(torch, "_scaled_mm"):
        return
    f8 = torch.float8_e4m3fn
    one = torch.ones((), device=b.dev, dtype=torch.float32)
    for n, k in nk:
        w = (torch.randn(n, k, device=b.dev) / math.sqrt(k)).to(f8)
        for m in FP8_M:
            x = torch.randn(m, k, device=b.dev).to(f8)
            out = torch._scaled_mm(x, w.T, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
            err = rel_err(out, x.double() @ w.double().T)
            if err > 2e-2:
                raise RuntimeError(f"fp8 gemm {m}x{n}x{k}: rel err {err:.1e}")
            t = b.time(lambda: torch._scaled_mm(x, w.T, scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
            b.add("gemm", "gemm_fp8", "fp8", {"m": m, "n": n, "k": k}, t, flops=2.0 * m * n * k,
                  nbytes=m * k + n * k + 2.0 * m * n, config={"kernel_source": "torch_scaled_mm"})


def attention(b: Bench) -> None:
    torch = b.torch
    F = torch.nn.functional
    dt = torch.float32 if b.smoke else torch.bfloat16
    hd = 128
    heads = ATTN_HEADS[:1] if b.smoke else ATTN_HEADS
    for h, kvh in heads:
        for batch, seq in ([(1, 64)] if b.smoke else PREFILL):
            q = torch.randn(batch, h, seq, hd, device=b.dev, dtype=dt)
            k = torch.randn(batch, kvh, seq, hd, device=b.dev, dtype=dt)
            v = torch.randn(batch, kvh, seq, hd, device=b.dev, dtype=dt)
            run = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            _check_attn(run(), q, k, v, causal=True)
            b.add("attn_prefill", "attn_prefill", "bf16",
                  {"batch": batch, "seq": seq, "heads": h, "kv_heads": kvh, "head_dim": hd, "window": 0},
                  b.time(run), flops=2.0 * 2 * batch * h * hd * seq * seq / 2,
                  nbytes=2.0 * batch * seq * hd * (2 * h + 2 * kvh), config={"kernel_source": "torch_sdpa"})
        for batch, ctx in ([(2, 64)] if b.smoke else DECODE):
            q = torch.randn(batch, h, 1, hd, device=b.dev, dtype=dt)
            k = torch.randn(batch, kvh, ctx, hd, device=b.dev, dtype=dt)
            v = torch.randn(batch, kvh, ctx, hd, device=b.dev, dtype=dt)
            run = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
            _check_attn(run(), q, k, v, causal=False)
            b.add("attn_decode", "attn_decode", "bf16",
                  {"batch": batch, "seq": ctx, "heads": h, "kv_heads": kvh, "head_dim": hd, "window": 0},
                  b.time(run), flops=2.0 * 2 * batch * h * hd * ctx,
                  nbytes=2.0 * batch * ctx * hd * 2 * kvh, config={"kernel_source": "torch_sdpa"})


def _check_attn(out, q, k, v, *, causal: bool) -> None:
    import torch

    rep = q.shape[1] // k.shape[1]
    qd = q[:1, :, -64:].double()
    kd, vd = k[:1].double().repeat_interleave(rep, 1), v[:1].double().repeat_interleave(rep, 1)
    s = qd @ kd.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        lq, lk = s.shape[-2], s.shape[-1]
        pos_q = torch.arange(lk - lq, lk, device=s.device)[:, None]
        s = s.masked_fill(torch.arange(lk, device=s.device)[None, :] > pos_q, float("-inf"))
    ref = s.softmax(-1) @ vd
    err = rel_err(out[:1, :, -64:], ref)
    if err > 2e-2:
        raise RuntimeError(f"attention {tuple(q.shape)}: rel err {err:.1e}")


MOE_CONFIGS = [  # candidates besides the resolved config: shapes of vLLM's shipped H100/H200 winners
    {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 64, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 1, "num_warps": 4, "num_stages": 3},
    {"BLOCK_SIZE_M": 16, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 128, "GROUP_SIZE_M": 1, "num_warps": 4, "num_stages": 3},
    {"BLOCK_SIZE_M": 64, "BLOCK_SIZE_N": 128, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 1, "num_warps": 4, "num_stages": 4},
    {"BLOCK_SIZE_M": 64, "BLOCK_SIZE_N": 256, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 16, "num_warps": 8, "num_stages": 3},
    {"BLOCK_SIZE_M": 128, "BLOCK_SIZE_N": 256, "BLOCK_SIZE_K": 64, "GROUP_SIZE_M": 32, "num_warps": 8, "num_stages": 4},
]


def moe(b: Bench) -> None:
    """accelsim's Triton fused MoE: each candidate config timed as one CUDA graph of 10 calls (as
    serving engines replay decode steps); the eager time beside it shows the host-side cost."""
    torch = b.torch
    from kernels.moe import fused_moe
    from kernels.moe.config import resolve_config
    from kernels.moe.reference import fused_moe_ref, topk_route

    dt = torch.float32 if b.smoke else torch.bfloat16
    shapes = [(4, 64, 32, 2)] if b.smoke else MOE
    for e, h, i, top_k in shapes:
        w1 = torch.randn(e, 2 * i, h, device=b.dev, dtype=dt) / math.sqrt(h)
        w2 = torch.randn(e, h, i, device=b.dev, dtype=dt) / math.sqrt(i)
        for m in ([4] if b.smoke else MOE_M):
            x = torch.randn(m, h, device=b.dev, dtype=dt)
            logits = torch.randn(m, e, device=b.dev, dtype=torch.float32)
            cfg0, src = resolve_config(m, e, i, h, top_k, dt, b.dev)
            cands = [(cfg0, src)] + [(c, "candidate") for c in ([] if b.smoke else MOE_CONFIGS) if c != cfg0]
            wts, ids = topk_route(logits[:8], top_k, True)  # tokens are independent: check the first 8
            ref8 = fused_moe_ref(x[:8].float(), w1.float(), w2.float(), wts, ids)
            for cfg, source in cands:
                run = lambda: fused_moe(x, w1, w2, logits, top_k, config=cfg, impl="triton")
                try:
                    err = rel_err(run()[:8], ref8)
                except Exception as exc:  # a config the kernel cannot run (resources): skip it
                    print(f"  moe config {cfg}: {type(exc).__name__}", flush=True)
                    continue
                if err > 3e-2:
                    raise RuntimeError(f"fused_moe E={e} H={h} I={i} M={m} {cfg}: rel err {err:.1e}")
                eager = b.time(run)[0]
                flops = 2.0 * m * top_k * 3 * h * i
                hit = e * (1 - (1 - min(top_k, e) / e) ** m)
                b.add("fused_moe", "triton_fused_moe", "bf16",
                      {"E": e, "H": h, "I": i, "top_k": top_k, "M": m, "tp": 1, "ep": 1, "routing": "balanced"},
                      b.time_graph(run), flops=flops, nbytes=2.0 * hit * 3 * h * i + 4.0 * m * h,
                      config={"kernel_source": f"accelsim_triton_fused_moe ({source}); cuda graph",
                              "eager_median_us": round(eager * 1e6, 2), **cfg})


class PowerSampler:
    """nvidia-smi board power, SM clock and temperature every 100 ms in a background thread."""

    def __init__(self):
        self.samples: list[tuple[float, float, float, float]] = []
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self):
        p = subprocess.Popen(["nvidia-smi", "--query-gpu=power.draw,clocks.sm,temperature.gpu",
                              "--format=csv,noheader,nounits", "-lms", "100"], stdout=subprocess.PIPE, text=True)
        for line in p.stdout:
            with contextlib.suppress(ValueError):
                pw, clk, temp = (float(v) for v in line.split(","))
                self.samples.append((time.time(), pw, clk, temp))
            if self._stop.is_set():
                break
        p.kill()

    def stop(self):
        self._stop.set()

    def phase(self, b: Bench, name: str, fn, flops: float, nbytes: float, seconds: float = 8.0) -> dict:
        """Loop fn (None = idle) for `seconds`; mean power over the window after a 2 s ramp."""
        torch = b.torch
        torch.cuda.synchronize()
        t0, calls = time.time(), 0
        if fn is None:
            time.sleep(seconds)
        else:
            while time.time() - t0 < seconds:
                for _ in range(10):
                    fn()
                calls += 10
                torch.cuda.synchronize()
        t1 = time.time()
        window = [s for s in self.samples if t0 + 2.0 <= s[0] <= t1]
        n, dur = max(len(window), 1), t1 - t0
        r = {"phase": name, "seconds": dur, "samples": len(window),
             "power_w_mean": sum(s[1] for s in window) / n, "power_w_max": max((s[1] for s in window), default=0.0),
             "sm_clock_mhz_mean": sum(s[2] for s in window) / n, "temp_c_end": window[-1][3] if window else 0.0,
             "calls_per_s": calls / dur, "achieved_tflops": flops * calls / dur / 1e12,
             "achieved_tb_s": nbytes * calls / dur / 1e12, "power_limit_w": _smi("power.limit"),
             "device": b.prov["device"], "tool": TOOL, "date_utc": b.prov["date_utc"]}
        print(f"power {name:28s} {r['power_w_mean']:6.0f} W (max {r['power_w_max']:4.0f}, n={r['samples']}) "
              f"SM {r['sm_clock_mhz_mean']:5.0f} MHz  {r['achieved_tflops']:6.1f} TFLOP/s  "
              f"{r['achieved_tb_s']:5.2f} TB/s", flush=True)
        return r


# decoder stacks: name, hidden, intermediate, heads, kv heads per GPU, layers (Llama 3 8B; 70B at TP2, half its layers)
STACKS = [("llama3-8b-tp1", 4096, 14336, 32, 8, 32), ("llama3-70b-tp2-40l", 8192, 14336, 32, 4, 40)]
STACK_PHASES = [("decode", 1, 1, 1024), ("decode", 16, 1, 1024), ("decode", 64, 1, 1024), ("decode", 256, 1, 1024),
                ("prefill", 1, 512, 512), ("prefill", 1, 2048, 2048), ("prefill", 1, 8192, 8192)]
POWER_PHASES = {("llama3-8b-tp1", "decode", 64), ("llama3-8b-tp1", "prefill", 1)}


def layer(b: Bench, sampler: PowerSampler | None) -> tuple[list[dict], list[dict]]:
    """Decoder stacks (distinct weights per layer) as one CUDA graph vs the sum of each kernel alone,
    the pieces timed both as CUDA graphs of back-to-back calls and by do_bench (L2 flushed)."""
    torch = b.torch
    F = torch.nn.functional
    smoke = b.smoke
    dt = torch.float32 if smoke else torch.bfloat16
    dev, hd = b.dev, (64 if smoke else 128)
    out, pw = [], []
    for stack, hid, inter, h, kvh, nl in ([("smoke", 256, 512, 4, 2, 2)] if smoke else STACKS):
        ws = [dict(qkv=torch.randn((h + 2 * kvh) * hd, hid, device=dev, dtype=dt) / math.sqrt(hid),
                   o=torch.randn(hid, h * hd, device=dev, dtype=dt) / math.sqrt(h * hd),
                   gu=torch.randn(2 * inter, hid, device=dev, dtype=dt) / math.sqrt(hid),
                   d=torch.randn(hid, inter, device=dev, dtype=dt) / math.sqrt(inter),
                   n1=torch.ones(hid, device=dev, dtype=dt), n2=torch.ones(hid, device=dev, dtype=dt))
              for _ in range(nl)]
        for phase, batch, seq, ctx in STACK_PHASES[::3] if smoke else STACK_PHASES:
            if smoke:
                batch, seq, ctx = 2, min(seq, 8), min(ctx, 16)
            tokens = batch * seq
            kc = [torch.randn(batch, kvh, ctx, hd, device=dev, dtype=dt) for _ in range(nl)]
            vc = [torch.randn(batch, kvh, ctx, hd, device=dev, dtype=dt) for _ in range(nl)]
            x0 = torch.randn(tokens, hid, device=dev, dtype=dt)

            def norm(x, w):
                return F.rms_norm(x, (x.shape[-1],), w, 1e-5)

            def attn(q, li):
                qh = q.view(batch, seq, h, hd).transpose(1, 2)
                o = F.scaled_dot_product_attention(qh, kc[li], vc[li], is_causal=phase == "prefill", enable_gqa=True)
                return o.transpose(1, 2).reshape(tokens, h * hd)

            def forward(x):
                for li, w in enumerate(ws):
                    a = norm(x, w["n1"]) @ w["qkv"].T
                    x = x + attn(a[:, : h * hd], li) @ w["o"].T
                    g, u = (norm(x, w["n2"]) @ w["gu"].T).chunk(2, dim=-1)
                    x = x + (F.silu(g) * u) @ w["d"].T
                return x

            w = ws[0]
            xa = torch.randn(tokens, hid, device=dev, dtype=dt)
            qkv = torch.randn(tokens, (h + 2 * kvh) * hd, device=dev, dtype=dt)
            ao = torch.randn(tokens, h * hd, device=dev, dtype=dt)
            gu = torch.randn(tokens, 2 * inter, device=dev, dtype=dt)
            act = torch.randn(tokens, inter, device=dev, dtype=dt)
            pieces = {"norm": lambda: norm(xa, w["n1"]), "qkv_gemm": lambda: xa @ w["qkv"].T,
                      "attention": lambda: attn(qkv[:, : h * hd], 0), "o_gemm": lambda: ao @ w["o"].T,
                      "residual_add": lambda: xa + xa, "gate_up_gemm": lambda: xa @ w["gu"].T,
                      "silu_mul": lambda: F.silu(gu[:, :inter]) * gu[:, inter:],
                      "down_gemm": lambda: act @ w["d"].T}
            counts = {"norm": 2, "residual_add": 2}
            per = {k: b.time(f)[0] for k, f in pieces.items()}
            per_g = {k: b.time_graph(f)[0] for k, f in pieces.items()}
            summed = nl * sum(t * counts.get(k, 1) for k, t in per.items())
            summed_g = nl * sum(t * counts.get(k, 1) for k, t in per_g.items())
            graph = b.graph(lambda: forward(x0), calls=1)
            whole = b.time(graph)[0]
            row = {"stack": stack, "phase": phase, "batch": batch, "seq": seq, "context": ctx, "layers": nl,
                   "hidden": hid, "intermediate": inter, "heads": h, "kv_heads": kvh, "head_dim": hd,
                   "graph_s": whole, "sum_dobench_s": summed, "sum_graphed_s": summed_g,
                   "graph_over_sum_dobench": whole / summed, "graph_over_sum_graphed": whole / summed_g,
                   **{f"{k}_dobench_s": v for k, v in per.items()}, **{f"{k}_graphed_s": v for k, v in per_g.items()},
                   "device": b.prov["device"], "torch": b.prov["torch_version"], "tool": TOOL,
                   "date_utc": b.prov["date_utc"]}
            out.append(row)
            print(f"stack {stack:20s} {phase:7s} b={batch:4d} seq={seq:5d} ctx={ctx:5d}: graph {whole * 1e3:8.3f} ms"
                  f"  sum(do_bench) {summed * 1e3:8.3f}  sum(graphed) {summed_g * 1e3:8.3f}"
                  f"  ratios {whole / summed:.3f} {whole / summed_g:.3f}", flush=True)
            if sampler is not None and (stack, phase, batch) in POWER_PHASES:
                fl = 2.0 * tokens * nl * hid * ((h + 2 * kvh) * hd + h * hd + 3 * inter)
                pw.append(sampler.phase(b, f"{stack}_{phase}_b{batch}_s{seq}", graph, fl, 0.0))
            kc = vc = graph = None  # free this phase's KV cache before the next one
            if not smoke:
                torch.cuda.empty_cache()
        ws = None
    return out, pw


def power(b: Bench, sampler: PowerSampler) -> list[dict]:
    """Board power idle and under sustained compute-bound, memory-bound and GEMV load."""
    torch = b.torch
    a = torch.randn(8192, 8192, device=b.dev, dtype=torch.bfloat16)
    src = torch.randn(1024**3, device=b.dev, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    wv = torch.randn(28672, 8192, device=b.dev, dtype=torch.bfloat16)
    xv = torch.randn(8, 8192, device=b.dev, dtype=torch.bfloat16)
    a2 = torch.randn(2048, 2048, device=b.dev, dtype=torch.bfloat16)
    loads = {"idle": (None, 0.0, 0.0),
             "gemm_bf16_8192": (lambda: a @ a, 2.0 * 8192**3, 3 * 2.0 * 8192**2),
             "gemm_bf16_2048": (lambda: a2 @ a2, 2.0 * 2048**3, 3 * 2.0 * 2048**2),
             "copy_2GB": (lambda: dst.copy_(src), 0.0, 2.0 * src.numel() * 2),
             "gemv_m8_28672x8192": (lambda: xv @ wv.T, 2.0 * 8 * 28672 * 8192, 2.0 * 28672 * 8192)}
    return [sampler.phase(b, name, fn, fl, nb, seconds=6.0 if fn is None else 8.0)
            for name, (fn, fl, nb) in loads.items()]


def sustained(b: Bench, sampler: PowerSampler | None) -> list[dict]:
    """Each kernel timed twice, back to back both times: a short burst of 10 calls after 1.5 s idle (what
    an op database times) and looped for 5 s (what a serving engine does), with the SM clock and board power over the
    loop's last 3 s: how far power-capped clocks slow sustained work (`power.sustained_clock_fraction`)."""
    torch = b.torch
    F = torch.nn.functional
    dt = torch.float32 if b.smoke else torch.bfloat16
    dev = b.dev
    out = []
    gemm_shapes = [(64, 64, 64)] if b.smoke else [
        (8192, 8192, 8192), (16384, 16384, 2048), (8192, 28672, 4096), (4096, 28672, 4096), (2048, 28672, 4096),
        (1024, 28672, 4096), (512, 28672, 4096), (256, 28672, 4096), (8192, 4096, 14336), (4096, 4096, 4096),
        (2048, 6144, 4096), (64, 28672, 4096), (8, 28672, 8192)]
    loads = []
    for m, n, k in gemm_shapes:
        x = torch.randn(m, k, device=dev, dtype=dt)
        w = torch.randn(n, k, device=dev, dtype=dt)
        loads.append((f"gemm_bf16_{m}x{n}x{k}", "gemm", "bf16", (lambda x=x, w=w: x @ w.T),
                      2.0 * m * n * k, 2.0 * (m * k + n * k + m * n)))
    if not b.smoke and hasattr(torch, "_scaled_mm"):
        one = torch.ones((), device=dev)
        for m, n, k in ((8192, 28672, 4096), (2048, 28672, 4096), (8192, 8192, 8192)):
            x = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
            w = torch.randn(n, k, device=dev).to(torch.float8_e4m3fn)
            loads.append((f"gemm_fp8_{m}x{n}x{k}", "gemm", "fp8",
                          (lambda x=x, w=w: torch._scaled_mm(x, w.T, scale_a=one, scale_b=one,
                                                             out_dtype=torch.bfloat16)),
                          2.0 * m * n * k, m * k + n * k + 2.0 * m * n))
    for seq, h, kvh in ([(64, 4, 2)] if b.smoke else [(8192, 32, 8), (2048, 32, 8)]):
        q = torch.randn(1, h, seq, 128, device=dev, dtype=dt)
        kk = torch.randn(1, kvh, seq, 128, device=dev, dtype=dt)
        vv = torch.randn(1, kvh, seq, 128, device=dev, dtype=dt)
        loads.append((f"attn_prefill_{seq}_{h}h{kvh}kv", "attn_prefill", "bf16",
                      (lambda q=q, kk=kk, vv=vv: F.scaled_dot_product_attention(q, kk, vv, is_causal=True,
                                                                               enable_gqa=True)),
                      2.0 * 2 * h * 128 * seq * seq / 2, 2.0 * seq * 128 * (2 * h + 2 * kvh)))
    for name, op, dtype, fn, flops, nbytes in loads:
        fn()
        if not b.smoke:
            torch.cuda.synchronize()
            time.sleep(1.5)
        burst = _burst(b, fn)
        t0 = time.time()
        t_loop, calls, last = 5.0 if not b.smoke else 0.05, 0, None
        while time.time() - t0 < t_loop:
            for _ in range(10):
                fn()
            calls += 10
            if not b.smoke:
                torch.cuda.synchronize()
            if last is None and time.time() - t0 >= t_loop - 3.0:
                last = (time.time(), calls)
        t1 = time.time()
        if last is None:
            last = (t0, 0)
        sus = (t1 - last[0]) / max(calls - last[1], 1)
        win = [x for x in (sampler.samples if sampler else []) if last[0] <= x[0] <= t1]
        n = max(len(win), 1)
        out.append({"kernel": name, "op": op, "dtype": dtype, "flops": flops, "bytes": nbytes, "burst_s": burst,
                    "sustained_s": sus, "sustained_over_burst": sus / burst,
                    "sm_clock_mhz": sum(x[2] for x in win) / n, "power_w": sum(x[1] for x in win) / n,
                    "samples": len(win), "device": b.prov["device"], "torch": b.prov["torch_version"],
                    "tool": TOOL, "date_utc": b.prov["date_utc"]})
        r = out[-1]
        print(f"sustained {name:32s} burst {burst * 1e6:9.1f} us  sustained {sus * 1e6:9.1f} us  "
              f"ratio {sus / burst:.3f}  SM {r['sm_clock_mhz']:5.0f} MHz  {r['power_w']:5.0f} W", flush=True)
    return out


def _burst(b: Bench, fn, calls: int = 10) -> float:
    """Seconds per call over `calls` back-to-back calls, timed with CUDA events (host clock on CPU)."""
    if b.smoke:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls
    torch = b.torch
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / calls


def write_dicts(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny shapes, fp32 (checks the script only)")
    ap.add_argument("--parts", default="gemm,attention,moe,layer,power,sustained")
    args = ap.parse_args(argv)
    if args.smoke:
        os.environ["TRITON_INTERPRET"] = "1"
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    b = Bench(args.smoke)
    print(json.dumps({k: b.prov[k] for k in ("device", "driver", "torch_version", "triton_version", "git_commit")}))
    parts = args.parts.split(",")
    status = 0
    for part, fn in (("gemm", gemms), ("attention", attention), ("moe", moe)):
        if part in parts:
            t0 = time.time()
            try:
                fn(b)
            except Exception as exc:  # keep the other parts' measurements
                print(f"{part}: FAILED {type(exc).__name__}: {exc}", flush=True)
                status = 1
            print(f"{part}: {len(b.rows)} rows so far, {time.time() - t0:.0f} s", flush=True)
            b.MS.write(out / "ops.csv", b.rows)
    sampler = None if args.smoke or not {"power", "sustained"} & set(parts) else PowerSampler()
    pw: list[dict] = []
    try:
        if sampler is not None and "power" in parts:
            pw += power(b, sampler)
        if "sustained" in parts:
            write_dicts(out / "sustained.csv", sustained(b, sampler))
        if "layer" in parts:
            rows, stack_pw = layer(b, sampler)
            write_dicts(out / "layer.csv", rows)
            pw += stack_pw
    except Exception as exc:
        print(f"layer/power: FAILED {type(exc).__name__}: {exc}", flush=True)
        status = 1
    finally:
        write_dicts(out / "power.csv", pw)
        if sampler is not None:
            sampler.stop()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
