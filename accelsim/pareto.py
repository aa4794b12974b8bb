"""The throughput-interactivity front: tokens/s per chip against tokens/s per user (1 / TPOT) over
every replica layout the one search enumerates (`search.llm_candidates`) and every batch
(`predict.batch_candidates`), under TTFT / TPOT SLOs.

A point is one (layout, batch); it is on the front when no other point is at least as fast per
user and strictly faster per chip. Each layout costs one vectorised `llm_metrics` call over its
batches, so the whole front is as cheap as one `predict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from accelsim.errors import UserError
from accelsim.graph import Parallel
from accelsim.memory import plan_llm
from accelsim.modes import PLAIN, Modes, draft_weight_bytes_per_chip
from accelsim.perf import Efficiency, HwVec, fidelity_on
from accelsim.predict import MAX_BATCH, batch_candidates, llm_metrics
from accelsim.search import Query, llm_candidates
from accelsim.spec.chip import Chip
from accelsim.spec.model import LLM


@dataclass(frozen=True)
class ParetoPoint:
    layout: Parallel
    batch: int
    tokens_per_s_per_chip: float
    tokens_per_s_per_user: float
    ttft_s: float
    tpot_s: float
    power_w: float  # per chip

    def to_dict(self) -> dict[str, Any]:
        p = self.layout
        return {"tokens_per_s_per_chip": self.tokens_per_s_per_chip,
                "tokens_per_s_per_user": self.tokens_per_s_per_user,
                "layout": {"tp": p.tp, "ep": p.ep, "pp": p.pp, "dp": p.dp, "chips": p.chips}, "batch": self.batch,
                "ttft_s": self.ttft_s, "tpot_s": self.tpot_s, "power_w": self.power_w,
                "joules_per_token": self.power_w / self.tokens_per_s_per_chip}


def front(points: list[ParetoPoint]) -> list[ParetoPoint]:
    """Non-dominated points, fastest per user first (per-chip rate then rises along the list)."""
    out: list[ParetoPoint] = []
    best = -1.0
    for p in sorted(points, key=lambda p: (-p.tokens_per_s_per_user, -p.tokens_per_s_per_chip)):
        if p.tokens_per_s_per_chip > best:
            out.append(p)
            best = p.tokens_per_s_per_chip
    return out


def points(chip: Chip, q: Query, total_chips: int | None = None) -> list[ParetoPoint]:
    """Every (layout, batch) of `q.model` on `chip` that meets the query's SLOs."""
    model = q.model
    if not isinstance(model, LLM):
        raise UserError(f"pareto serves LLMs; {model.name} is a ranking model")
    chip.compute_dtype(q.dtype)
    q.modes.validate(model)
    prec = q.precision
    layouts = [p for p in llm_candidates(chip, model, prec, q.context, total_chips, attention_dp=q.attention_dp)
               if isinstance(p, Parallel)]
    hw = HwVec.from_chips([chip], shape=(1,))
    out: list[ParetoPoint] = []
    for par in layouts:
        mem = plan_llm(chip, model, par, prec, q.context, output_len=q.output_len,
                       extra_weight_bytes=draft_weight_bytes_per_chip(q.modes.spec, par, prec))
        b = batch_candidates(min(mem.max_batch, MAX_BATCH * par.dp))
        m = llm_metrics(hw, model, par, prec, q.input_len, q.output_len, b, q.eff, q.modes)
        thr, ttft, tpot, pw = (np.broadcast_to(x, b.shape) for x in (m.throughput_replica, m.ttft_s, m.tpot_s,
                                                                       m.power_w))
        ok = np.ones(b.shape, bool)
        if q.max_ttft is not None:
            ok &= ttft <= q.max_ttft
        if q.max_tpot is not None:
            ok &= tpot <= q.max_tpot
        out += [ParetoPoint(par, int(b[i]), float(thr[i]) / par.chips, 1.0 / float(tpot[i]), float(ttft[i]),
                            float(tpot[i]), float(pw[i])) for i in np.nonzero(ok)[0]]
    return out


def pareto(chip: Chip, model: LLM, *, eff: Efficiency, chips: int | None = None, dtype: str = "fp8",
           kv_dtype: str | None = None, input_len: int = 1000, output_len: int = 1000,
           max_ttft: float | None = None, max_tpot: float | None = None, modes: Modes = PLAIN,
           attention_dp: bool = False) -> dict[str, Any]:
    """The front as the JSON `accelsim pareto --json` prints: `points` (the front) and how many
    (layout, batch) points were costed. Raises UserError when no point meets the SLOs."""
    q = Query(model, eff, dtype, kv_dtype=kv_dtype, input_len=input_len, output_len=output_len,  # type: ignore[arg-type]
              max_ttft=max_ttft, max_tpot=max_tpot, modes=modes, attention_dp=attention_dp)
    allp = points(chip, q, chips)
    if not allp:
        raise UserError(f"no layout and batch of {model.name} on {chip.name} meets the SLOs "
                        f"(--max-ttft {max_ttft}, --max-tpot {max_tpot})")
    return {"hw": chip.name, "model": model.name, "chips": chips, "dtype": dtype, "input_len": input_len,
            "output_len": output_len, "max_ttft_s": max_ttft, "max_tpot_s": max_tpot, "modes": modes.to_dict(),
            "attention_dp": attention_dp, "evaluated": len(allp), "fidelity": str(fidelity_on(eff, [chip])),
            "assumed_hw_values": chip.assumed_keys, "points": [p.to_dict() for p in front(allp)]}


def figure(result: dict[str, Any]) -> Any:
    """A Plotly figure of the front (plotly imported here, never on the analytical path)."""
    import plotly.graph_objects as go

    pts = result["points"]
    label = [f"tp={p['layout']['tp']} ep={p['layout']['ep']} pp={p['layout']['pp']} dp={p['layout']['dp']} "
             f"batch {p['batch']}" for p in pts]
    fig = go.Figure(go.Scatter(x=[p["tokens_per_s_per_user"] for p in pts], y=[p["tokens_per_s_per_chip"] for p in pts],
                               mode="lines+markers", text=label, hovertemplate="%{text}<br>%{x:.1f} tok/s/user"
                               "<br>%{y:,.0f} tok/s/chip<extra></extra>", name=result["hw"]))
    fig.update_layout(title=f"{result['model']} on {result['hw']}: throughput vs interactivity "
                            f"[{result['fidelity']}]",
                      xaxis_title="output tokens/s per user (1 / TPOT)", yaxis_title="output tokens/s per chip",
                      template="plotly_white")
    return fig
