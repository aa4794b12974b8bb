"""`plan`: a site's capacity, or the site a demand needs, for one chip serving one model.

Provisioning is at peak: each accelerator slot is budgeted at its TDP (or its power cap) plus its
host overhead, and the facility at the peak PUE, so the site never exceeds its budget. Energy
figures (`tokens_per_joule`, `samples_per_joule`) use the predicted average chip draw at the
operating point plus the full host overhead, times the average PUE.
Throughput per chip comes from the operating point `accelsim.search.best` picks (predict's search).
"""

from __future__ import annotations

from typing import Any

from accelsim.errors import UserError
from accelsim.modes import PLAIN, Modes
from accelsim.perf import Efficiency
from accelsim.plan import site
from accelsim.power import capped_chip, dvfs_exponent, facility_power_w
from accelsim.predict import Layout, LLMPrediction, Prediction
from accelsim.ranking import parse_placement
from accelsim.search import best, describe, query
from accelsim.spec import load_chip, load_model
from accelsim.spec.chip import Chip, ServingDtype
from accelsim.spec.deployment import rack_defaults, value
from accelsim.spec.model import Model, Ranking


def plan(chip: Chip | str, model: Model | str, *, site_power_w: float | None = None,
         demand_tokens_per_s: float | None = None, demand_samples_per_s: float | None = None,
         pue: float | None = None, pue_range: tuple[float, float] | None = None, input_len: int = 1000,
         output_len: int = 1000, max_ttft: float | None = None, max_tpot: float | None = None,
         max_latency: float | None = None, headroom: float = 0.0, availability: float | None = None,
         power_cap_w: float | None = None, dtype: ServingDtype | None = None,
         kv_dtype: ServingDtype | None = None, eff: Efficiency | None = None,
         layout: Layout | None = None, host_overhead_w_per_chip: float | None = None,
         chips_per_rack: int | None = None, rack_power_limit_w: float | None = None,
         point: Prediction | None = None, modes: Modes = PLAIN, attention_dp: bool = False,
         placement: str | None = None) -> dict[str, Any]:
    """Plan one chip and model in one of two directions; returns the JSON of `accelsim plan`.

    Exactly one of `site_power_w` (W of facility power: what does the site hold and serve?) or a
    demand (`demand_tokens_per_s` for LLMs, output tokens; `demand_samples_per_s` for ranking) is
    given. `headroom` is spare capacity as a fraction of demand (0.2 = 20% more than demand);
    `availability` overrides the replica availability from the failure model (accelsim/data/deployment.toml).
    `pue_range` (lo, hi) provisions at hi and averages energy at the midpoint. `power_cap_w` caps
    each chip (lower clocks, `accelsim.power.capped_chip`). The last three keyword groups override
    the deployment catalog and `point` reuses an already computed operating point for the same inputs.
    `modes` / `attention_dp` (accelsim.modes): serving modes the search applies (speculative
    decoding, prefix hits, image tokens; wide-EP layouts). `placement` (ranking): where the tables
    live, as `accelsim predict --placement` (None or 'auto': the planner's rule, accelsim.ranking).
    Raises UserError for bad or conflicting inputs, or when nothing fits or meets the SLOs.
    """
    chip = load_chip(chip) if isinstance(chip, str) else chip
    model = load_model(model) if isinstance(model, str) else model
    ranking = isinstance(model, Ranking)
    demand = _demand(ranking, site_power_w, demand_tokens_per_s, demand_samples_per_s)
    if not 0 <= headroom <= 10:
        raise UserError(f"--headroom must be a fraction in [0, 10], got {headroom:g}")
    if availability is not None and not 0 < availability <= 1:
        raise UserError(f"--availability must be in (0, 1], got {availability:g}")
    pue_peak, pue_avg = site.pue_for(value("site", "pue").value if pue is None else pue, pue_range)
    if eff is None:
        from accelsim.stacks import load_stack

        eff = load_stack()
    served = capped_chip(chip, power_cap_w, dvfs_exponent()) if power_cap_w is not None else chip
    pt = point or best(served, query(model, eff, dtype, kv_dtype=kv_dtype, input_len=input_len, output_len=output_len,
                                     max_ttft=max_ttft, max_tpot=max_tpot, max_latency=max_latency, modes=modes,
                                     attention_dp=attention_dp, placement=parse_placement(placement)), layout=layout)

    rd = rack_defaults(chip)
    over = rd.host_overhead_w_per_chip if host_overhead_w_per_chip is None else host_overhead_w_per_chip
    per_rack = rd.chips_per_rack if chips_per_rack is None else chips_per_rack
    limit = rd.rack_power_limit_w if rack_power_limit_w is None else rack_power_limit_w
    lay = site.rack_layout(served.tdp_w, over, rd.chips_per_server, per_rack, limit, pt.replica_chips)

    fail, mttr = value("availability", "failures_per_chip_hour"), value("availability", "mttr_h")
    avail = availability if availability is not None else site.replica_availability(
        pt.replica_chips, fail.value, mttr.value)
    if site_power_w is not None:
        if site_power_w < 0:
            raise UserError(f"--site-power-w must be >= 0, got {site_power_w:g}")
        replicas = site.replicas_in_budget(site_power_w / pue_peak, lay)
    else:
        replicas = site.replicas_for_demand(demand or 0.0, pt.rate_per_chip, lay, avail, headroom)

    chips = replicas * pt.replica_chips
    it_w = chips * lay.slot_w
    it_avg_w = chips * (pt.power_w + over)
    throughput = chips * pt.rate_per_chip
    fac_avg = float(facility_power_w(it_avg_w, pue_avg))
    u = pt.unit
    out: dict[str, Any] = {
        "hw": chip.name, "model": model.name, "kind": pt.kind,
        "mode": "site" if site_power_w is not None else "demand",
        "site_power_w": site_power_w,
        f"demand_{u}_per_s": demand,
        "chips": chips, "replicas": replicas, "racks": lay.racks(replicas),
        "replica": {"chips": pt.replica_chips, **pt.layout_kwargs(), "layout": describe(pt.layout),
                    "batch": pt.batch, "dtype": pt.dtype},
        "chips_per_rack": lay.chips_per_rack, "nominal_chips_per_rack": lay.nominal_chips_per_rack,
        "rack_limit_binds": lay.rack_limit_binds, "rack_power_limit_w": limit, "rack_power_w": lay.rack_power_w,
        "chip_provisioned_w": served.tdp_w, "host_overhead_w_per_chip": over, "slot_power_w": lay.slot_w,
        "it_power_w": it_w, "facility_power_w": float(facility_power_w(it_w, pue_peak)),
        "pue": pue_peak, "pue_average": pue_avg,
        "it_power_avg_w": it_avg_w, "facility_power_avg_w": fac_avg,
        f"throughput_{u}_per_s": throughput,
        f"servable_{u}_per_s": throughput * avail / (1 + headroom),
        f"per_chip_{u}_per_s": pt.rate_per_chip,
        f"{u}_per_joule": throughput / fac_avg if fac_avg > 0 else 0.0,
        f"{u}_per_joule_chip": pt.rate_per_chip / pt.power_w,
        "chip_power_avg_w": pt.power_w,
        "availability": avail, "headroom": headroom,
        "power_cap_w": power_cap_w, "clock_fraction": served.flops("bf16") / chip.flops("bf16"),
        **_latencies(pt), "bound": pt.bound,
        "binding": _binding(site_power_w, lay),
        "fidelity": str(pt.fidelity),
        "assumed_hw_values": list(pt.assumed_hw_values),
        "assumptions": _assumptions(rd, over, per_rack, limit, availability, fail, mttr, pue, pue_range,
                                    power_cap_w, host_overhead_w_per_chip, chips_per_rack, rack_power_limit_w),
    }
    return out


def _latencies(pt: Prediction) -> dict[str, float | None]:
    if isinstance(pt, LLMPrediction):
        return {"ttft_s": pt.ttft_s, "tpot_s": pt.tpot_s, "latency_s": None}
    return {"ttft_s": None, "tpot_s": None, "latency_s": pt.latency_s}


def _demand(ranking: bool, site_power_w: float | None, tokens: float | None, samples: float | None) -> float | None:
    given = [k for k, v in (("--site-power-w", site_power_w), ("--demand-tokens-per-s", tokens),
                            ("--demand-samples-per-s", samples)) if v is not None]
    if len(given) != 1:
        raise UserError("give exactly one of --site-power-w, --demand-tokens-per-s, --demand-samples-per-s"
                        + (f" (got {', '.join(given)})" if given else ""))
    if ranking and tokens is not None:
        raise UserError("a ranking model serves samples: use --demand-samples-per-s, not --demand-tokens-per-s")
    if not ranking and samples is not None:
        raise UserError("an LLM serves tokens: use --demand-tokens-per-s, not --demand-samples-per-s")
    demand = tokens if tokens is not None else samples
    if demand is not None and not demand >= 0:
        raise UserError(f"demand must be >= 0, got {demand:g}")
    return demand


def _binding(site_power_w: float | None, lay: site.RackLayout) -> str:
    what = "site power budget" if site_power_w is not None else "demand"
    return f"{what}; rack power limit caps racks at {lay.chips_per_rack} chips" if lay.rack_limit_binds else what


def _assumptions(rd: Any, over: float, per_rack: int, limit: float, availability: float | None, fail: Any,
                 mttr: Any, pue: float | None, pue_range: Any, cap: float | None, *given: Any) -> dict[str, str]:
    """Every planning value that is assumed (not sourced and not given by the caller)."""
    over_given, rack_given, limit_given = given
    out: dict[str, str] = {}
    for key, was_given in (("host_overhead_w_per_chip", over_given), ("chips_per_rack", rack_given),
                           ("rack_power_limit_w", limit_given)):
        v = rd.provenance[key]
        if not was_given and v.assumed:
            out[key] = f"{v.value:g}: {v.assumed}"
    out["chips_per_server"] = (f"{rd.chips_per_server}: " + (rd.provenance["chips_per_server"].assumed or
                               rd.provenance["chips_per_server"].source or ""))
    if availability is None:
        out["mttr_h"] = f"{mttr.value:g}: {mttr.assumed}"
        out["failures_per_chip_hour"] = f"{fail.value:g}: {fail.source} (a training fleet's rate used for serving)"
    exp = value("power_cap", "dvfs_exponent")
    if cap is not None and exp.assumed:  # a cap lowers clocks by this law; listed while it is assumed
        out["dvfs_exponent"] = f"{exp.value:g}: {exp.assumed}"
    out["provisioning"] = "each chip budgeted at TDP (or its cap) plus host overhead; facility at the peak PUE"
    return out
