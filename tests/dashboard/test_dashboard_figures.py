"""The dashboard's figure functions, without a browser: plotted values against `predict`, the
roofline against its closed form, what-if monotonicity, and messages for bad control values."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from accelsim import measurements
from accelsim.dashboard import figures, page
from accelsim.dashboard.controls import Controls, efficiency, parse_controls
from accelsim.errors import UserError
from accelsim.graph import Parallel
from accelsim.plan.planner import plan
from accelsim.predict import predict
from accelsim.search import candidates, query
from accelsim.spec import load_chip, load_model
from accelsim.stacks import load_stack

MAVERICK = Controls(chip="mtia-450", model="llama4-maverick", dtype="fp8", input_len=1000, output_len=1000)
# Llama 3 8B at batch 8 on one H100: decode streams the weights, a memory-bound point.
SMALL = Controls(chip="h100-sxm", model="llama3-8b", dtype="fp8", tp=1, batch=8)


def _trace(fig, name, col=1):
    xaxis = "x" if col == 1 else f"x{col}"
    return next(t for t in fig.data if t.name == name and t.xaxis == xaxis)


def _bar_of(fig, label, col=1):
    """The value of the bar in row `label` of column `col` (per chip = 1, per joule = 2)."""
    xaxis = "x" if col == 1 else f"x{col}"
    for t in fig.data:
        if t.type == "bar" and t.xaxis == xaxis and label in t.y:
            return t.x[list(t.y).index(label)], t.customdata[list(t.y).index(label)]
    raise AssertionError(f"no bar {label}")


def _predict_direct(chip, model_name, layout, c):
    """`predict` pinned to a bar's layout ('tp=4 ep=1 pp=1', as the hover text shows it)."""
    kw = {k: int(v) for k, v in (part.split("=") for part in layout.split())}
    return predict(chip, load_model(model_name), chips=kw["tp"] * kw["pp"], **kw, eff=efficiency(c.fidelity),
                   dtype=c.dtype, batch=c.batch, input_len=c.input_len, output_len=c.output_len)


def test_what_if_bar_equals_predict_and_is_the_best_layout():
    c = replace(MAVERICK, mem_bw=2.0)
    fig = figures.generations_figure(c)
    per_chip, custom = _bar_of(fig, figures.WHAT_IF_ROW, col=1)
    per_joule, _ = _bar_of(fig, figures.WHAT_IF_ROW, col=2)
    chip = load_chip("mtia-450").scaled(mem_bw=2.0)
    r = _predict_direct(chip, "llama4-maverick", custom[0], c)
    assert per_chip == r.rate_per_chip
    assert per_joule == pytest.approx(1.0 / r.joules_per_unit, rel=1e-12)
    # "auto": no candidate layout does better per chip than the one plotted
    model = load_model("llama4-maverick")
    eff = efficiency(c.fidelity)
    for lay in candidates(chip, query(model, eff, "fp8")):
        alt = predict(chip, model, chips=lay.chips, tp=lay.tp, ep=lay.ep, pp=lay.pp, eff=eff, dtype="fp8")
        assert alt.rate_per_chip <= per_chip


def test_catalog_bars_equal_predict_at_their_tp():
    fig = figures.generations_figure(MAVERICK)
    for name in ("h100-sxm", "b200", "mtia-400"):
        chip = load_chip(name)
        label = figures._y(chip)
        value, custom = _bar_of(fig, label)
        assert value == _predict_direct(chip, "llama4-maverick", custom[0], MAVERICK).rate_per_chip
    # pinned to TP 1, no chip holds 400 B parameters: no bar, a "does not fit" label
    one = figures.generations_figure(replace(MAVERICK, tp=1))
    misfit = next(t for t in one.data if t.type == "scatter" and t.mode == "text")
    assert figures._y(load_chip("tpu-v5e")) in misfit.y


def test_doubling_hbm_bandwidth_raises_memory_bound_decode_throughput():
    base = predict(load_chip("h100-sxm"), load_model("llama3-8b"), chips=1, eff=efficiency(SMALL.fidelity), dtype="fp8",
                   batch=8)
    assert base["bound"] == "memory"
    before, _ = _bar_of(figures.generations_figure(SMALL), figures.WHAT_IF_ROW)
    after, _ = _bar_of(figures.generations_figure(replace(SMALL, mem_bw=2.0)), figures.WHAT_IF_ROW)
    assert before == pytest.approx(base["per_chip_tokens_per_s"], rel=1e-12)
    # faster, but never more than 2x: only one resource doubled
    assert before < after <= 2 * before
    # more FLOPS does nothing for a memory-bound decode beyond the compute-bound prefill share
    flops, _ = _bar_of(figures.generations_figure(replace(SMALL, flops=2.0)), figures.WHAT_IF_ROW)
    assert flops - before < 0.1 * (after - before)


def test_roofline_points_sit_on_the_roof_at_roofline_fidelity():
    c = replace(SMALL, fidelity="roofline")
    fig = figures.roofline_figure(c)
    chip = load_chip("h100-sxm")
    decode = next(t for t in fig.data if t.name.startswith("decode operators"))
    # qkv_proj by hand: M = 8 tokens, N = (32 + 2 * 8) heads * 128, K = 4096; fp8 weights, bf16 activations
    m, n, k = 8, 48 * 128, 4096
    flops, nbytes = 2 * m * n * k, m * k * 2 + k * n * 1 + m * n * 2
    i = [cd[0] for cd in decode.customdata].index("qkv_proj")
    assert decode.x[i] == pytest.approx(flops / nbytes, rel=1e-12)
    for t in fig.data:
        if t.mode != "markers":
            continue
        for x, y, cd in zip(t.x, t.y, t.customdata):
            if cd[2] in ("compute", "memory"):  # collectives add fabric time and sit below the roof
                peak = chip.flops(cd[1])
                assert y == pytest.approx(min(peak, chip.mem_bw_bytes_per_s * x), rel=1e-9), cd[0]


def test_measured_points_appear_for_the_matching_chip_only(tmp_path):
    rows = [measurements.row(op="gemm", name="matmul", dtype="bf16", shape={"m": 64, "n": 4096, "k": 4096},
                             flops=2 * 64 * 4096 * 4096, bytes=4096 * 4096 * 2 + 2 * 64 * 4096 * 2, median_s=1e-4,
                             p20_s=0.9e-4, p80_s=1.1e-4, reps=10, device="NVIDIA H100 80GB HBM3", device_kind="gpu")]
    measurements.write(tmp_path / "h100.csv", rows)
    (tmp_path / "junk.csv").write_text("not,a,measurement\n1,2,3\n")
    fig = figures.roofline_figure(SMALL, measured_dir=tmp_path)
    meas = next(t for t in fig.data if t.name.startswith("measured"))
    assert meas.x[0] == pytest.approx(rows[0]["flops"] / rows[0]["bytes"])
    assert meas.y[0] == pytest.approx(rows[0]["flops"] / 1e-4)
    assert "1 unreadable measurement files skipped" in fig.layout.title.subtitle.text
    other = figures.roofline_figure(replace(SMALL, chip="b200"), measured_dir=tmp_path)
    assert not any(t.name.startswith("measured") for t in other.data)


def test_site_panel_equals_the_planner():
    c = replace(MAVERICK, site_power_w=50e6, pue=1.2)
    p = figures.site_plan(c)
    r = figures.predict_for(c)
    direct = plan(load_chip("mtia-450"), load_model("llama4-maverick"), site_power_w=50e6, pue=1.2, dtype="fp8",
                  eff=load_stack(), layout=Parallel(tp=r.tp, ep=r.ep, pp=r.pp))
    assert p["chips"] == direct["chips"] and p["racks"] == direct["racks"]
    assert p["facility_power_w"] <= 50e6
    fig = figures.site_figure(c, p)
    numbers = [t.value for t in fig.data if t.type == "indicator"]
    assert numbers[:3] == [direct["racks"], direct["chips"], pytest.approx(direct["facility_power_w"] / 1e6)]


@pytest.mark.parametrize(("raw", "expected"), [
    ({"input_len": None}, "input length (tokens) is empty"),
    ({"output_len": 2.5}, "output length (tokens) must be a whole number"),
    ({"model": "llama3.1-405b", "tp": 1}, "does not fit on 1 x mtia-450"),
    ({"batch": 100000}, "batch 100000 does not fit"),
    ({"chip": "h900"}, "unknown chip 'h900'"),
    ({"site_power_mw": ""}, "site power (MW) is empty"),
    ({"pue": 0.5}, "PUE must be from 1 to 3"),
])
def test_bad_values_give_a_message_not_an_exception(raw, expected):
    p = page.render({**raw})
    assert any(expected in m for m in p.messages), p.messages
    assert not any("--" in m for m in p.messages)  # page words, not CLI flags


def test_unexpected_error_is_logged_and_shown_generically(monkeypatch, caplog):
    def boom(*a, **k):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(figures, "roofline_figure", boom)
    with caplog.at_level(logging.ERROR, logger="accelsim.dashboard"):
        p = page.render({})
    assert page.INTERNAL_ERROR.format(what="roofline") in p.messages
    assert not any("secret" in m for m in p.messages)
    assert "secret internals" in caplog.text
    assert p.generations.data  # the other panels still draw


def test_parse_controls_units_and_auto():
    c = parse_controls({"site_power_mw": 250, "tp": "auto", "batch": None, "mem_bw": 2})
    assert (c.site_power_w, c.tp, c.batch, c.mem_bw) == (250e6, None, None, 2.0)
    with pytest.raises(UserError, match=r"mem_bw multiplier must be from 0\.25 to 4"):
        parse_controls({"mem_bw": 8})


def test_serving_mode_controls_reach_the_search() -> None:
    from accelsim.dashboard.controls import modes_of, predict_for
    from accelsim.modes import spec_decode_speedup

    plain = predict_for(parse_controls({"model": "llama3-70b", "chip": "h200-sxm", "batch": 1}))
    c = parse_controls({"model": "llama3-70b", "chip": "h200-sxm", "batch": 1, "mtp_k": 2, "spec_accept": 0.8})
    assert modes_of(c).spec is not None and modes_of(parse_controls({})).plain
    spec = predict_for(c)
    # batch 1 is memory bound: the gain is below the free-draft bound (k + 1 tokens for one step)
    assert 1.0 < spec.rate_per_chip / plain.rate_per_chip < spec_decode_speedup(0.8, 2, 0.0)
    wide = predict_for(parse_controls({"attention_dp": "on"}))
    assert wide.rate_per_chip >= predict_for(parse_controls({})).rate_per_chip
    with pytest.raises(UserError, match="MTP"):
        parse_controls({"mtp_k": 1.5})


def test_disaggregated_cards_are_the_split_search() -> None:
    from accelsim.dashboard.page import render
    from accelsim.disagg import best_split
    from accelsim.spec import load_chip, load_model
    from accelsim.stacks import load_stack

    page = render({"chip": "mtia-400", "decode_chip": "mtia-450", "disagg_chips": 32, "fidelity": "analytical"})
    cards = dict(page.summary)
    d = best_split(load_chip("mtia-400"), load_chip("mtia-450"), 32, load_model("llama4-maverick"), eff=load_stack(),
                   dtype="fp8")
    assert cards["disaggregated"] == f"{d.prefill.chips} x mtia-400 prefill + {d.decode.chips} x mtia-450 decode"
    assert cards["disaggregated per chip"].startswith(f"{d.rate_per_chip:,.0f} tokens/s")
    assert "disaggregated" not in dict(render({}).summary)
    assert any("decode chip" in m for m in render({"decode_chip": "nope"}).messages)


def test_calibrated_fidelity_labels_each_chip() -> None:
    """The dashboard offers the shared --fidelity choices; under calibrated a measured GPU says calibrated,
    a chip without measurements projected (its own label, not the sweep's least grounded)."""
    from accelsim.dashboard.page import render

    assert "calibrated" in str(render({"chip": "h100-sxm", "model": "llama3-8b", "fidelity": "calibrated"}))
    mtia = str(render({"chip": "mtia-450", "model": "llama3-8b", "fidelity": "calibrated"}))
    assert "projected" in mtia and "fidelity: calibrated" not in mtia


def test_summary_shows_the_band_of_calibrated_predictions_only():
    from accelsim.calibrate.project import rate_band

    cards = dict(page.summary_cards(MAVERICK))
    r = _predict_direct(load_chip("mtia-450"), "llama4-maverick", dict(page.summary_cards(MAVERICK))["replica"]
                        .split("(")[1].split(")")[0], MAVERICK)
    lo, hi = rate_band(r, efficiency(MAVERICK.fidelity))
    assert cards["fidelity"] == "projected" and lo < r.rate_per_chip < hi
    assert cards["band per chip"] == f"{lo:,.0f} – {hi:,.0f} tokens/s"
    assert "band per chip" not in dict(page.summary_cards(replace(MAVERICK, fidelity="analytical")))
