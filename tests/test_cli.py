"""The CLI contract other tools depend on, and its one-line errors."""

import json
import subprocess
import sys

import pytest

from accelsim.cli import main
from accelsim.spec import list_chips


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_hw_list_and_show_json(capsys):
    code, out, _ = run(capsys, "hw", "list", "--json")
    names = [c["name"] for c in json.loads(out)]
    assert code == 0 and "mtia-450" in names and names == sorted(list_chips())
    code, out, _ = run(capsys, "hw", "show", "mtia-450", "--json")
    d = json.loads(out)
    assert d["peak_flops"]["fp4"] == 21e15 and d["mem_bw_bytes_per_s"] == 18.4e12
    assert d["mem_capacity_bytes"] == 288e9 and d["tdp_w"] == 1400
    assert "assumed" in d["provenance"]["idle_w"] and "source" in d["provenance"]["tdp_w"]


def test_workloads_json(capsys):
    _, out, _ = run(capsys, "workloads", "show", "llama4-maverick", "--json")
    d = json.loads(out)
    assert d["name"] == "llama4-maverick" and d["total_params"] > 390e9 and d["active_params"] < 18e9
    _, out, _ = run(capsys, "workloads", "list", "--json")
    assert {"name", "total_params", "active_params"} <= set(json.loads(out)[0])


def test_predict_json_contract(capsys):
    code, out, _ = run(capsys, "predict", "--hw", "mtia-450", "--model", "llama4-maverick", "--chips", "64", "--tp",
                       "8", "--ep", "8", "--dtype", "fp8", "--input-len", "1000", "--output-len", "1000", "--json")
    d = json.loads(out)
    assert code == 0
    for key in ("throughput_tokens_per_s", "per_chip_tokens_per_s", "batch", "ttft_s", "tpot_s", "power_w",
                "joules_per_token", "bound", "fidelity"):
        assert key in d
    assert d["replicas"] == 8 and d["per_chip_tokens_per_s"] * 64 == pytest.approx(d["throughput_tokens_per_s"])
    # the default is the shipped profiles: MTIA 450 has no measured kernels, so the pooled profile is
    # projected to it, with the leave-one-chip-out band
    assert d["fidelity"] == "projected" and "idle_w" in d["assumed_hw_values"]
    assert d["throughput_tokens_per_s_low"] < d["throughput_tokens_per_s"] < d["throughput_tokens_per_s_high"]
    # --fidelity analytical: the fitted stack, no band
    code, out, _ = run(capsys, "predict", "--hw", "mtia-450", "--model", "llama4-maverick", "--chips", "64", "--tp",
                       "8", "--ep", "8", "--fidelity", "analytical", "--json")
    p = json.loads(out)
    assert code == 0 and p["fidelity"] == "analytical" and "throughput_tokens_per_s_low" not in p
    assert p["throughput_tokens_per_s"] != pytest.approx(d["throughput_tokens_per_s"], rel=1e-3)  # curves used


def test_predict_ranking_json(capsys):
    code, out, _ = run(capsys, "predict", "--hw", "mtia-400", "--model", "dlrm-v2", "--chips", "2", "--batch", "512",
                       "--json")
    d = json.loads(out)
    assert code == 0 and d["batch"] == 512
    for key in ("throughput_samples_per_s", "latency_s", "power_w", "joules_per_sample", "fidelity"):
        assert key in d


def test_predict_roofline_and_what_if(capsys):
    base = json.loads(run(capsys, "predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "8",
                          "--batch", "16", "--json")[1])
    roof = json.loads(run(capsys, "predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "8",
                          "--batch", "16", "--fidelity", "roofline", "--json")[1])
    fast = json.loads(run(capsys, "predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "8",
                          "--batch", "16", "--what-if", "mem_bw=2", "--json")[1])
    assert roof["fidelity"] == "roofline" and roof["throughput_tokens_per_s"] > base["throughput_tokens_per_s"]
    assert fast["what_if"] == {"mem_bw": 2.0} and fast["tpot_s"] < base["tpot_s"]


def test_predict_text_output(capsys):
    code, out, _ = run(capsys, "predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1",
                       "--fidelity", "analytical")
    assert code == 0 and "fidelity: analytical" in out and "output tokens/s" in out and "band" not in out
    code, out, _ = run(capsys, "predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1")
    assert code == 0 and "fidelity: calibrated" in out and "band" in out  # H100 ships its own profile


def test_one_fidelity_default_in_every_command():
    """predict, plan, compare, pareto, simulate, the study runner and the dashboard: one choice set, one default."""
    import argparse

    from accelsim.cli import build_parser
    from accelsim.dashboard.controls import DEFAULTS, FIDELITIES
    from accelsim.efficiency import DEFAULT_FIDELITY, FIDELITY_CHOICES
    from accelsim.study.common import Params

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    seen = set()
    for name, p in sub.choices.items():
        for a in p._actions:
            if "--fidelity" in a.option_strings:
                assert (tuple(a.choices), a.default) == (FIDELITY_CHOICES, DEFAULT_FIDELITY), name
                seen.add(name)
    assert {"predict", "plan", "compare", "pareto", "simulate"} <= seen
    assert (FIDELITIES, DEFAULTS.fidelity) == (FIDELITY_CHOICES, DEFAULT_FIDELITY)
    # the study's default efficiency: calibrated profiles over a sweep of chips, labelled by its least
    # grounded chip (projected) until resolved per chip
    eff = Params({}, "test").efficiency()
    assert str(eff.resolve("h100-sxm").fidelity) == DEFAULT_FIDELITY == "calibrated"
    assert str(eff.fidelity) == str(eff.resolve("mtia-450").fidelity) == "projected"


def test_labels_follow_each_chip(capsys):
    """A prediction's fidelity is what its chips actually got: calibrated on a measured chip, projected on
    others, and a mix says which is which."""
    code, out, _ = run(capsys, "compare", "--hw", "h100-sxm,mtia-450", "--model", "llama3-8b", "--chips", "1",
                       "--fidelity", "calibrated", "--json")
    assert code == 0 and [d["fidelity"] for d in json.loads(out)] == ["calibrated", "projected"]
    code, out, _ = run(capsys, "compare", "--hw", "h100-sxm,mtia-450", "--model", "llama3-8b", "--chips", "1",
                       "--fidelity", "calibrated")
    assert "calibrated (h100-sxm); projected (mtia-450)" in out
    code, out, _ = run(capsys, "predict", "--model", "llama3-8b", "--disagg", "h100-sxm:1,h200-sxm:1",
                       "--fidelity", "calibrated", "--json")
    d = json.loads(out)
    assert code == 0 and d["fidelity"] == "calibrated" and d["throughput_tokens_per_s"] > 1000  # KV link sane


@pytest.mark.parametrize("argv, message", [
    (["predict", "--hw", "mtia450", "--model", "llama3-8b", "--chips", "1"], "did you mean mtia-450"),
    (["predict", "--hw", "h100-sxm", "--model", "llama-3-8b", "--chips", "1"], "did you mean llama3-8b"),
    (["predict", "--hw", "h100-sxm", "--model", "llama3-70b", "--chips", "2", "--tp", "3"], "does not divide"),
    (["predict", "--hw", "h100-sxm", "--model", "llama3-70b", "--chips", "1"], "does not fit"),
    (["predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--what-if", "hbm=2"], "--what-if"),
    (["predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--what-if", "mem_bw=-1"],
     "must be in [0.001, 1000]"),
    (["predict", "--hw", "missing.toml", "--model", "llama3-8b", "--chips", "1"], "does not exist"),
    (["hw", "show", "nope"], "unknown chip"),
    (["workloads", "show", "nope"], "unknown model"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_argparse_errors_are_one_line_exit_2():
    p = subprocess.run([sys.executable, "-m", "accelsim", "predict", "--hw", "h100-sxm", "--model", "llama3-8b",
                        "--chips", "x"], capture_output=True, text=True)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "must be a whole number" in p.stderr


def test_bad_chip_file_is_one_line(tmp_path, capsys):
    f = tmp_path / "mychip.toml"
    f.write_text('name = "mychip"\n[peak_flops_per_s\n')
    code, _, err = run(capsys, "hw", "show", str(f))
    assert code == 2 and "not valid TOML" in err


def test_analytical_path_imports_neither_torch_nor_triton():
    code = ("import sys; from accelsim.cli import main; "
            "main(['predict','--hw','mtia-450','--model','llama4-maverick','--chips','8','--json']); "
            "bad = [m for m in ('torch','triton','plotly','simpy','dash') if m in sys.modules]; "
            "sys.stderr.write(repr(bad))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr.strip() == "[]"


def test_predict_with_calibration_reports_band_and_chip(capsys, tmp_path):
    from accelsim.spec._toml import catalog_dir

    csv = next((catalog_dir("hwmodels") / "measured").glob("cpu-*.csv"))
    profile = tmp_path / "p.json"
    assert run(capsys, "calibrate", "--measurements", str(csv), "--out", str(profile), "--json")[0] == 0
    code, out, _ = run(capsys, "predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "8",
                       "--calibration", str(profile), "--json")
    d = json.loads(out)
    assert code == 0 and d["fidelity"] == "calibrated" and d["calibrated_on"].startswith("amd")
    assert d["throughput_tokens_per_s_low"] <= d["throughput_tokens_per_s"] <= d["throughput_tokens_per_s_high"]
    assert d["throughput_tokens_per_s_low"] < d["throughput_tokens_per_s_high"]  # an unmeasured chip has a band


def test_fidelity_mix_names_each_fidelity_with_its_chips():
    from accelsim.perf import fidelity_mix

    assert fidelity_mix([("h100-sxm", "calibrated"), ("b200", "calibrated")]) == "calibrated"
    assert fidelity_mix([("h100-sxm", "calibrated"), ("mtia-450", "projected"), ("b200", "calibrated")]) == \
        "calibrated (h100-sxm, b200); projected (mtia-450)"
    assert fidelity_mix([]) == ""
