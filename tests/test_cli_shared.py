"""The shared flags (accelsim/args.py) and what a new user reads: one name and default per flag in
every command, no flag silently overridden, `compare`, and text output without raw dicts."""

from __future__ import annotations

import json

import pytest

from accelsim.cli import build_parser, main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv", [
    ["predict", "--hw", "h100-sxm", "--hw", "b200", "--model", "llama3-8b", "--chips", "1"],
    ["compare", "--hw", "h100-sxm", "--hw", "b200", "--model", "llama3-8b"],
    ["plan", "--hw", "h100-sxm", "--hw", "b200", "--model", "llama3-8b", "--site-power-w", "1e6"],
    ["simulate", "--hw", "h100-sxm", "--hw", "b200", "--model", "llama3-8b", "--chips", "1", "--duration", "5"],
    ["predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--model", "llama3-70b", "--chips", "1"],
])
def test_a_flag_given_twice_is_an_error(argv, capsys):
    code, _, err = run(capsys, *argv)
    assert code == 2 and "given more than once" in err and len(err.strip().splitlines()) == 1


def _flags(command: str) -> dict[str, object]:
    sub = next(a for a in build_parser()._subparsers._actions if a.dest == "command")
    p = sub.choices[command]
    return {o: a.default for a in p._actions for o in a.option_strings}


def test_the_serving_flags_have_one_default_everywhere():
    shared = ("--dtype", "--kv-dtype", "--tp", "--ep", "--pp", "--input-len", "--output-len", "--max-ttft",
              "--max-tpot", "--max-latency", "--fidelity", "--stack", "--calibration", "--what-if", "--model")
    seen = {c: _flags(c) for c in ("predict", "compare", "plan")}
    for flag in shared:
        defaults = {c: f[flag] for c, f in seen.items()}
        assert len(set(map(repr, defaults.values()))) == 1, (flag, defaults)
    assert seen["predict"]["--dtype"] is None  # the model's own default format, as plan and simulate
    assert _flags("simulate")["--dtype"] is None and "--max-tpot" in _flags("simulate")


@pytest.mark.parametrize("model, dtype", [("llama3-8b", "fp8"), ("dlrm-v2", "bf16")])
def test_dtype_defaults_to_the_models_format(model, dtype, capsys):
    code, out, _ = run(capsys, "predict", "--hw", "h100-sxm", "--model", model, "--chips", "1", "--fidelity",
                       "analytical", "--json")
    assert code == 0 and json.loads(out)["dtype"] == dtype


def test_predict_text_says_what_was_assumed(capsys):
    code, out, _ = run(capsys, "predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "2",
                       "--what-if", "mem_bw=2", "--input-len", "500", "--output-len", "100", "--fidelity", "analytical")
    assert code == 0 and "what-if: mem_bw x2" in out and "500 prompt + 100 output tokens" in out
    code, out, _ = run(capsys, "predict", "--hw", "h100-sxm", "--model", "dlrm-v2", "--chips", "8",
                       "--fidelity", "analytical")
    assert code == 0 and ("replicas" in out or "sharded" in out) and "{" not in out


def test_compare_table_and_json(capsys):
    argv = ["compare", "--hw", "h100-sxm,b200,tpu-v5e", "--model", "llama3.1-405b", "--tp", "8", "--fidelity",
            "analytical"]
    code, out, _ = run(capsys, *argv)
    lines = out.splitlines()
    assert code == 0 and "tokens/s/chip" in lines[2] and lines[3].split()[:2] == ["h100-sxm", "tp=8"]
    assert "tpu-v5e" in lines[-1] and "no point" in lines[-1]  # 405B does not fit 8 x 16 GB
    code, out, _ = run(capsys, *argv, "--json")
    rows = json.loads(out)
    assert [r["hw"] for r in rows] == ["h100-sxm", "b200", "tpu-v5e"] and "does not fit" in rows[2]["error"]
    assert rows[1]["per_chip_tokens_per_s"] > rows[0]["per_chip_tokens_per_s"]


def test_text_output_has_no_raw_dicts_and_plural_racks(capsys):
    code, out, _ = run(capsys, "workloads", "show", "llama4-maverick")
    assert code == 0 and "{" not in out and "num_experts" in out
    code, out, _ = run(capsys, "plan", "--hw", "h100-sxm", "--model", "llama3-8b", "--demand-tokens-per-s", "100",
                       "--fidelity", "analytical")
    assert code == 0 and " in 1 rack " in out and "1 racks" not in out
