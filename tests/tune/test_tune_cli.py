"""`accelsim tune` end to end on CPU: replay tuning with store and export, the gate-only path, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelsim.cli import main

DATA = Path(__file__).resolve().parents[2] / "accelsim" / "tune" / "data" / "synthetic-h100_mixtral-tp2.csv"
MIXTRAL = ["--experts", "8", "--hidden", "4096", "--intermediate", "7168", "--top-k", "2"]


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_replay_tuning_json_store_and_export(tmp_path, capsys) -> None:
    args = ["tune", *MIXTRAL, "--batch-sizes", "1,1024", "--strategy", "model", "--replay", str(DATA),
            "--db", str(tmp_path / "t.sqlite"), "--export", str(tmp_path / "configs"), "--json"]
    assert main(args) == 0
    out = _json(capsys)
    assert out["device"] == "synthetic-h100" and "NOT measurements" in out["fidelity"]
    first = {s["batch_size"]: s for s in out["batch_sizes"]}
    assert set(first) == {1, 1024}
    for s in first.values():
        # default budget: 10% of the pruned space, at least 16
        assert s["configs_measured"] == s["configs_evaluated"] == max(16, -(-s["candidates"] // 10))
        assert s["best_time_s"] > 0 and set(s["best_config"]) >= {"BLOCK_SIZE_M", "num_stages"}
        # a replay's space is what it recorded for this batch size (it can answer nothing else)
        assert s["wall_s"] >= 0 and s["space_size"] >= s["candidates"] > 0
    export = Path(out["export"])
    assert export.name == "E=8,N=7168,device_name=synthetic-h100.json"
    assert json.loads(export.read_text())["1024"] == first[1024]["best_config"]
    # a second run finds everything in the store: nothing is re-measured, same answer
    assert main(args) == 0
    again = {s["batch_size"]: s for s in _json(capsys)["batch_sizes"]}
    for m in (1, 1024):
        assert again[m]["configs_measured"] == 0 and again[m]["configs_from_store"] == first[m]["configs_evaluated"]
        assert again[m]["best_config"] == first[m]["best_config"]


def test_text_output(tmp_path, capsys) -> None:
    assert main(["tune", *MIXTRAL, "--batch-sizes", "16", "--strategy", "exhaustive", "--budget", "20",
                 "--replay", str(DATA), "--db", str(tmp_path / "t.sqlite")]) == 0
    text = capsys.readouterr().out
    assert "synthetic-h100" in text and "NOT measurements" in text and "results in" in text


def test_cpu_without_replay_runs_only_the_gate_and_says_so(capsys) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: this path is for CPU-only machines")
    assert main(["tune", *MIXTRAL, "--batch-sizes", "1", "--json"]) == 0
    out = _json(capsys)
    assert out["status"] == "gate_only" and out["tuned"] is False and out["timings"] is None
    assert "Timings need a GPU" in out["message"] and "nothing was tuned" in out["message"]
    assert len(out["gate"]) == 3 and all(g["status"] == "ok" for g in out["gate"])


@pytest.mark.parametrize("extra, match", [
    (["--top-k", "9"], "--top-k must be <= --experts"),
    (["--batch-sizes", "1,two"], "--batch-sizes"),
    (["--budget", "fast"], "--budget"),
    (["--replay", "/no/such/file.csv"], "does not exist"),
    (["--workers", "0"], "--workers"),
    (["--intermediate", "0"], "--intermediate"),
])
def test_bad_input_is_one_line_and_exit_2(extra: list[str], match: str, capsys) -> None:
    args = ["tune", *MIXTRAL, *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_replay_without_the_shape_or_batch_size(capsys) -> None:
    assert main(["tune", "--experts", "16", "--hidden", "4096", "--intermediate", "7168", "--top-k", "2",
                 "--replay", str(DATA)]) == 2
    assert "no rows for E=16" in capsys.readouterr().err
    assert main(["tune", *MIXTRAL, "--batch-sizes", "3", "--replay", str(DATA)]) == 2
    assert "batch sizes [3]" in capsys.readouterr().err


def test_prior_for_another_shape_is_rejected(tmp_path, capsys) -> None:
    prior = tmp_path / "E=16,N=7168,device_name=x.json"
    prior.write_text(json.dumps({"1": dict(BLOCK_SIZE_M=16, BLOCK_SIZE_N=64, BLOCK_SIZE_K=64, GROUP_SIZE_M=1,
                                           num_warps=4, num_stages=3)}))
    assert main(["tune", *MIXTRAL, "--batch-sizes", "1", "--replay", str(DATA), "--prior", str(prior)]) == 2
    assert "is for E=16" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["tune", *MIXTRAL, "--strategy", "annealing"],
                                  ["tune", "--experts", "eight", *MIXTRAL[2:]]])
def test_usage_errors_exit_2_with_one_line(argv: list[str], capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own exit, when the CLI lets it through
        code = exc.code
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_missing_shape_flag_is_one_line_exit_2(capsys) -> None:
    assert main(["tune", *MIXTRAL[:-2]]) == 2  # shape flags are optional for --check-configs only
    err = capsys.readouterr().err
    assert "--top-k is required" in err and err.count("\n") == 1


def test_dry_run_plans_priors_first_and_predicts_every_step(capsys) -> None:
    fixtures = Path(__file__).resolve().parent / "fixtures" / "shipped_configs" / "vllm-0.33.0"
    args = ["tune", *MIXTRAL, "--batch-sizes", "1", "--device", "NVIDIA H100 80GB HBM3", "--dry-run", "--json",
            "--prior", "vllm", "--prior-dir", str(fixtures), "--budget", "12"]
    assert main(args) == 0
    out = _json(capsys)
    assert out["space_size"] == 30720 and 0 < out["pruned_size"] < out["space_size"]
    assert len(out["plan"]) == 12 and all(s["predicted_s"] > 0 for s in out["plan"])
    mapped = out["batch_sizes"][0]["priors_mapped"]
    assert mapped > 0
    # vLLM's M=1 winner (16, 64, 128, G=64, 4, 4) launches like G=2 at M=1 and is measured first
    assert out["plan"][0]["config"] == dict(BLOCK_SIZE_M=16, BLOCK_SIZE_N=64, BLOCK_SIZE_K=128, GROUP_SIZE_M=2,
                                            num_warps=4, num_stages=4)
    assert main(["tune", *MIXTRAL, "--dry-run"]) == 2
    assert "--dry-run needs --device" in capsys.readouterr().err
