"""Serving-level calibration: measured vLLM serving runs -> the `vllm` stack's step terms and the
power model's weights, judged on whole models held out.

The runs (ML.ENERGY v3.0, `shared/reference/measured/mlenergy_v3_h100.csv`: vLLM 0.11.1 on H100 SXM)
give per configuration the measured running batch, output length, throughput, median inter-token
latency and average GPU power. Each run is replayed with `predict.llm_metrics` at its own batch
(the measured average, honoured exactly), layout and formats; only the prompt length is unpublished
and is assumed per task (`INPUT_LEN`, with its sensitivity reported by benchmarks/bench_power.py).

What is fitted, and how (`fit`):
  step time  the mean step (batch / throughput) is exactly linear in the stack's per-kernel overhead,
             per-hop link latency and host time per step (fixed + per running sequence), so for each
             (compute_eff, memory_eff) of a small grid those four are a non-negative least-squares fit
             of relative error; the grid point with the smallest error wins.
  power      W_FLOOR, W_BUSY, W_COMPUTE, W_MEMORY of `accelsim.power`, least squares on relative error of
             per-GPU power at the fitted step times.
Held-out error (`leave_one_model_out`): every catalog model in turn is left out of both fits and
predicted by constants fitted on the others; what is reported is those predictions, never the fit.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from accelsim.graph import Parallel, Precision
from accelsim.perf import Analytical, HwVec
from accelsim.spec import load_chip, load_model
from accelsim.spec.model import LLM

# HF checkpoint -> catalog workload (text backbones; Llama 3.1 8B shares Llama 3 8B's architecture,
# Llama 3.1/3.3 70B Llama 3 70B's). Runs of other models (hybrid Mamba, vision-language) are not mapped.
MODELS = {
    "Qwen/Qwen3-8B": "qwen3-8b", "Qwen/Qwen3-14B": "qwen3-14b", "Qwen/Qwen3-32B": "qwen3-32b",
    "Qwen/Qwen3-30B-A3B-Instruct-2507": "qwen3-30b-a3b", "Qwen/Qwen3-30B-A3B-Thinking-2507": "qwen3-30b-a3b",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct": "qwen3-30b-a3b",
    "Qwen/Qwen3-235B-A22B-Instruct-2507": "qwen3-235b-a22b",
    "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8": "qwen3-235b-a22b",
    "Qwen/Qwen3-235B-A22B-Thinking-2507": "qwen3-235b-a22b",
    "Qwen/Qwen3-235B-A22B-Thinking-2507-FP8": "qwen3-235b-a22b",
    "openai/gpt-oss-20b": "gpt-oss-20b", "openai/gpt-oss-120b": "gpt-oss-120b",
    "google/gemma-3-12b-it": "gemma3-12b", "google/gemma-3-27b-it": "gemma3-27b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama3-8b", "meta-llama/Llama-3.1-70B-Instruct": "llama3-70b",
    "meta-llama/Llama-3.3-70B-Instruct": "llama3-70b", "meta-llama/Llama-3.1-405B-Instruct-FP8": "llama3.1-405b",
    "meta-llama/Llama-4-Scout-17B-16E-Instruct": "llama4-scout",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8": "llama4-maverick",
}
# Prompt tokens per task (assumed: not published). Read off the runs whose batch the KV cache capped,
# inverting the paged-KV rule (accelsim.memory): Llama 3.1 8B, Qwen3 8B, Llama 3.x 70B and Qwen3 32B
# chat runs saturate at 300-530 prompt tokens, Qwen3 8B gpqa at ~400, Qwen3 Coder FIM at ~1000.
# Image and video tasks carry unpublished image-token counts and are not replayed.
INPUT_LEN = {"lm-arena-chat": 400, "gpqa": 400, "sourcegraph-fim": 1000}
PRECISION = {"bfloat16": "bf16", "fp8": "fp8", "mxfp4": "mxfp4"}
# (compute_eff, memory_eff) grid of the step-time fit
GRID = [(c, m) for c in (0.6, 0.7, 0.75) for m in (0.8, 0.85, 0.9)]


@dataclass(frozen=True)
class Run:
    """One measured configuration, mapped onto the catalog."""

    hf_model: str
    model: str
    task: str
    chips: int
    par: Parallel
    prec: Precision
    batch: float  # measured average running batch
    output_len: int
    input_len: int  # assumed (INPUT_LEN)
    power_w: float  # per GPU
    j_per_token: float
    tokens_per_s: float  # all GPUs
    itl_s: float  # median

    @property
    def moe(self) -> bool:
        return _model(self.model).moe is not None

    @property
    def family(self) -> str:
        head = self.model.split("-")[0]
        return {"gpt": "gpt-oss", "llama3.1": "llama3"}.get(head, head)

    @property
    def step_s(self) -> float:
        """Measured mean step: batch / throughput (each running sequence gains a token a step)."""
        return self.batch / self.tokens_per_s


def load_runs(path: str | Path, input_scale: float = 1.0) -> tuple[list[Run], list[dict[str, str]]]:
    """(mapped runs, rows that could not be mapped) of the measured CSV."""
    runs, skipped = [], []
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            name = MODELS.get(r["model"])
            if name is None or r["task"] not in INPUT_LEN or r["gpu"] != "H100":
                skipped.append(r)
                continue
            n, ep = int(r["num_gpus"]), int(r["ep"])
            par = Parallel(tp=n, ep=ep) if ep > 1 else Parallel(tp=int(r["tp"]))
            prec = Precision(weights=PRECISION[r["weight_precision"]], kv="bf16")  # vLLM's KV default
            runs.append(Run(r["model"], name, r["task"], n, par, prec, float(r["avg_batch_size"]),
                            round(float(r["avg_output_len"])), max(1, round(INPUT_LEN[r["task"]] * input_scale)),
                            float(r["avg_power_w_all_gpus"]) / n, float(r["energy_per_output_token_j"]),
                            float(r["output_tokens_per_s"]), float(r["median_itl_ms"]) / 1e3))
    return runs, skipped


@cache
def _hw(chip: str) -> HwVec:
    return HwVec.from_chips([load_chip(chip)], shape=(1,))


@cache
def _model(name: str) -> LLM:
    m = load_model(name)
    assert isinstance(m, LLM)
    return m


def replay(run: Run, eff: Any, chip: str = "h100-sxm") -> dict[str, float]:
    """One run through `llm_metrics` at its measured batch: per-chip power (W), energy per output token
    (J, all chips), throughput (tokens/s, all chips), mean step and median ITL (s), duty cycle,
    busy utilisations, and the fidelity of the numbers."""
    from accelsim.predict import llm_metrics

    m = llm_metrics(_hw(chip), _model(run.model), run.par, run.prec, run.input_len,
                    run.output_len, np.asarray([run.batch]), eff)
    replicas = run.chips // run.par.chips
    thr = float(m.throughput_replica[0]) * replicas
    power = float(m.power_w[0])
    return {"power_w": power, "j_per_token": power * run.chips / thr, "tokens_per_s": thr,
            "step_s": float(m.tpot_s[0]), "itl_s": float(m.itl_s[0]), "duty": float(m.duty[0]),
            "u_compute": float(m.u_compute[0]), "u_memory": float(m.u_memory[0]), "fidelity": str(eff.fidelity)}


# -- the fit ----------------------------------------------------------------------------------------

_TIME_KEYS = ("kernel_overhead_s", "link_latency_s", "host_step_s", "sampler_bytes_per_logit")
_UNIT = {"kernel_overhead_s": 1e-6, "link_latency_s": 1e-6, "host_step_s": 1e-6, "sampler_bytes_per_logit": 1.0}
# the probe step of each linear term (exact: the step is linear in them), from the reference point
# _REF: the sampler kernel exists once it moves any bytes (its launch and DRAM ramp are then a
# constant), so the features are taken with it present and its bytes fitted above _REF.
_REF = {"kernel_overhead_s": 0.0, "link_latency_s": 0.0, "host_step_s": 0.0, "sampler_bytes_per_logit": 1.0}


@dataclass(frozen=True)
class Features:
    """Per run, at one (compute_eff, memory_eff): step and ITL at the reference constants (`_REF`:
    no overheads, a 1-byte sampler) and their exact slopes in the four time constants; FLOP and
    byte time at peak."""

    step0: np.ndarray
    step_slope: np.ndarray  # (runs, 4)
    itl0: np.ndarray
    itl_slope: np.ndarray
    flop_s: np.ndarray  # FLOPs / peak of the step's mean-rank work (overhead-independent)
    byte_s: np.ndarray
    busy0: np.ndarray  # working-kernel time at zero overheads
    busy_slope: np.ndarray


def features(runs: list[Run], base: Analytical, wrap: Any = None) -> Features:
    """`wrap(stack)` -> the efficiency to replay through (e.g. a shipped calibrated profile over the
    stack, `accelsim.calibrate.shipped.for_chip`); the stack itself when None."""
    via = wrap or (lambda e: e)
    zero = replace(base, **_REF)
    r0 = [replay(r, via(zero)) for r in runs]
    step0 = np.array([x["step_s"] for x in r0])
    itl0 = np.array([x["itl_s"] for x in r0])
    busy0 = step0 * np.array([x["duty"] for x in r0])
    step_s, itl_s, busy_s = [], [], []
    for k in _TIME_KEYS:
        u = _UNIT[k]
        rk = [replay(r, via(replace(zero, **{k: _REF[k] + u}))) for r in runs]
        st = np.array([x["step_s"] for x in rk])
        step_s.append((st - step0) / u)
        itl_s.append((np.array([x["itl_s"] for x in rk]) - itl0) / u)
        busy_s.append((st * np.array([x["duty"] for x in rk]) - busy0) / u)
    return Features(step0, np.array(step_s).T, itl0, np.array(itl_s).T,
                    np.array([x["u_compute"] for x in r0]) * busy0, np.array([x["u_memory"] for x in r0]) * busy0,
                    busy0, np.array(busy_s).T)


def fit_time(f: Features, measured_step: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative least squares of relative step error over runs `idx`: (constants, rms)."""
    from scipy.optimize import nnls

    a = f.step_slope[idx] / measured_step[idx, None]
    y = 1.0 - f.step0[idx] / measured_step[idx]
    scale = np.maximum(np.abs(a).max(axis=0), 1e-30)
    x, rnorm = nnls(a / scale, y)
    return x / scale, float(rnorm / np.sqrt(len(idx)))


def power_inputs(f: Features, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(duty, u_compute, u_memory) of every run at time constants `x`."""
    busy = f.busy0 + f.busy_slope @ x
    wall = f.step0 + f.step_slope @ x
    return busy / wall, f.flop_s / busy, f.byte_s / busy


def power_w(w: Any, idle: float, tdp: float, duty: np.ndarray, u_c: np.ndarray, u_m: np.ndarray) -> np.ndarray:
    """Per-chip power at weights w = (W_FLOOR, W_BUSY, W_COMPUTE, W_MEMORY)."""
    from accelsim.power import chip_power_w

    return chip_power_w(idle, tdp, u_c, u_m, duty, w_floor=w[0], w_busy=w[1], w_compute=w[2], w_memory=w[3])


def fit_power(duty: np.ndarray, u_c: np.ndarray, u_m: np.ndarray, measured_w: np.ndarray, idle: float,
              tdp: float) -> np.ndarray:
    """(W_FLOOR, W_BUSY, W_COMPUTE, W_MEMORY) by least squares on relative power error."""
    from scipy.optimize import least_squares

    def res(w: np.ndarray) -> np.ndarray:
        return power_w(w, idle, tdp, duty, u_c, u_m) / measured_w - 1

    return least_squares(res, x0=[0.3, 0.2, 1.0, 0.6], bounds=([0, 0, 0, 0], [0.9, 1, 5, 5])).x


@dataclass(frozen=True)
class Fit:
    compute_eff: float
    memory_eff: float
    time: dict[str, float]
    power: tuple[float, ...]  # W_FLOOR, W_BUSY, W_COMPUTE, W_MEMORY
    rms_step: float


def fit(runs: list[Run], feats: dict[tuple[float, float], Features], idx: np.ndarray, idle: float,
        tdp: float) -> Fit:
    """Fit every constant on runs `idx` (module docstring)."""
    step = np.array([r.step_s for r in runs])
    best = min(((fit_time(f, step, idx), g) for g, f in feats.items()), key=lambda t: t[0][1])
    (x, rms), g = best
    duty, u_c, u_m = power_inputs(feats[g], x)
    meas = np.array([r.power_w for r in runs])
    w = fit_power(duty[idx], u_c[idx], u_m[idx], meas[idx], idle, tdp)
    return Fit(g[0], g[1], {k: float(v) + _REF[k] for k, v in zip(_TIME_KEYS, x)}, tuple(map(float, w)), rms)


def predict_runs(runs: list[Run], feats: dict[tuple[float, float], Features], f: Fit, idle: float,
                 tdp: float) -> dict[str, np.ndarray]:
    """Predictions of every run from a `Fit` (per-GPU power, J/token, tokens/s, ITL)."""
    ft = feats[(f.compute_eff, f.memory_eff)]
    x = np.array([f.time[k] - _REF[k] for k in _TIME_KEYS])
    duty, u_c, u_m = power_inputs(ft, x)
    step = ft.step0 + ft.step_slope @ x
    power = power_w(f.power, idle, tdp, duty, u_c, u_m)
    batch = np.array([r.batch for r in runs])
    reps = np.array([r.chips // r.par.chips for r in runs])
    thr = batch / step * reps
    chips = np.array([r.chips for r in runs])
    return {"power_w": power, "tokens_per_s": thr, "j_per_token": power * chips / thr,
            "itl_s": ft.itl0 + ft.itl_slope @ x, "duty": duty}


def leave_one_model_out(runs: list[Run], feats: dict[tuple[float, float], Features], idle: float,
                        tdp: float) -> dict[str, np.ndarray]:
    """Every run predicted by constants fitted without its model (held-out predictions)."""
    names = np.array([r.model for r in runs])
    out: dict[str, np.ndarray] = {}
    for name in sorted(set(names)):
        test = names == name
        f = fit(runs, feats, np.nonzero(~test)[0], idle, tdp)
        pred = predict_runs(runs, feats, f, idle, tdp)
        for k, v in pred.items():
            out.setdefault(k, np.zeros(len(runs)))[test] = v[test]
    return out


# -- the fused-MoE layer's fixed time, from kernel measurements ---------------------------------------

AIC_MOE = "hwmodels/measured/aiconfigurator/h100_sxm_vllm_moe.csv.gz"
MOE_SMALL_M = 64  # tokens per layer at or below which the fixed part dominates


def fit_moe_layer_latency(path: str | Path, base: Analytical, chip: str = "h100-sxm") -> dict[str, float]:
    """The `moe_layer_latency_s` of a stack from measured fused-MoE kernels (AIConfigurator's vLLM
    Triton fused MoE on H100, balanced routing): the median of measured - modelled time over layers of
    at most MOE_SMALL_M tokens, the modelled time being the stack's operator costs of the rank's share
    (`ops.fused_moe_ops`). Also the median |ln(predicted / measured)| over all rows up to 4,096
    tokens without and with it."""
    from accelsim import ops as O
    from accelsim.measurements import read
    from accelsim.perf import cost

    hw = _hw(chip)
    zero = replace(base, moe_layer_latency_s=0.0)
    meas, model, small = [], [], []
    for r in read(path):
        s = r["shape"]
        if s["M"] > 4096:
            continue
        w = 2.0 if r["dtype"] == "bf16" else 1.0
        active = min(float(O.expected_experts_hit(s["M"], s["E"], s["top_k"])), s["E"]) / s["ep"]
        ops = O.fused_moe_ops(s["M"] / s["ep"], s["H"], s["I"] / s["tp"], s["E"], s["top_k"], act_bytes=2.0,
                              weight_bytes=w, dtype=r["dtype"], experts_active=active)
        meas.append(r["median_s"])
        model.append(float(np.ravel(cost(ops, hw, zero).total_s)[0]))
        small.append(s["M"] <= MOE_SMALL_M)
    m, p, sm = np.array(meas), np.array(model), np.array(small)
    lat = float(np.median((m - p)[sm]))
    return {"moe_layer_latency_s": lat, "rows": float(len(m)),
            "ln_err_without": float(np.median(np.abs(np.log(p / m)))),
            "ln_err_with": float(np.median(np.abs(np.log((p + lat) / m))))}
