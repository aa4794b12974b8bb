"""The shipped studies at their reduced size: expected plots and data in the HTML and CSVs, and the
vectorised sweep agreeing with `predict` / `plan` point for point."""

import csv

import pytest

from accelsim.study.moe_tuning import chip_for_device
from accelsim.study.run import run_study

EXPECTED = {
    "mtia_roadmap": (["Throughput per chip by generation", "Performance per watt of TDP",
                      "Tokens per joule at the facility", "What bounds each chip", "Generation comparison"],
                     {"throughput": "tokens_per_s_per_chip", "throughput_ranking": "samples_per_s_per_chip",
                      "chips": "mem_tb_per_s"}),
    "hbm_vs_flops": (["Which knob pays", "HBM bandwidth x FLOP/s"],
                     {"sensitivity": "speedup", "bandwidth_x_flops": "mem_bw_factor"}),
    "power_budget_1gw": (["Racks and accelerators in the site", "Rack power by generation",
                          "What the site serves, per model", "Power capping trade-off", "Fleet roadmap by year"],
                         {"site": "racks", "pue_sensitivity": "pue", "power_caps": "cap_fraction",
                          "fleet_by_year": "year"}),
    "moe_kernel_tuning": (["Fused-MoE kernel roofline (predicted)", "Fused-MoE layer time"],
                          {"moe_roofline": "intensity_flop_per_byte"}),
}


def _csv(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    base = tmp_path_factory.mktemp("studies")
    return {name: run_study(name, base / name, reduced=True) for name in EXPECTED}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reduced_study_has_its_plots_and_data(reports, name):
    res = reports[name]
    page = res.report.read_text().replace("\\u002f", "/")  # plotly's figure JSON escapes '/'
    titles, tables = EXPECTED[name]
    for title in titles:
        assert title in page, title
    assert "Fidelity and assumptions" in page and "assumptions.csv" in page
    for table, column in tables.items():
        rows = _csv(res.report.parent / f"{table}.csv")
        assert rows and column in rows[0], table
    assumed = _csv(res.report.parent / "assumptions.csv")
    assert any(r["value_of"] == "idle_w" for r in assumed)  # every catalog chip assumes its idle power


def test_roadmap_rows_cover_chips_x_models(reports):
    """LLM and ranking rows in their own tables (their columns differ); every chip x model in one."""
    llm = _csv(reports["mtia_roadmap"].report.parent / "throughput.csv")
    ranking = _csv(reports["mtia_roadmap"].report.parent / "throughput_ranking.csv")
    chips = ("mtia-400", "mtia-450", "h100-sxm", "b200")
    assert {(r["chip"], r["model"]) for r in llm} == {(c, "llama4-scout") for c in chips}
    assert {(r["chip"], r["model"]) for r in ranking} == {(c, "dlrm-v2") for c in chips}
    assert "tpot_s" not in ranking[0] and "latency_s" not in llm[0] and "shards" in ranking[0]
    rows = llm + ranking
    h100 = next(r for r in rows if r["chip"] == "h100-sxm" and r["model"] == "llama4-scout")
    assert float(h100["speedup_vs_h100-sxm"]) == 1.0 and float(h100["tpot_s"]) <= 0.05
    # each chip labelled with what it got: its own kernel profile (GPUs) or the projected one (MTIA)
    assert all(r["fidelity"] == ("calibrated" if r["chip"] in ("h100-sxm", "b200") else "projected") and r["bound"]
               for r in rows)


def test_whatif_factor_one_is_the_base_chip(reports):
    rows = _csv(reports["hbm_vs_flops"].report.parent / "sensitivity.csv")
    assert all(float(r["speedup"]) == 1.0 for r in rows if float(r["factor"]) == 1.0)
    decode_bw = {float(r["factor"]): float(r["speedup"]) for r in rows
                 if r["workload"] == "decode" and r["axis"] == "mem_bw"}
    assert decode_bw[2.0] > 1.0 > decode_bw[0.5]  # decode is bandwidth-bound on MTIA 450


def test_site_study_never_exceeds_the_budget(reports):
    for r in _csv(reports["power_budget_1gw"].report.parent / "site.csv"):
        if r["facility_power_w"]:
            assert float(r["facility_power_w"]) <= 1e9


def test_moe_study_shows_shipped_gpu_measurements_and_says_plainly_when_none(reports, tmp_path):
    page = reports["moe_kernel_tuning"].report.read_text()  # hwmodels/measured/ ships a lent-H200 run
    assert "No MoE kernel measurements were found" not in page and "NVIDIA H200" in page
    res = run_study("moe_kernel_tuning", tmp_path / "o", reduced=True, overrides={"measurements": str(tmp_path)})
    assert "No MoE kernel measurements were found" in res.report.read_text()


@pytest.mark.parametrize("tuner_keys", [False, True])  # long names, or the E/H/I/top_k/M the tuner writes
def test_moe_study_with_a_measurement_file(tmp_path, tuner_keys):
    from accelsim import measurements
    from accelsim.ops import fused_moe_counts

    rows = []
    for m, frac in ((16, 0.6), (16, 0.8), (256, 0.5)):  # the share of the H100 roofline each run reached
        f, b = fused_moe_counts(m, 5120, 8192, 16, 1, 2, 2)
        t = max(f / 989e12, b / 3.35e12) / frac
        shape = ({"M": m, "H": 5120, "I": 8192, "E": 16, "top_k": 1} if tuner_keys
                 else {"m": m, "hidden": 5120, "inter": 8192, "experts": 16, "top_k": 1})
        rows.append(measurements.row(op="fused_moe", name="triton_fused_moe", dtype="bf16", flops=f, bytes=b,
                                     shape=shape,
                                     config={"BLOCK_M": 64 if frac < 0.7 else 32}, median_s=t, p20_s=t, p80_s=t,
                                     reps=10, device="NVIDIA H100 80GB HBM3", device_kind="gpu"))
    measurements.write(tmp_path / "m.csv", rows)
    res = run_study("moe_kernel_tuning", tmp_path / "o", reduced=True, overrides={"measurements": str(tmp_path)})
    page = res.report.read_text()
    assert "Tuning results" in page and "Calibration: measured vs roofline" in page
    best = _csv(res.report.parent / "moe_tuning_best.csv")
    assert len(best) == 2 and all(r["chip"] == "h100-sxm" for r in best)
    fractions = {r["m"]: float(r["fraction_of_roofline"]) for r in best}
    assert fractions == {"16": pytest.approx(0.8), "256": pytest.approx(0.5)}  # the faster config won


def test_device_fingerprints():
    assert chip_for_device("NVIDIA H100 80GB HBM3").name == "h100-sxm"
    assert chip_for_device("NVIDIA GB200").name == "gb200"
    assert chip_for_device("cpu:Intel Xeon") is None


def test_roadmap_carries_the_measured_band_of_calibrated_and_projected_rows(reports):
    llm = _csv(reports["mtia_roadmap"].report.parent / "throughput.csv")
    for r in llm:  # every row of the default fidelity has a band around its rate
        assert float(r["tokens_per_s_per_chip_low"]) < float(r["tokens_per_s_per_chip"]) < \
            float(r["tokens_per_s_per_chip_high"]), r["chip"]
    page = reports["mtia_roadmap"].report.read_text()
    assert "error bars: the measured band" in page and '"error_y"' in page
