"""The dashboard's controls as a validated `Controls`, and the predictions its panels share.

No Dash here: the app's callbacks hand the raw control values to `parse_controls` and the figure
functions take the result, so everything below is testable without a browser. Bad values raise
`UserError` with a one-line message that the page shows in place of a plot.

Parallelism: one replica, chosen by `accelsim.search` exactly as `accelsim plan` chooses it. With TP
on "auto" the whole layout is searched (so chips with less memory are compared at the layout they
would really be deployed at); a TP value pins tensor parallelism and searches expert parallelism.
Ranking models take the TP value as the number of chips sharing the tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from functools import cache, lru_cache
from typing import Any

from accelsim.efficiency import DEFAULT_FIDELITY, FIDELITY_CHOICES
from accelsim.errors import UserError, unknown_name
from accelsim.perf import Efficiency
from accelsim.predict import Prediction
from accelsim.spec import LLM, Chip, Model, list_chips, list_models, load_chip, load_model
from accelsim.spec.chip import SERVING_DTYPES, WHAT_IF_KEYS

DTYPES = SERVING_DTYPES
FIDELITIES = FIDELITY_CHOICES  # the --fidelity choices and default of every command
TP_CHOICES = (1, 2, 4, 8, 16, 32, 64)  # the TP dropdown's values besides "auto"
SCALE_RANGE = (0.25, 4.0)  # what-if multipliers the sliders offer (and the only ones accepted)
PUE_RANGE = (1.0, 3.0)
MAX_TOKENS = 1_000_000  # longest input or output a control accepts


@dataclass(frozen=True)
class Controls:
    """One state of the page. Multipliers scale the catalog chip (`Chip.scaled`)."""

    chip: str = "mtia-450"
    model: str = "llama4-maverick"
    dtype: str = "fp8"
    fidelity: str = DEFAULT_FIDELITY
    tp: int | None = None  # chips per replica; None: best per-chip throughput over TP_CHOICES
    batch: int | None = None  # sequences per replica (ranking: samples per chip); None: best
    mem_bw: float = 1.0
    flops: float = 1.0
    tdp: float = 1.0
    capacity: float = 1.0
    input_len: int = 1000
    output_len: int = 1000
    site_power_w: float = 1e9
    pue: float = 1.08
    # serving modes (accelsim.modes); LLMs only
    prefix_hit: float = 0.0  # share of each prompt found in the prefix cache
    mtp_k: int = 0  # speculative decoding with k MTP draft tokens (0: off)
    spec_accept: float = 0.7  # acceptance rate of each draft token
    image_tokens: int = 0  # image tokens per prompt (Llama 4: adds the vision encoder)
    attention_dp: str = "off"  # "on": attention data parallel with wide EP layouts in the search
    decode_chip: str = "off"  # a catalog chip: disaggregated serving, the what-if chip prefills, this one decodes
    disagg_chips: int = 64  # chips split between the two pools (accelsim.disagg.best_split)


DEFAULTS = Controls()
MAX_MTP = 8


def _shown(raw: Any) -> str:
    """A control value cut short for a message (a pasted megabyte must not fill the page)."""
    text = str(raw)
    return text if len(text) <= 40 else text[:40] + "..."


def _count(raw: Any, label: str, hi: int) -> int:
    """A whole number in [0, hi] (empty: 0)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return 0
    value = _number(raw, label, 0, hi)
    if not value.is_integer():
        raise UserError(f"{label} must be a whole number from 0 to {hi:,}, got {_shown(raw)}")
    return int(value)


def _whole(raw: Any, label: str, *, optional: bool = False, hi: int = MAX_TOKENS) -> int | None:
    """A control's value as a whole number in [1, hi]; None (empty) only when optional."""
    if raw is None or (isinstance(raw, str) and not raw.strip()) or raw == "auto":
        if optional:
            return None
        raise UserError(f"{label} is empty: enter a whole number from 1 to {hi:,}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"{label} '{_shown(raw)}' is not a number: enter a whole number from 1 to {hi:,}") from None
    if not value.is_integer() or not 1 <= value <= hi:
        raise UserError(f"{label} must be a whole number from 1 to {hi:,}, got {_shown(raw)}")
    return int(value)


def _number(raw: Any, label: str, lo: float, hi: float) -> float:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise UserError(f"{label} is empty: enter a number from {lo:g} to {hi:g}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"{label} '{_shown(raw)}' is not a number: enter a number from {lo:g} to {hi:g}") from None
    if not (math.isfinite(value) and lo <= value <= hi):
        raise UserError(f"{label} must be from {lo:g} to {hi:g}, got {_shown(raw)}")
    return value


def parse_controls(raw: Mapping[str, Any]) -> Controls:
    """Raw control values (as Dash delivers them: None for an empty box) → `Controls`.

    Keys are `Controls` field names, except `site_power_mw` (megawatts) in place of
    `site_power_w`; missing keys take the defaults. Raises `UserError` on the first bad value.
    """
    unknown = set(raw) - {f.name for f in fields(Controls)} - {"site_power_mw"}
    if unknown:
        raise ValueError(f"unknown controls: {sorted(unknown)}")
    get = lambda key: raw.get(key, getattr(DEFAULTS, key))
    chip, model = get("chip"), get("model")
    if chip not in list_chips():
        raise unknown_name("chip", str(chip), list_chips())
    if model not in list_models():
        raise unknown_name("model", str(model), list_models())
    if get("dtype") not in DTYPES:
        raise UserError(f"format '{get('dtype')}' is not one of {', '.join(DTYPES)}")
    if get("fidelity") not in FIDELITIES:
        raise UserError(f"fidelity '{get('fidelity')}' is not one of {', '.join(FIDELITIES)}")
    scales = {k: _number(get(k), f"{k} multiplier", *SCALE_RANGE) for k in WHAT_IF_KEYS}
    site_w = (_number(raw["site_power_mw"], "site power (MW)", 1e-3, 1e5) * 1e6 if "site_power_mw" in raw
              else _number(get("site_power_w"), "site power (W)", 1e3, 1e11))
    return Controls(
        chip=chip, model=model, dtype=get("dtype"), fidelity=get("fidelity"),
        tp=_whole(get("tp"), "chips per replica (TP)", optional=True, hi=1024),
        batch=_whole(get("batch"), "batch", optional=True, hi=1 << 20),
        input_len=_whole(get("input_len"), "input length (tokens)"),  # type: ignore[arg-type]
        output_len=_whole(get("output_len"), "output length (tokens)"),  # type: ignore[arg-type]
        site_power_w=site_w, pue=_number(get("pue"), "PUE", *PUE_RANGE), **scales,
        prefix_hit=_number(get("prefix_hit"), "prefix-cache hit share", 0.0, 0.99),
        mtp_k=_count(get("mtp_k"), "MTP draft tokens", MAX_MTP),
        spec_accept=_number(get("spec_accept"), "draft acceptance", 0.0, 1.0),
        image_tokens=_count(get("image_tokens"), "image tokens", MAX_TOKENS),
        attention_dp="on" if get("attention_dp") in ("on", True) else "off",
        decode_chip=_decode_chip(get("decode_chip")),
        disagg_chips=_whole(get("disagg_chips"), "chips split between the pools", hi=4096),  # type: ignore[arg-type]
    )


def _decode_chip(raw: Any) -> str:
    if raw in (None, "", "off"):
        return "off"
    if raw not in list_chips():
        raise unknown_name("decode chip", str(raw), list_chips())
    return str(raw)


@lru_cache(maxsize=128)
def disagg_for(c: Controls) -> Any:
    """The best split of `disagg_chips` between the what-if chip (prefill) and `decode_chip`
    (`accelsim.disagg.best_split`), or None when disaggregation is off or the model is not an LLM."""
    from accelsim.disagg import best_split

    model = catalog_model(c.model)
    if c.decode_chip == "off" or not isinstance(model, LLM):
        return None
    if c.disagg_chips < 2:
        raise UserError("chips split between the pools must be at least 2")
    return best_split(what_if_chip(c), catalog_chip(c.decode_chip), c.disagg_chips, model,
                      eff=efficiency(c.fidelity), dtype=c.dtype, input_len=c.input_len, output_len=c.output_len,
                      modes=modes_of(c), attention_dp=c.attention_dp == "on")


def modes_of(c: Controls) -> Any:
    """The `accelsim.modes.Modes` the controls ask for."""
    from accelsim.modes import Modes, SpecDecode

    spec = SpecDecode("mtp", c.mtp_k, c.spec_accept) if c.mtp_k else None
    return Modes(spec=spec, prefix_hit=c.prefix_hit, image_tokens=c.image_tokens)


# The catalog and the efficiency models are read once per process; every result below is a
# pure function of its arguments, so caching changes speed only.
@cache
def catalog_chip(name: str) -> Chip:
    return load_chip(name)


@cache
def catalog_model(name: str) -> Model:
    return load_model(name)


@cache
def efficiency(fidelity: str) -> Efficiency:
    from accelsim.efficiency import efficiency_from_args

    return efficiency_from_args(fidelity)


def what_if_chip(c: Controls) -> Chip:
    """The catalog chip with the control multipliers applied."""
    return catalog_chip(c.chip).scaled(mem_bw=c.mem_bw, flops=c.flops, capacity=c.capacity, tdp=c.tdp)


def is_llm(model: Model) -> bool:
    return isinstance(model, LLM)


def unit(model: Model) -> str:
    return "tokens" if is_llm(model) else "samples"


def per_chip(r: Prediction) -> float:
    """Per-chip throughput: output tokens/s (LLM) or samples/s (ranking)."""
    return r.rate_per_chip


def per_joule(r: Prediction) -> float:
    """Output tokens (or samples) per joule of chip energy."""
    return 1.0 / r.joules_per_unit


def predict_for(c: Controls, chip: str | None = None) -> Prediction:
    """The operating point `accelsim.search.best` picks for the what-if chip (chip=None) or a
    catalog chip, at the controls' TP (or searched, see the module docstring). Raises `UserError`
    when nothing fits."""
    key = replace(c, site_power_w=DEFAULTS.site_power_w, pue=DEFAULTS.pue)  # the site does not change it
    if chip is not None:
        key = replace(key, chip=chip, mem_bw=1.0, flops=1.0, tdp=1.0, capacity=1.0)
    return _best(key)


@lru_cache(maxsize=512)
def _best(c: Controls) -> Prediction:
    from accelsim.predict import RankingLayout
    from accelsim.search import Query, best

    chip, model = what_if_chip(c), catalog_model(c.model)
    q = Query(model, efficiency(c.fidelity), c.dtype, input_len=c.input_len, output_len=c.output_len,  # type: ignore[arg-type]
              batch=c.batch)
    if is_llm(model):
        q = replace(q, modes=modes_of(c), attention_dp=c.attention_dp == "on")
        return best(chip, q, tp=c.tp)
    return best(chip, q, layout=RankingLayout(c.tp) if c.tp else None)
