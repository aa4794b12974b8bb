"""`accelsim measure --device cpu`: time real torch operators on this CPU, write measurement rows.

The CPU is a device like any GPU: the same schema (`accelsim.measurements`), the same operator
counts (`accelsim.ops` constructors build an `Op` for every measured shape, and its `flops` and
`bytes` are what the row records), so the whole loop measure -> fit -> validate -> predict runs on
a CPU-only machine on real timings.

What is timed (torch eager, `torch.set_num_threads(threads)`; the thread count is part of the
device string because it changes the chip being measured):
  gemm           `torch.matmul(A[m,k], W[k,n], out=C)`            fp32, bf16
  grouped_gemm   `torch._grouped_mm(A[tokens,k], W[E,k,n], offs)`  tokens split evenly over E experts
  embedding_bag  `F.embedding_bag(idx, table, offsets, mode="sum")` random rows of a table >> L3
  elementwise    `dst.copy_(src)` (a copy: 0 FLOPs, read + write bytes)
  peaks          `matmul_peak` (one large square matmul per dtype) and `copy_peak` (a copy >> L3):
                 the rows calibration turns into the CPU's peak FLOP/s and bandwidth.

Timing (clock: see `timer`): per shape, one warm-up call, then `reps` repetitions; a repetition runs enough calls to
last >= MIN_REP_S (a single call of a tiny operator is shorter than the timer's noise) and records
the mean call time. Repetitions are interleaved across shapes (round r times every shape once) so
that load from other jobs spreads over shapes instead of spoiling one. Median, p20 and p80 over
the repetitions are written. Inputs rotate over
several copies laid out in a pool of 2 x L3 bytes so that every call reads its operands from DRAM,
like a GPU benchmark that flushes L2 (`triton.testing.do_bench`): decode GEMMs stream weights
that do not sit in cache.

torch is imported inside `measure_cpu` only: the rest of accelsim never pays for it.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from accelsim import measurements as M
from accelsim import ops as O
from accelsim.spec.chip import DTYPE_BYTES

Grid = Literal["tiny", "quick", "default"]
MIN_REP_S = 0.004  # shortest repetition: >> perf_counter resolution and Python loop jitter
MAX_SETS = 512  # operand copies rotated through: up to 2 x L3 of them, so every call reads from DRAM
# One thread by default: CI machines have 2 cores shared with other jobs, one thread keeps timings
# stable, and the measured peaks then describe the same one-core "chip" as every other row.
DEFAULT_THREADS = 1
TOOL = "accelsim measure --device cpu"
PEAK_NAMES = ("matmul_peak", "copy_peak")


@dataclass(frozen=True)
class GridSpec:
    """Shapes measured by one grid. Sizes are chosen so `default` takes < 60 s on 2 busy cores."""

    gemm_dtypes: tuple[str, ...]
    gemm_m: tuple[int, ...]
    gemm_nk: tuple[tuple[int, int], ...]
    grouped_dtypes: tuple[str, ...]
    grouped_tokens: tuple[int, ...]
    grouped_experts: tuple[int, ...]
    grouped_nk: tuple[tuple[int, int], ...]
    ebag_samples: tuple[int, ...]
    ebag_lookups: tuple[int, ...]
    ebag_dims: tuple[int, ...]
    copy_mib: tuple[float, ...]
    peak_mnk: int
    peak_copy_mib: int
    reps: int
    ebag_table_mib: int = 128


GRIDS: dict[str, GridSpec] = {
    # tiny: the CI test's loop (a few seconds); every class keeps >= 4 training shapes after a 25% hold-out
    "tiny": GridSpec(("fp32", "bf16"), (1, 8, 64, 256), ((256, 256), (512, 512), (1024, 512)),
                     ("bf16",), (32, 128, 512), (4, 8), ((256, 256),),
                     (64, 512), (4, 16, 64), (64,), (0.25, 1, 4, 16, 32), 768, 96, reps=5, ebag_table_mib=64),
    "quick": GridSpec(("fp32", "bf16"), (1, 4, 16, 64, 256, 768), ((512, 512), (1024, 1024), (2048, 512)),
                      ("fp32", "bf16"), (64, 256, 1024), (4, 16), ((512, 256),),
                      (128, 1024), (4, 16, 64), (64,), (1 / 16, 0.5, 2, 8, 32, 64), 1024, 192, reps=5),
    "default": GridSpec(("fp32", "bf16"), (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
                        ((512, 512), (1024, 1024), (2048, 1024), (1024, 2048), (4096, 512)),
                        ("fp32", "bf16"), (16, 64, 256, 1024), (4, 8, 16), ((512, 256), (1024, 512)),
                        (64, 256, 512, 1024, 4096), (4, 10, 20, 40, 80), (32, 128),
                        # copies every half octave from 16 KiB to 128 MiB: the L3-to-DRAM transition is sharp,
                        # so a held-out size must fall between measured ones, not beyond them
                        tuple(2 ** (k / 2) / 64 for k in range(27)), 1536, 256, reps=7),
}


@dataclass
class _Case:
    op: O.Op
    shape: dict[str, int]
    setup: Callable[[], list[Callable[[], Any]]]  # -> one zero-argument call per operand set
    config: dict[str, Any] = field(default_factory=dict)


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else platform's best guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def l3_bytes() -> int:
    """Last-level cache size (Linux sysfs), or 32 MiB when it cannot be read."""
    try:
        text = Path("/sys/devices/system/cpu/cpu0/cache/index3/size").read_text().strip()
        return int(text.rstrip("K")) * 1024 if text.endswith("K") else int(text)
    except (OSError, ValueError):
        return 32 * 2**20


def device_string(threads: int) -> str:
    return f"cpu:{cpu_name()} ({threads} thread{'s' if threads != 1 else ''})"


def _cases(spec: GridSpec, torch: Any, pools: Callable[[str], Any]) -> list[_Case]:
    tdt = {"fp32": torch.float32, "bf16": torch.bfloat16}
    cases: list[_Case] = []

    def views(dtype: str, shapes: Sequence[tuple[int, ...]]) -> list[list[Any]]:
        """Operand sets carved out of the dtype's pool (fresh tensors when one set exceeds it)."""
        pool = pools(dtype)
        sizes = [math.prod(s) for s in shapes]
        per_set = sum(sizes)
        n_sets = min(MAX_SETS, pool.numel() // per_set)
        if n_sets == 0:
            return [[torch.rand(s, dtype=tdt[dtype]) for s in shapes]]
        out, off = [], 0
        for _ in range(n_sets):
            group = []
            for s, n in zip(shapes, sizes):
                group.append(pool[off:off + n].view(s))
                off += n
            out.append(group)
        return out

    def gemm_case(name: str, dtype: str, m: int, n: int, k: int) -> _Case:
        b = DTYPE_BYTES[dtype]
        op = O.gemm(name, m, n, k, dtype=dtype, a_bytes=b, w_bytes=b, out_bytes=b)

        def setup() -> list[Callable[[], Any]]:
            c = torch.empty(m, n, dtype=tdt[dtype])
            return [lambda a=a, w=w: torch.matmul(a, w, out=c) for a, w in views(dtype, [(m, k), (k, n)])]

        return _Case(op, {"m": m, "n": n, "k": k}, setup)

    for dtype in spec.gemm_dtypes:
        for n, k in spec.gemm_nk:
            for m in spec.gemm_m:
                cases.append(gemm_case("matmul", dtype, m, n, k))
    for dtype in spec.gemm_dtypes:  # the chip-defining rows, one per dtype
        s = spec.peak_mnk
        cases.append(gemm_case("matmul_peak", dtype, s, s, s))

    for dtype in spec.grouped_dtypes:
        b = DTYPE_BYTES[dtype]
        for n, k in spec.grouped_nk:
            for experts in spec.grouped_experts:
                for tokens in spec.grouped_tokens:
                    op = O.grouped_gemm("grouped_mm", tokens, n, k, experts, dtype=dtype, a_bytes=b, w_bytes=b,
                                        out_bytes=b)

                    def setup(dtype: str = dtype, t: int = tokens, e: int = experts, n: int = n,
                              k: int = k) -> list[Callable[[], Any]]:
                        offs = torch.arange(1, e + 1, dtype=torch.int32) * (t // e)
                        return [lambda a=a, w=w: torch._grouped_mm(a, w, offs=offs)
                                for a, w in views(dtype, [(t, k), (e, k, n)])]

                    cases.append(_Case(op, {"tokens": tokens, "n": n, "k": k, "experts": experts}, setup))

    table_cache: dict[int, Any] = {}
    for dim in spec.ebag_dims:
        for samples in spec.ebag_samples:
            for lookups in spec.ebag_lookups:
                op = O.embedding_bag("embedding_bag", samples, lookups, 1, dim, dtype="fp32", row_bytes=4.0,
                                     out_bytes=4.0)

                def setup(s: int = samples, lk: int = lookups, d: int = dim) -> list[Callable[[], Any]]:
                    rows = spec.ebag_table_mib * 2**20 // (4 * d)
                    if d not in table_cache:  # one table per dim, far larger than L3: random rows miss
                        table_cache[d] = torch.rand(rows, d)
                    table = table_cache[d]
                    offsets = torch.arange(0, s * lk, lk)
                    gen = torch.Generator().manual_seed(s * 131 + lk)
                    idx_sets = [torch.randint(0, rows, (s * lk,), generator=gen) for _ in range(4)]
                    F = torch.nn.functional
                    return [lambda i=i: F.embedding_bag(i, table, offsets, mode="sum") for i in idx_sets]

                cases.append(_Case(op, {"samples": samples, "lookups": lookups, "tables": 1, "dim": dim}, setup))

    def copy_case(name: str, mib: float) -> _Case:
        elems = int(mib * 2**20 // 4)
        op = O.elementwise(name, elems, dtype="fp32", bytes_per_elem=8.0, flops_per_elem=0.0)

        def setup() -> list[Callable[[], Any]]:
            return [lambda s=s, d=d: d.copy_(s) for s, d in views("fp32", [(elems,), (elems,)])]

        return _Case(op, {"elems": elems}, setup)

    cases += [copy_case("copy", mib) for mib in spec.copy_mib]
    cases.append(copy_case("copy_peak", spec.peak_copy_mib))
    return cases


def _prepare(calls: Sequence[Callable[[], Any]], clock: Callable[[], float]) -> int:
    """Warm up (first-touch page faults, library dispatch) and return the calls per repetition."""
    calls[0]()
    t0 = clock()
    calls[-1]()
    one = max(clock() - t0, 1e-7)
    return max(1, min(10_000, math.ceil(MIN_REP_S / one)))


def _rep(calls: Sequence[Callable[[], Any]], inner: int, start: int, clock: Callable[[], float]) -> float:
    """Mean seconds per call over `inner` calls, rotating operand sets from `start`."""
    t0 = clock()
    for j in range(inner):
        calls[(start + j) % len(calls)]()
    return (clock() - t0) / inner


def timer(threads: int) -> tuple[Callable[[], float], str]:
    """The clock to time with. One thread: the thread's CPU time, which does not advance while the
    scheduler runs other jobs (on a shared 2-core box wall time doubled under load in our runs,
    CPU time moved < 10%); memory stalls still count. Several threads: wall time, since the work runs
    on pool threads the calling thread's CPU clock does not see."""
    return (time.thread_time, "thread_time") if threads == 1 else (time.perf_counter, "perf_counter")


def measure_cpu(grid: Grid = "default", threads: int = DEFAULT_THREADS, reps: int | None = None,
                progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Time the grid's operators on this CPU; returns schema rows (see `accelsim.measurements`).

    threads: torch intra-op threads for the run (restored afterwards). Raises ImportError without torch.
    """
    import torch

    spec = GRIDS[grid]
    reps = reps or spec.reps
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    clock, clock_name = timer(threads)
    prov = M.provenance(TOOL, device=device_string(threads), device_kind="cpu",
                        driver=f"{platform.system()} {platform.release()}; clock {clock_name}")
    pool_elems = 2 * l3_bytes() // 4
    pools_cache: dict[str, Any] = {}

    def pools(dtype: str) -> Any:
        if dtype not in pools_cache:
            gen = torch.Generator().manual_seed(0)
            dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
            pools_cache[dtype] = torch.rand(pool_elems * 4 // int(DTYPE_BYTES[dtype]), generator=gen, dtype=dt)
        return pools_cache[dtype]

    rows = []
    try:
        with torch.inference_mode():
            cases = _cases(spec, torch, pools)
            prepared = []
            t0 = time.perf_counter()
            for i, case in enumerate(cases):
                calls = case.setup()
                prepared.append((calls, _prepare(calls, clock)))
                if progress and (i + 1) % 25 == 0:
                    progress(f"preparing shapes {i + 1}/{len(cases)} ({time.perf_counter() - t0:.0f} s)")
            # Repetitions are interleaved: each round times every shape once, in a shuffled order, so a
            # burst of load from other jobs on a shared machine spoils one repetition of many shapes
            # (which the median discards) rather than every repetition of one shape.
            times = np.empty((len(cases), reps))
            rng = np.random.default_rng(0)
            t0 = time.perf_counter()
            for r in range(reps):
                for j in rng.permutation(len(cases)):
                    calls, inner = prepared[j]
                    times[j, r] = _rep(calls, inner, r * inner, clock)
                if progress:  # one line per round: a long run says how far it is and how long is left
                    done = time.perf_counter() - t0
                    progress(f"round {r + 1}/{reps} of {len(cases)} shapes: {done:.0f} s, "
                             f"about {done / (r + 1) * (reps - r - 1):.0f} s left")
            del prepared
        for case, t in zip(cases, times):
            op = case.op
            rows.append(M.row(op=str(op.kind), name=op.name, dtype=op.dtype, shape=case.shape,
                              config=case.config, flops=float(op.flops), bytes=float(op.bytes),
                              median_s=float(np.median(t)), p20_s=float(np.percentile(t, 20)),
                              p80_s=float(np.percentile(t, 80)), reps=reps, **prov))
            if progress:
                shape = " ".join(f"{k}={v}" for k, v in case.shape.items())
                progress(f"{op.name:14s} {op.dtype:5s} {shape:32s} {np.median(t) * 1e6:10.1f} us")
    finally:
        torch.set_num_threads(old_threads)
    return rows


