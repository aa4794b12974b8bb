"""Shared helpers for the serving-simulator tests: spine references computed independently of
the simulator's tables."""

from __future__ import annotations

import numpy as np

from accelsim.graph import Parallel, Precision, llm_ops
from accelsim.perf import HwVec, cost
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack

EFF = load_stack()


def hw(name: str = "h100-sxm") -> HwVec:
    return HwVec.from_chips([load_chip(name)], shape=(1,))

BF16 = Precision.for_serving("bf16")


def prefill_s(model: str, tokens: int, context: float, tp: int = 1, pp: int = 1, hw_name: str = "h100-sxm") -> float:
    """The spine's time of one prefill chunk on one pipeline stage (a single-request step's time)."""
    ops = llm_ops(load_model(model), Parallel(tp, 1, pp), BF16, "prefill", float(tokens), context)
    return float(np.asarray(cost(ops, hw(hw_name), EFF).total_s).ravel()[0])


def decode_s(model: str, batch: float, context: float, tp: int = 1, pp: int = 1, hw_name: str = "h100-sxm") -> float:
    """The spine's time of one decode batch on one pipeline stage."""
    ops = llm_ops(load_model(model), Parallel(tp, 1, pp), BF16, "decode", float(batch), context)
    return float(np.asarray(cost(ops, hw(hw_name), EFF).total_s).ravel()[0])


def write_trace(path, rows) -> str:
    lines = ["arrival_s,input_len,output_len", *(f"{a},{i},{o}" for a, i, o in rows)]
    path.write_text("\n".join(lines) + "\n")
    return str(path)
