"""Planning scenarios built on `plan`: fleet roadmaps by year mixing generations, and power-capping
trade-offs (what a chip, and a fixed site, serve as the per-chip cap goes down)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from accelsim.errors import UserError
from accelsim.perf import Efficiency
from accelsim.plan.planner import plan
from accelsim.search import best, query
from accelsim.spec import load_chip
from accelsim.spec.chip import Chip
from accelsim.spec.model import Model
from accelsim.stacks import load_stack


@dataclass(frozen=True)
class Deployment:
    """`facility_power_w` of `hw` brought online in `year` (it serves from that year on)."""

    year: int
    hw: str
    facility_power_w: float

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Deployment:
        try:
            return cls(int(d["year"]), str(d["hw"]), float(d["facility_power_w"]))
        except (KeyError, TypeError, ValueError):
            raise UserError(f"a fleet entry needs year, hw and facility_power_w; got {dict(d)!r}") from None


def fleet_by_year(deployments: Sequence[Deployment], years: Sequence[int], model: Model, *,
                  lifetime_years: int | None = None, **plan_kw: Any) -> list[dict[str, Any]]:
    """One row per year x chip in service: facility power, racks, chips and what they serve.

    A deployment serves from its year for `lifetime_years` (None: forever). Raises UserError when
    a deployment comes before its chip's availability year. `plan_kw` go to `plan` (SLOs, PUE, eff).
    """
    chips: dict[str, Chip] = {}
    for d in deployments:
        chip = chips.setdefault(d.hw, load_chip(d.hw))
        if d.year < chip.availability_year:
            raise UserError(f"fleet entry {d.year} {d.hw}: {d.hw} is not available before {chip.availability_year}")
        if d.facility_power_w < 0:
            raise UserError(f"fleet entry {d.year} {d.hw}: facility_power_w must be >= 0")
    q_kw = {k: plan_kw[k] for k in ("input_len", "output_len", "max_ttft", "max_tpot", "max_latency") if k in plan_kw}
    q = query(model, plan_kw.get("eff") or load_stack(), plan_kw.get("dtype"), **q_kw)
    points = {hw: best(c, q) for hw, c in chips.items()}
    rows: list[dict[str, Any]] = []
    for year in years:
        power: dict[str, float] = {}
        for d in deployments:
            if d.year <= year and (lifetime_years is None or year < d.year + lifetime_years):
                power[d.hw] = power.get(d.hw, 0.0) + d.facility_power_w
        for hw, watts in power.items():
            r = plan(chips[hw], model, site_power_w=watts, point=points[hw], **plan_kw)
            u = "tokens" if r["kind"] == "llm" else "samples"
            rows.append({"year": year, "hw": hw, "facility_power_w": r["facility_power_w"], "racks": r["racks"],
                         "chips": r["chips"], f"throughput_{u}_per_s": r[f"throughput_{u}_per_s"],
                         f"{u}_per_joule": r[f"{u}_per_joule"], "fidelity": r["fidelity"]})
    return rows


def cap_sweep(chip: Chip, model: Model, fractions: Sequence[float], *, site_power_w: float,
              eff: Efficiency, **plan_kw: Any) -> list[dict[str, Any]]:
    """Throughput at a power cap: for each cap (fraction of TDP) the chip's clock fraction, its rate
    and draw, and what a fixed site serves with capped chips (more of them fit)."""
    rows: list[dict[str, Any]] = []
    for f in fractions:
        if not 0 < f <= 1:
            raise UserError(f"a cap fraction must be in (0, 1], got {f:g}")
        cap = f * chip.tdp_w
        # plan() caps the chip (`capped_chip`), which raises for a cap at or below idle power
        r = plan(chip, model, site_power_w=site_power_w, eff=eff, power_cap_w=cap if f < 1 else None, **plan_kw)
        u = "tokens" if r["kind"] == "llm" else "samples"
        rows.append({"cap_fraction": f, "cap_w": cap, "clock_fraction": r["clock_fraction"],
                     f"per_chip_{u}_per_s": r[f"per_chip_{u}_per_s"], "chip_power_avg_w": r["chip_power_avg_w"],
                     "chips": r["chips"], f"site_{u}_per_s": r[f"throughput_{u}_per_s"],
                     f"{u}_per_joule": r[f"{u}_per_joule"], "bound": r["bound"], "fidelity": r["fidelity"]})
    return rows
