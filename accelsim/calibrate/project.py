"""Carry a calibration to a chip that was not measured, with an uncertainty band.

Rule (per operator class the profile measured; other classes keep the base stack, unbanded):
  mid   the class's curve evaluated on the target chip in the coordinates it was fitted in:
        roofline time on the target (size relative to the chip's speed) and arithmetic intensity
        relative to the target's ridge point (peak / bandwidth); GEMM rows as they are. The fixed
        cost t0 is carried unchanged (dispatch and launch cost belongs to the software, it does not
        shrink with FLOP/s). Efficiency is capped at 1 on any chip but the measured one.
  band  ln-efficiency half-width  w = sqrt(q^2 + s^2):
        q  p90 |ln(predicted / measured)| of the class on the held-out shapes (the profile's
           `band_log`): how wrong the curve is on the chip it was fitted on;
        s  0 on the measured chip; else the spread of ln efficiency across profiles of different
           measured chips on a fixed set of probe operators at the target (`transfer_spread`,
           std over profiles, median over probes) when >= 2 profiles are given; else
           TRANSFER_LOG_SPREAD, an assumption, reported as such.
  low / high = mid x exp(-w) / exp(+w) per class, then the usual cap.
Throughput rises with every efficiency, so the band's predictions bracket the mid prediction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import numpy as np

from accelsim import ops as O
from accelsim.calibrate.profile import CalibratedEfficiency, Profile
from accelsim.perf import Efficiency, HwVec, Roofline
from accelsim.spec.chip import Chip
from accelsim.spec.model import Model

# Assumed ln half-width for moving a curve to an unmeasured chip when only one chip was measured:
# +-28%, the gap between calibrated tools' kernel errors and an uncalibrated roofline's is 1.5-2x
# (reference/simulators.md §0); a quarter of ln 2.5 keeps the band honest without swamping it.
TRANSFER_LOG_SPREAD = 0.25
BAND_KEYS_LLM = ("throughput_tokens_per_s", "per_chip_tokens_per_s", "ttft_s", "tpot_s", "joules_per_token",
                 "power_w")
BAND_KEYS_RANKING = ("throughput_samples_per_s", "per_chip_samples_per_s", "latency_s", "joules_per_sample",
                     "power_w")


class Band(NamedTuple):
    low: CalibratedEfficiency
    mid: CalibratedEfficiency
    high: CalibratedEfficiency
    half_width: dict[str, float]  # ln-efficiency half-width per class
    transfer: str  # "none (measured chip)", "measured across N chips" or "assumed"


def probe_ops() -> dict[str, list[O.Op]]:
    """Operators at LLM/DLRM-like sizes on which profiles are compared (bf16)."""
    b = 2.0
    return {
        "gemm": [O.gemm("probe", m, 4096, 4096, dtype="bf16", a_bytes=b, w_bytes=b, out_bytes=b)
                 for m in (1, 16, 128, 1024, 8192)],
        "grouped_gemm": [O.grouped_gemm("probe", t, 4096, 2048, 16, dtype="bf16", a_bytes=b, w_bytes=b,
                                        out_bytes=b) for t in (64, 1024, 8192)],
        "embedding_bag": [O.embedding_bag("probe", s, 40, 26, 128, dtype="bf16", row_bytes=b, out_bytes=b)
                          for s in (512, 8192)],
        "elementwise": [O.elementwise("probe", e, dtype="bf16", bytes_per_elem=4.0) for e in (1e6, 1e8)],
    }


def transfer_spread(profiles: Sequence[Profile], chip: Chip) -> dict[str, float]:
    """Per class measured by every profile: median over probe ops of the std across profiles of
    ln(efficiency on `chip`). Needs profiles from >= 2 distinct chips, else returns {}."""
    if len({p.chip.name for p in profiles}) < 2:
        return {}
    hw = HwVec.from_chips([chip], shape=(1,))
    out = {}
    for cls, ops in probe_ops().items():
        if not all(cls in p.curves for p in profiles):
            continue
        effs = [[CalibratedEfficiency(p, Roofline()).compute(op, hw) for op in ops] for p in profiles]
        spread = np.std(np.log(np.asarray(effs, dtype=np.float64)), axis=0)
        out[cls] = float(np.median(spread))
    return out


def project(profile: Profile, chip: Chip, *, base: Efficiency | None = None,
            peers: Sequence[Profile] = ()) -> Band:
    """(low, mid, high) efficiencies of `profile` carried to `chip` (see the module rule).

    base: efficiency for classes the profile did not measure (default: the default stack);
    peers: profiles of other measured chips, to measure the transfer spread instead of assuming it.
    """
    if base is None:
        from accelsim.stacks import load_stack

        base = load_stack()
    measured = chip.name == profile.chip.name
    spread = {} if measured else transfer_spread([profile, *peers], chip)
    if measured:
        transfer = "none (measured chip)"
    elif spread:
        transfer = f"measured across {len({p.chip.name for p in (profile, *peers)})} chips"
    else:
        transfer = f"assumed ({TRANSFER_LOG_SPREAD} in ln efficiency)"
    half = {}
    for cls in profile.measured_classes:
        s = 0.0 if measured else spread.get(cls, TRANSFER_LOG_SPREAD)
        half[cls] = float(np.hypot(profile.band_for(cls), s))
    mid = CalibratedEfficiency(profile, base)
    low = CalibratedEfficiency(profile, base, log_shift={c: -w for c, w in half.items()})
    high = CalibratedEfficiency(profile, base, log_shift=dict(half))
    return Band(low, mid, high, half, transfer)


def predict_band(chip: Chip, model: Model, profile: Profile, *, base: Efficiency | None = None,
                 peers: Sequence[Profile] = (), **predict_kwargs: Any) -> dict[str, Any]:
    """`accelsim.predict.predict` with the projected mid efficiency, plus `<key>_low` / `<key>_high`
    (the smaller and larger of the two band predictions) for throughput, latency, power and energy.
    predict_kwargs: chips, tp, ep, pp, dtype, ... as `predict` takes them (not `eff`)."""
    band = project(profile, chip, base=base, peers=peers)
    out = _banded(chip, model, band.mid, band.low, band.high, predict_kwargs)
    out["band_half_width_ln"] = band.half_width
    out["band_transfer"] = band.transfer
    out["band_rule"] = ("per measured class: ln-efficiency +- sqrt(q_heldout_p90^2 + s_transfer^2); "
                        "other classes use the base stack unbanded")
    out["calibrated_on"] = profile.chip.name
    return out


def band_efficiencies(eff: CalibratedEfficiency) -> tuple[dict[str, float], CalibratedEfficiency,
                                                           CalibratedEfficiency]:
    """(ln half-width per measured class, low, high): `eff` with every class it measured moved down /
    up by its band (`eff.band_for`)."""
    half = {c: eff.band_for(c) for c in eff.profile.measured_classes}
    return (half, replace(eff, log_shift={c: -w for c, w in half.items()}), replace(eff, log_shift=dict(half)))


def predict_with_band(chip: Chip, model: Model, eff: CalibratedEfficiency, **predict_kwargs: Any) -> dict[str, Any]:
    """A prediction with a calibrated or projected efficiency (a shipped profile, `accelsim.calibrate.
    shipped`) and its band: `<key>_low` / `<key>_high` from every measured class's efficiency moved
    by its measured ln half-width (`eff.band_for`: median |ln error| on held-out shapes of the
    profile's own chip; of leave-one-chip-out predictions when projected). Keys added:
    band_half_width_ln, band_source, calibrated_on (the chips the profile was fitted on)."""
    half, low, high = band_efficiencies(eff)
    out = _banded(chip, model, eff, low, high, predict_kwargs)
    out["band_half_width_ln"] = half
    projected = str(eff.fidelity) == "projected"
    out["band_source"] = ("measured leave-one-chip-out error per class (median |ln|)" if projected
                          else "held-out-shape error per class (median |ln|) on this chip")
    out["calibrated_on"] = list(eff.profile.own_chips)
    return out


def rate_band(prediction: Any, eff: Efficiency) -> tuple[float, float] | None:
    """(low, high) per-chip rate of a prediction made with a calibrated or projected efficiency, at
    its own operating point (layout, batch, precision and lengths pinned): every class the chip's
    profile measured moved by its band (`band_for`), as `predict_with_band` does. None when the
    efficiency carries no band (analytical, roofline). `eff` may be a sweep's `ShippedEfficiency`:
    the chip's own efficiency is resolved as `for_chip` gives it (what-if variants projected)."""
    from accelsim.calibrate.shipped import ShippedEfficiency, for_chip
    from accelsim.predict import predict

    chip = prediction.chip
    one = for_chip(chip, eff.base, eff.framework) if isinstance(eff, ShippedEfficiency) else eff
    if not isinstance(one, CalibratedEfficiency):
        return None
    half, low, high = band_efficiencies(one)
    if not any(half.values()):
        return None
    kw: dict[str, Any] = dict(chips=prediction.replica_chips, batch=prediction.batch, dtype=prediction.dtype,
                              kv_dtype=prediction.precision.kv, **prediction.layout_kwargs())
    if hasattr(prediction, "input_len"):
        kw.update(input_len=prediction.input_len, output_len=prediction.output_len, modes=prediction.modes)
    else:
        kw.pop("kv_dtype")
    rates = [predict(chip, prediction.model, eff=e, **kw).rate_per_chip for e in (low, high)]
    return min(rates), max(rates)


def _banded(chip: Chip, model: Model, mid_eff: Efficiency, low_eff: Efficiency, high_eff: Efficiency,
            predict_kwargs: dict[str, Any]) -> dict[str, Any]:
    from accelsim.predict import predict

    mid = predict(chip, model, eff=mid_eff, **predict_kwargs)
    pinned = {**predict_kwargs, **mid.layout_kwargs()}  # the band is of mid's operating point, not a new search
    lo = predict(chip, model, eff=low_eff, **pinned)
    hi = predict(chip, model, eff=high_eff, **pinned)
    out = dict(mid)
    for key in BAND_KEYS_LLM if "throughput_tokens_per_s" in mid else BAND_KEYS_RANKING:
        out[f"{key}_low"] = min(lo[key], hi[key])
        out[f"{key}_high"] = max(lo[key], hi[key])
    return out
