"""Software stacks: how close a serving stack gets to the hardware, as two fractions of peak.

A stack's `compute_eff` and `memory_eff` are fitted once on published measurements of one chip
(the H100 TensorRT-LLM table, 30 points) and then applied to every chip: other chips are
predicted from their specs, never from a constant fitted to one of their own numbers.
The fitted values live in `accelsim/data/stacks.toml`; `fit_stack` reproduces them (a test checks).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

import numpy as np

from accelsim.errors import unknown_name
from accelsim.perf import Analytical

DEFAULT_STACK = "trtllm-fp8"


def _data(name: str) -> dict[str, Any]:
    with resources.files("accelsim.data").joinpath(name).open("rb") as fh:
        return tomllib.load(fh)


def load_stack(name: str = DEFAULT_STACK) -> Analytical:
    """The named stack's efficiency model (fidelity: analytical)."""
    stacks = _data("stacks.toml")["stack"]
    if name not in stacks:
        raise unknown_name("software stack", name, stacks)
    entry = stacks[name]
    keys = {f.name for f in fields(Analytical)} - {"fidelity", "source"}
    return Analytical(name=name, source=entry.get("source", ""), **{k: v for k, v in entry.items() if k in keys})


@dataclass(frozen=True)
class PublishedPoint:
    model: str
    tp: int
    input_len: int
    output_len: int
    tokens_per_s: float


def published_h100_points() -> list[PublishedPoint]:
    data = _data("published_h100.toml")
    return [PublishedPoint(s["model"], s["tp"], i, o, v)
            for s in data["series"] for (i, o), v in zip(data["io"], s["tokens_per_s"])]


def evaluate(stack: Analytical, points: list[PublishedPoint] | None = None) -> list[dict[str, Any]]:
    """Predict every published point with `stack`; rows with the signed error in percent. The points
    are fixed-length offline runs (every request of one ISL/OSL, all submitted at once): lockstep."""
    from accelsim.modes import Modes
    from accelsim.predict import predict
    from accelsim.spec import load_chip, load_model

    chip = load_chip("h100-sxm")
    rows = []
    for p in points or published_h100_points():
        r = predict(chip, load_model(p.model), chips=p.tp, tp=p.tp, eff=stack, dtype="fp8",
                    input_len=p.input_len, output_len=p.output_len, modes=Modes(fixed_lengths=True))
        pred = r["throughput_tokens_per_s"]
        rows.append({"model": p.model, "tp": p.tp, "input_len": p.input_len, "output_len": p.output_len,
                     "published_tokens_per_s": p.tokens_per_s, "predicted_tokens_per_s": pred,
                     "error_pct": 100 * (pred / p.tokens_per_s - 1), "batch": r["batch"], "bound": r["bound"]})
    return rows


def fit_stack(base: Analytical | None = None) -> tuple[Analytical, list[dict[str, Any]]]:
    """Least-squares fit of (compute_eff, memory_eff) on log throughput over the published points."""
    from scipy.optimize import least_squares

    base = base or Analytical()
    points = published_h100_points()

    def stack(x: np.ndarray) -> Analytical:
        return Analytical(**{**base.__dict__, "compute_eff": float(x[0]), "memory_eff": float(x[1])})

    def residuals(x: np.ndarray) -> np.ndarray:
        return np.log([1 + r["error_pct"] / 100 for r in evaluate(stack(x), points)])

    res = least_squares(residuals, x0=[base.compute_eff, base.memory_eff], bounds=([0.2, 0.2], [1.0, 1.0]),
                        diff_step=1e-3, xtol=1e-6)
    best = stack(np.round(res.x, 4))
    return best, evaluate(best, points)


def error_summary(rows: list[dict[str, Any]]) -> dict[str, float]:
    ape = np.abs([r["error_pct"] for r in rows])
    return {"n": len(rows), "median_ape_pct": float(np.median(ape)), "p90_ape_pct": float(np.percentile(ape, 90)),
            "max_ape_pct": float(ape.max())}
