"""`plan --disagg PREFILL_CHIP,DECODE_CHIP`: the fewest chips whose prefill and decode pools serve a
demand, and what they draw.

The pools are sized independently (they run in tandem, so each must carry the whole request rate):
for each pool the layout whose whole replicas reach the demand (+ headroom) with the fewest chips,
    chips = min over layouts of ceil(demand_req_s / rate_per_replica) x chips_per_replica
with the pool rates of `accelsim.disagg` (prefill: full chunks; decode: the best batch under the
TPOT SLO). The KV link grows with the pools; a demand it cannot carry is reported, not hidden.
Power: each pool at its duty (demand / capacity), host overhead per chip and PUE from
accelsim/data/deployment.toml, as `accelsim plan` charges them.
"""

from __future__ import annotations

import math
from typing import Any

from accelsim.disagg import DisaggPrediction, Pool, Stage, decode_stages, kv_link, prefill_stages
from accelsim.errors import UserError
from accelsim.graph import Precision
from accelsim.modes import PLAIN, Modes
from accelsim.perf import Efficiency, fidelity_on
from accelsim.spec.chip import Chip
from accelsim.spec.deployment import rack_defaults, value
from accelsim.spec.model import LLM


def _fewest(chip: Chip, stages: list[Stage], need_req_s: float, role: str) -> Pool:
    if not stages:
        raise UserError(f"no layout of the model fits {chip.name} as the {role} pool within the SLOs")
    best = min(stages, key=lambda s: (math.ceil(need_req_s / s.rate_req_s) * s.layout.chips, s.layout.chips))
    replicas = max(math.ceil(need_req_s / best.rate_req_s), 1)
    return Pool(chip, replicas * best.layout.chips, best, replicas)


def plan_disagg(prefill_chip: Chip, decode_chip: Chip, model: LLM, *, demand_tokens_per_s: float,
                eff: Efficiency, dtype: str | None = None, kv_dtype: str | None = None, input_len: int = 1000,
                output_len: int = 1000, max_ttft: float | None = None, max_tpot: float | None = None,
                headroom: float = 0.0, pue: float | None = None, modes: Modes = PLAIN,
                attention_dp: bool = False) -> dict[str, Any]:
    """The JSON of `accelsim plan --disagg`: pools, chips, throughput, power. Raises UserError when
    a pool cannot hold the model or meet its SLO, or for a bad demand."""
    from accelsim.search import default_dtype

    if not isinstance(model, LLM):
        raise UserError(f"--disagg serves LLMs; {model.name} is a ranking model")
    if not demand_tokens_per_s > 0:
        raise UserError(f"--disagg plans a demand: give --demand-tokens-per-s or --demand-requests-per-s > 0, "
                        f"got {demand_tokens_per_s}")
    modes.validate(model)
    dtype = dtype or default_dtype(model)
    prec = Precision.for_serving(dtype, kv_dtype)
    need = demand_tokens_per_s * (1 + headroom) / output_len  # requests/s each pool must carry
    p = _fewest(prefill_chip, prefill_stages(prefill_chip, model, prec, eff, input_len, modes, None, max_ttft,
                                             attention_dp), need, "prefill")
    d = _fewest(decode_chip, decode_stages(decode_chip, model, prec, eff, input_len, output_len, modes, None,
                                           max_tpot, attention_dp), need, "decode")
    link = kv_link(p, d, model, prec, modes.prompt_len(input_len), eff)
    r = DisaggPrediction(model, p, d, link, input_len, output_len, modes,
                         str(fidelity_on(eff, [prefill_chip, decode_chip])))
    pue_v = value("site", "pue").value if pue is None else pue
    served = demand_tokens_per_s / output_len  # the pools run at the demand, not at capacity
    it_w = (p.chips * p.power_w(served / p.rate_req_s) + d.chips * d.power_w(served / d.rate_req_s))
    over = p.chips * rack_defaults(prefill_chip).host_overhead_w_per_chip + d.chips * rack_defaults(
        decode_chip).host_overhead_w_per_chip
    out = r.to_dict()
    out.update({
        "mode": "demand", "disaggregated": True, "demand_tokens_per_s": demand_tokens_per_s, "headroom": headroom,
        "demand_requests_per_s": served, "kv_link_carries_demand": link.rate_req_s >= need,
        "it_power_w": it_w, "facility_power_w": (it_w + over) * pue_v, "pue": pue_v,
        "tokens_per_joule_facility": demand_tokens_per_s / ((it_w + over) * pue_v),
        "assumptions": ["pools sized independently: each carries the whole request rate (tandem)",
                        "availability not applied (give --headroom)",
                        "host overhead per chip from accelsim/data/deployment.toml"],
    })
    return out
