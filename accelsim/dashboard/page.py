"""Everything one state of the page shows, computed without Dash: `render(raw) -> Page`.

The app's single callback is `render` plus wrapping the result in components. Errors never
escape: a `UserError` (a bad control value, a model that does not fit) becomes its one-line text
on the page; anything else becomes a generic message and a logged traceback.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from accelsim.calibrate.project import rate_band
from accelsim.dashboard import figures
from accelsim.dashboard.controls import (
    Controls,
    catalog_chip,
    disagg_for,
    efficiency,
    parse_controls,
    per_chip,
    per_joule,
    predict_for,
    what_if_chip,
)
from accelsim.errors import UserError
from accelsim.predict import LLMPrediction
from accelsim.search import describe

log = logging.getLogger("accelsim.dashboard")

INTERNAL_ERROR = "internal error while drawing the {what}; the server log has the details"


@dataclass
class Page:
    """Figures, readouts and messages for one state of the controls."""

    roofline: go.Figure
    generations: go.Figure
    site: go.Figure
    summary: list[tuple[str, str]] = field(default_factory=list)  # (label, value) cards
    chip_rows: list[dict[str, str]] = field(default_factory=list)
    site_rows: list[dict[str, str]] = field(default_factory=list)  # the planner's assumptions
    readouts: dict[str, str] = field(default_factory=dict)  # slider key -> "9.2 → 18.4 TB/s"
    messages: list[str] = field(default_factory=list)


def ui_text(message: str) -> str:
    """A library message in page words: CLI flag names ('--batch') become plain names."""
    return re.sub(r"--(?=[a-z])", "", message)


def _guard(what: str, fn: Callable[[], Any], messages: list[str]) -> Any:
    try:
        return fn()
    except UserError as exc:
        text = ui_text(str(exc))
    except Exception:  # a bug must not put a traceback on the page; the log keeps it
        log.exception("dashboard: %s failed", what)
        text = INTERNAL_ERROR.format(what=what)
    if text not in messages:
        messages.append(text)
    return text


def render(raw: Mapping[str, Any], *, measured_dir: str | Path | None = None) -> Page:
    """The page for raw control values (see `parse_controls`); never raises for bad values."""
    messages: list[str] = []
    c = _guard("controls", lambda: parse_controls(raw), messages)
    if not isinstance(c, Controls):
        blank = lambda title: figures.empty_figure(c, title)
        return Page(blank("Roofline"), blank("Chip generations"), blank("Site plan"), messages=messages)

    def panel(what: str, fn: Callable[[], go.Figure]) -> go.Figure:
        out = _guard(what, fn, messages)
        return out if isinstance(out, go.Figure) else figures.empty_figure(out, what.capitalize())

    roof = panel("roofline", lambda: figures.roofline_figure(c, measured_dir=measured_dir))
    gens = panel("chip generations", lambda: figures.generations_figure(c))
    plan = _guard("site plan", lambda: figures.site_plan(c), messages)
    site = (panel("site plan", lambda: figures.site_figure(c, plan)) if isinstance(plan, dict)
            else figures.empty_figure(plan, "Site plan"))
    summary = _guard("summary", lambda: summary_cards(c), messages)
    site_rows = ([{"value": k, "basis": v} for k, v in plan.get("assumptions", {}).items()]
                 if isinstance(plan, dict) else [])
    return Page(roof, gens, site, summary=summary if isinstance(summary, list) else [],
                chip_rows=chip_rows(c), site_rows=site_rows, readouts=readouts(c), messages=messages)


def _si(x: float, unit_: str, digits: int = 3) -> str:
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.{digits}g} {prefix}{unit_}"
    return f"{x:.{digits}g} {unit_}"


def summary_cards(c: Controls) -> list[tuple[str, str]]:
    """The what-if prediction in a few labelled numbers (the cards above the plots)."""
    r = predict_for(c)
    u = r.unit
    cards = [("throughput", f"{r.throughput:,.0f} {u}/s"),
             ("per chip", f"{per_chip(r):,.0f} {u}/s"),
             (f"{u} per joule", f"{per_joule(r):.3g}"),
             ("power per chip", f"{r.power_w:,.0f} W")]
    chips = f"{r.replica_chips} chip{'s' * (r.replica_chips != 1)}"
    if isinstance(r, LLMPrediction):
        cards += [("TTFT · TPOT", f"{r.ttft_s * 1e3:,.0f} ms · {r.tpot_s * 1e3:,.1f} ms"),
                  ("replica", f"{chips} ({describe(r.layout)}), batch {r.batch}"),
                  ("bound", f"decode {r.bound}, prefill {r.prefill_bound}")]
    else:
        cards += [("latency", f"{r.latency_s * 1e3:,.1f} ms (SLO {r.latency_slo_s * 1e3:.0f} ms)"),
                  ("shards", ("each chip holds all tables" if r.replica_chips == 1 else f"{chips} share the tables")
                   + f", batch {r.batch} per chip"),
                  ("bound", r.bound)]
    d = disagg_for(c)
    if d is not None:
        cards += [("disaggregated", f"{d.prefill.chips} x {d.prefill.chip.name} prefill + {d.decode.chips} x "
                                    f"{d.decode.chip.name} decode"),
                  ("disaggregated per chip", f"{d.rate_per_chip:,.0f} tokens/s ({d.bottleneck} binds; "
                                             f"KV over {d.link.fabric})")]
    cards.append(("fidelity", str(r.fidelity)))
    band = rate_band(r, efficiency(c.fidelity))  # calibrated / projected: the measured band, same point
    if band:
        cards.append(("band per chip", f"{band[0]:,.0f} – {band[1]:,.0f} {u}/s"))
    return cards


_CHIP_KEYS = (("mem_bw_bytes_per_s", "memory bandwidth", "B/s"), ("mem_capacity_bytes", "memory capacity", "B"),
              ("tdp_w", "TDP", "W"), ("idle_w", "idle power", "W"),
              ("scale_up_bw_bytes_per_s", "scale-up bandwidth", "B/s"),
              ("scale_up_domain_size", "scale-up domain", "chips"),
              ("scale_out_bw_bytes_per_s", "scale-out bandwidth", "B/s"))


def chip_rows(c: Controls) -> list[dict[str, str]]:
    """The chip's values: catalog, what-if, and the source or the assumption behind each."""
    base, chip = catalog_chip(c.chip), what_if_chip(c)
    rows = []
    keys = [(f"peak_flops.{d}", f"peak {d} FLOP/s", "FLOP/s") for d in base.peak_flops] + list(_CHIP_KEYS)
    for key, label, unit_ in keys:
        get = lambda ch, k=key: ch.peak_flops[k[11:]] if k.startswith("peak_flops.") else getattr(ch, k)
        v = base.provenance.get(key)
        rows.append({"value": label, "catalog": _si(get(base), unit_), "what_if": _si(get(chip), unit_),
                     "assumed": "yes" if v is not None and v.is_assumed else "",
                     "basis": (f"ASSUMED: {v.assumed}" if v.is_assumed else v.source or "") if v else ""})
    return rows


def readouts(c: Controls) -> dict[str, str]:
    """Slider labels: the multiplier and the absolute value it gives."""
    base, chip = catalog_chip(c.chip), what_if_chip(c)
    d = base.compute_dtype(c.dtype)
    pairs = {"mem_bw": (base.mem_bw_bytes_per_s, chip.mem_bw_bytes_per_s, "B/s"),
             "flops": (base.flops(d), chip.flops(d), f"FLOP/s {d}"),
             "tdp": (base.tdp_w, chip.tdp_w, "W"),
             "capacity": (base.mem_capacity_bytes, chip.mem_capacity_bytes, "B")}
    return {k: f"×{getattr(c, k):.2f}: {_si(a, u)} → {_si(b, u)}" for k, (a, b, u) in pairs.items()}
