"""Hostile input, case by case (the table of issue 13): every bad input gets exit 2, one line on
stderr, no traceback, nothing written, nothing executed, and no hang.

Each case runs `accelsim.cli.main` in-process in a directory holding only the hostile files; the
verdict (`hostile_helpers.attempt`) compares a snapshot of that directory before and after.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hostile_helpers import LONG, add_fifo, attempt, hostile_files, measurement_csv

SYNTHETIC = Path(__file__).parents[1] / "accelsim" / "tune" / "data" / "synthetic-h100_mixtral-tp2.csv"
SHIPPED_PROFILES = sorted((Path(__file__).parents[1] / "hwmodels" / "calibrated").glob("*.json*"))

PREDICT = ["predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "8"]
PLAN = ["plan", "--hw", "mtia-450", "--model", "llama3-70b"]
PLAN_SITE = [*PLAN, "--site-power-w", "1e9"]
SIM = ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--arrival-rate", "1"]
SIM_D = [*SIM, "--duration", "10"]
TRAIN = ["simulate-training", "--chips", "1000"]
TRAIN_D = [*TRAIN, "--duration", "1d"]
TUNE = ["tune", "--experts", "8", "--hidden", "4096", "--intermediate", "7168", "--top-k", "2", "--batch-sizes", "1"]
TUNE_R = [*TUNE, "--replay", "{replay}", "--db", "{tmp}/t.sqlite"]
CAL = ["calibrate", "--out", "{tmp}/p.json", "--measurements"]
STUDY = ["study", "mtia_roadmap", "--reduced"]
NL = "mtia\n450"

CASES: dict[str, list[str]] = {
    # hw / workloads: names and files
    "hw:newline-name": ["hw", "show", NL],
    "hw:long-name": ["hw", "show", LONG],
    "hw:long-toml": ["hw", "show", LONG + ".toml"],
    "hw:latin1-toml": ["hw", "show", "{latin1_toml}"],
    "hw:dir-toml": ["hw", "show", "{dir_toml}"],
    "hw:bad-toml": ["hw", "show", "{bad_toml}"],
    "hw:deep-toml": ["hw", "show", "{deep_toml}"],
    "hw:fifo": ["hw", "show", "{fifo}"],
    "simulate:failures-fifo": [*SIM_D, "--failures", "{fifo}"],
    "simulate-training:failures-fifo": [*TRAIN_D, "--failures", "{fifo}"],
    "simulate:trace-fifo": [*SIM_D, "--trace", "{fifo}"],
    "study:fifo": ["study", "{fifo}", "--out", "{tmp}/r"],
    "calibrate:fifo": [*CAL, "{fifo}"],
    "predict:stack-empty": [*PREDICT, "--stack", ""],
    "simulate:stack-empty": [*SIM_D, "--stack", ""],
    "predict:calibration-empty": [*PREDICT, "--calibration", ""],
    "simulate:calibration-empty": [*SIM_D, "--calibration", ""],
    "predict:calibration-fifo": [*PREDICT, "--calibration", "{fifo}"],
    "simulate:trace-big-field": [*SIM_D, "--trace", "{big_field_csv}"],
    "calibrate:big-field": [*CAL, "{m_big_field}"],
    "tune:replay-big-field": [*TUNE, "--replay", "{m_big_field}", "--db", "{tmp}/t.sqlite"],
    "study:deep-toml": ["study", "{deep_toml}", "--out", "{tmp}/r"],
    "simulate:cluster-replicas-huge": ["simulate", "--cluster", "{cluster_replicas}", "--arrival-rate", "1",
                                       "--duration", "10"],
    "simulate:cluster-max-seqs-huge": ["simulate", "--cluster", "{cluster_seqs}", "--arrival-rate", "1",
                                       "--duration", "10"],
    "simulate:replicas-huge": ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "10000000", "--tp",
                               "1", "--arrival-rate", "1", "--duration", "10"],
    "simulate:max-seqs-huge": [*SIM_D, "--max-seqs", "1000000"],
    "simulate:cluster-deep": ["simulate", "--cluster", "{deep_toml}", "--arrival-rate", "1", "--duration", "10"],
    "predict:calibration-deep": [*PREDICT, "--calibration", "{deep_json}"],
    "tune:prior-deep": [*TUNE_R, "--prior", "{deep_json}"],
    "hw:empty-name": ["hw", "show", ""],
    "hw:missing-toml": ["hw", "show", "{tmp}/nosuch.toml"],
    "workloads:newline-name": ["workloads", "show", "llama\n3"],
    "workloads:long-name": ["workloads", "show", LONG],
    "workloads:latin1-toml": ["workloads", "show", "{latin1_toml}"],
    "workloads:dir-toml": ["workloads", "show", "{dir_toml}"],
    "workloads:nan-toml": ["workloads", "show", "{nan_toml}"],
    # predict: numbers
    "predict:pp0": [*PREDICT, "--pp", "0"],
    "predict:pp-neg": [*PREDICT, "--pp", "-1"],
    "predict:tp0": [*PREDICT, "--tp", "0"],
    "predict:ep0": [*PREDICT, "--ep", "0"],
    "predict:chips0": ["predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "0"],
    "predict:chips-huge": ["predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "9" * 40],
    "predict:chips-1e30": ["predict", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "1e30"],
    "predict:batch0": [*PREDICT, "--batch", "0"],
    "predict:batch-huge": [*PREDICT, "--batch", "9" * 30],
    "predict:input-len0": [*PREDICT, "--input-len", "0"],
    "predict:input-len-huge": [*PREDICT, "--input-len", "9" * 30],
    "predict:output-len-neg": [*PREDICT, "--output-len", "-5"],
    "predict:max-ttft-nan": [*PREDICT, "--max-ttft", "nan"],
    "predict:max-ttft-inf": [*PREDICT, "--max-ttft", "inf"],
    "predict:max-ttft-neg": [*PREDICT, "--max-ttft", "-1"],
    "predict:max-tpot-0": [*PREDICT, "--max-tpot", "0"],
    "predict:max-latency-nan": ["predict", "--hw", "mtia-400", "--model", "dlrm-v2", "--chips", "2",
                                "--max-latency", "nan"],
    "predict:what-if-inf": [*PREDICT, "--what-if", "mem_bw=inf"],
    "predict:what-if-nan": [*PREDICT, "--what-if", "flops=nan"],
    "predict:what-if-zero": [*PREDICT, "--what-if", "capacity=0"],
    "predict:what-if-neg": [*PREDICT, "--what-if", "tdp=-1"],
    "predict:what-if-1e308": [*PREDICT, "--what-if", "mem_bw=1e308"],
    "predict:calibration-missing": [*PREDICT, "--calibration", "{tmp}/nosuch.json"],
    "predict:calibration-dir": [*PREDICT, "--calibration", "{dir}"],
    "predict:calibration-latin1": [*PREDICT, "--calibration", "{latin1_json}"],
    "predict:calibration-nan": [*PREDICT, "--calibration", "{nan_json}"],
    "predict:hw-newline": ["predict", "--hw", NL, "--model", "llama3-70b", "--chips", "8"],
    "predict:hw-long": ["predict", "--hw", LONG, "--model", "llama3-70b", "--chips", "8"],
    "predict:model-latin1": ["predict", "--hw", "mtia-450", "--model", "{latin1_toml}", "--chips", "8"],
    "predict:stack-nosuch": [*PREDICT, "--stack", "nosuch"],
    "predict:model-huge-dim": ["predict", "--hw", "mtia-450", "--model", "{model_huge}", "--chips", "8"],
    "predict:model-inf-dim": ["predict", "--hw", "mtia-450", "--model", "{model_inf}", "--chips", "8"],
    # plan
    "plan:pp-without-tp": [*PLAN_SITE, "--pp", "1000"],
    "plan:ep-without-tp": ["plan", "--hw", "mtia-450", "--model", "llama4-maverick", "--site-power-w", "1e9",
                           "--ep", "100"],
    "plan:site-nan": [*PLAN, "--site-power-w", "nan"],
    "plan:site-inf": [*PLAN, "--site-power-w", "inf"],
    "plan:site-neg": [*PLAN, "--site-power-w", "-1"],
    "plan:site-zero": [*PLAN, "--site-power-w", "0"],
    "plan:demand-nan": [*PLAN, "--demand-tokens-per-s", "nan"],
    "plan:demand-inf": [*PLAN, "--demand-tokens-per-s", "inf"],
    "plan:samples-neg": ["plan", "--hw", "mtia-400", "--model", "dlrm-v2", "--demand-samples-per-s", "-3"],
    "plan:pue-nan": [*PLAN_SITE, "--pue", "nan"],
    "plan:pue-below-1": [*PLAN_SITE, "--pue", "0.5"],
    "plan:pue-range-nan": [*PLAN_SITE, "--pue-range", "nan,1.1"],
    "plan:pue-range-reversed": [*PLAN_SITE, "--pue-range", "1.2,1.1"],
    "plan:headroom-nan": [*PLAN_SITE, "--headroom", "nan"],
    "plan:headroom-neg": [*PLAN_SITE, "--headroom", "-1"],
    "plan:availability-0": [*PLAN_SITE, "--availability", "0"],
    "plan:availability-2": [*PLAN_SITE, "--availability", "2"],
    "plan:availability-nan": [*PLAN_SITE, "--availability", "nan"],
    "plan:power-cap-nan": [*PLAN_SITE, "--power-cap-w", "nan"],
    "plan:chips-per-rack-0": [*PLAN_SITE, "--chips-per-rack", "0"],
    "plan:rack-limit-inf": [*PLAN_SITE, "--rack-power-limit-w", "inf"],
    "plan:host-overhead-neg": [*PLAN_SITE, "--host-overhead-w", "-1"],
    "plan:input-len0": [*PLAN_SITE, "--input-len", "0"],
    "plan:what-if-inf": [*PLAN_SITE, "--what-if", "flops=inf"],
    "plan:tp0": [*PLAN_SITE, "--tp", "0"],
    "plan:max-ttft-nan": [*PLAN_SITE, "--max-ttft", "nan"],
    "plan:max-tpot-inf": [*PLAN_SITE, "--max-tpot", "inf"],
    # simulate
    "simulate:duration-1e30": [*SIM, "--duration", "1e30"],
    "simulate:arrival-inf": ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1",
                             "--duration", "10", "--arrival-rate", "inf"],
    "simulate:arrival-1e308": ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1",
                               "--duration", "10", "--arrival-rate", "1e308"],
    "simulate:arrival-nan": ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1",
                             "--duration", "10", "--arrival-rate", "nan"],
    "simulate:arrival-neg": ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1",
                             "--duration", "10", "--arrival-rate", "-1"],
    "simulate:interval-1e-9": [*SIM_D, "--interval", "1e-9"],
    "simulate:seed-neg": [*SIM_D, "--seed", "-1"],
    "simulate:chips0": ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "0",
                        "--arrival-rate", "1", "--duration", "10"],
    "simulate:duration-0": [*SIM, "--duration", "0"],
    "simulate:cv-nan": [*SIM_D, "--arrival", "gamma", "--cv", "nan"],
    "simulate:length-cv-neg": [*SIM_D, "--length-cv", "-1"],
    "simulate:input-len0": [*SIM_D, "--input-len", "0"],
    "simulate:slo-ttft-nan": [*SIM_D, "--slo-ttft", "nan"],
    "simulate:power-cap-nan": [*SIM_D, "--power-cap-w", "nan"],
    "simulate:max-seqs0": [*SIM_D, "--max-seqs", "0"],
    "simulate:block-size0": [*SIM_D, "--block-size", "0"],
    "simulate:kv-blocks-neg": [*SIM_D, "--kv-blocks", "-1"],
    "simulate:trace-missing": [*SIM_D, "--trace", "{tmp}/nosuch.csv"],
    "simulate:trace-dir": [*SIM_D, "--trace", "{dir_csv}"],
    "simulate:trace-latin1": [*SIM_D, "--trace", "{latin1_csv}"],
    "simulate:trace-truncated": [*SIM_D, "--trace", "{trace_trunc}"],
    "simulate:trace-negative": [*SIM_D, "--trace", "{trace_neg}"],
    "simulate:trace-negative-len": [*SIM_D, "--trace", "{trace_neglen}"],
    "simulate:trace-inf": [*SIM_D, "--trace", "{trace_inf}"],
    "simulate:trace-huge-len": [*SIM_D, "--trace", "{trace_huge}"],
    "simulate:trace-empty": [*SIM_D, "--trace", "{empty}"],
    "simulate:out-under-file": [*SIM_D, "--out", "{under_file_dir}"],
    "simulate:out-proc": [*SIM_D, "--out", "/proc/accelsim"],
    "simulate:out-file-is-a-dir": [*SIM_D, "--out", "{blocked}"],
    "study:out-index-is-a-dir": [*STUDY, "--out", "{blocked}"],
    "simulate:out-empty": [*SIM_D, "--out", ""],
    "simulate:out-long": [*SIM_D, "--out", "{long}"],
    "simulate:out-is-file": [*SIM_D, "--out", "{file}"],
    "simulate:cluster-latin1": ["simulate", "--cluster", "{cluster_latin1}", "--arrival-rate", "1", "--duration", "10"],
    "simulate:cluster-dir": ["simulate", "--cluster", "{dir_toml}", "--arrival-rate", "1", "--duration", "10"],
    "simulate:failures-latin1": [*SIM_D, "--failures", "{latin1_toml}"],
    "simulate:failures-dir": [*SIM_D, "--failures", "{dir_toml}"],
    "simulate:ranking-rate-inf": [*SIM_D, "--ranking-model", "dlrm-v2", "--ranking-rate", "inf"],
    "simulate:ranking-samples0": [*SIM_D, "--ranking-model", "dlrm-v2", "--ranking-rate", "1",
                                  "--ranking-samples", "0"],
    "simulate:hw-newline": ["simulate", "--hw", NL, "--model", "llama3-8b", "--chips", "1", "--arrival-rate", "1",
                            "--duration", "10"],
    # simulate-training
    "simulate-training:chips-huge": [*TRAIN_D[:1], "--chips", "1" + "0" * 30, "--duration", "1d"],
    "simulate-training:chips0": ["simulate-training", "--chips", "0", "--duration", "1d"],
    "simulate-training:duration-1e308d": [*TRAIN, "--duration", "1e308d"],
    "simulate-training:duration-1e30": [*TRAIN, "--duration", "1e30"],
    "simulate-training:duration-0": [*TRAIN, "--duration", "0"],
    "simulate-training:interval-nan": [*TRAIN_D, "--checkpoint-interval", "nan"],
    "simulate-training:interval-0": [*TRAIN_D, "--checkpoint-interval", "0"],
    "simulate-training:interval-tiny": [*TRAIN_D, "--checkpoint-interval", "1e-9", "--checkpoint-cost", "0"],
    "simulate-training:ckpt-cost-huge": [*TRAIN_D, "--checkpoint-cost", "1e308"],
    "simulate-training:seed-neg": [*TRAIN_D, "--seed", "-1"],
    "simulate-training:failures-dir": [*TRAIN_D, "--failures", "{dir_toml}"],
    "simulate-training:failures-latin1": [*TRAIN_D, "--failures", "{latin1_toml}"],
    "simulate-training:failures-nan": [*TRAIN_D, "--failures", "{failures_nan}"],
    # measure (must fail before timing anything)
    "measure:threads-100000": ["measure", "--device", "cpu", "--quick", "--out", "{tmp}/m.csv", "--threads", "100000"],
    "measure:threads0": ["measure", "--device", "cpu", "--quick", "--out", "{tmp}/m.csv", "--threads", "0"],
    "measure:reps-1e30": ["measure", "--device", "cpu", "--quick", "--out", "{tmp}/m.csv", "--reps", "1e30"],
    "measure:reps-huge": ["measure", "--device", "cpu", "--quick", "--out", "{tmp}/m.csv", "--reps", "1" + "0" * 30],
    "measure:reps-2": ["measure", "--device", "cpu", "--quick", "--out", "{tmp}/m.csv", "--reps", "2"],
    "measure:out-empty": ["measure", "--device", "cpu", "--quick", "--out", ""],
    "measure:out-dir": ["measure", "--device", "cpu", "--quick", "--out", "{dir}"],
    "measure:out-under-file": ["measure", "--device", "cpu", "--quick", "--out", "{under_file}"],
    "measure:out-proc": ["measure", "--device", "cpu", "--quick", "--out", "/proc/self/accelsim.csv"],
    "measure:out-long": ["measure", "--device", "cpu", "--quick", "--out", "{long}"],
    "measure:out-path-5k": ["measure", "--device", "cpu", "--quick", "--out", "/".join(["a" * 250] * 20) + "/x.csv"],
    "simulate-training:failures-path-5k": [*TRAIN_D, "--failures", "/".join(["a" * 250] * 20) + "/x.toml"],
    "measure:out-newline": ["measure", "--device", "cpu", "--quick", "--out", "{tmp}/a\nb.csv"],
    # calibrate
    "calibrate:latin1": [*CAL, "{latin1_csv}"],
    "calibrate:dir": [*CAL, "{dir_csv}"],
    "calibrate:missing": [*CAL, "{tmp}/nosuch.csv"],
    "calibrate:empty-file": [*CAL, "{empty}"],
    "calibrate:inf-time": [*CAL, "{m_inf}"],
    "calibrate:nan-time": [*CAL, "{m_nan}"],
    "calibrate:inf-flops": [*CAL, "{m_inf_flops}"],
    "calibrate:neg-p20": [*CAL, "{m_neg_p20}"],
    "calibrate:truncated": [*CAL, "{m_trunc}"],
    "calibrate:test-fraction-nan": ["calibrate", "--out", "{tmp}/p.json", "--test-fraction", "nan",
                                    "--measurements", "{m_ok}"],
    "calibrate:test-fraction-1": ["calibrate", "--out", "{tmp}/p.json", "--test-fraction", "1",
                                  "--measurements", "{m_ok}"],
    "calibrate:seed-neg": ["calibrate", "--out", "{tmp}/p.json", "--seed", "-1", "--measurements", "{m_ok}"],
    "calibrate:out-empty": ["calibrate", "--out", "", "--measurements", "{m_ok}"],
    "calibrate:out-dir": ["calibrate", "--out", "{dir}", "--measurements", "{m_ok}"],
    "calibrate:out-proc": ["calibrate", "--out", "/proc/p.json", "--measurements", "{m_ok}"],
    "calibrate:plots-under-file": ["calibrate", "--out", "{tmp}/p.json", "--plots", "{under_file_dir}",
                                   "--measurements", "{m_ok}"],
    "calibrate:hw-nosuch": ["calibrate", "--out", "{tmp}/p.json", "--hw", "nosuch", "--measurements", "{m_ok}"],
    # tune
    "tune:db-empty": [*TUNE, "--replay", "{replay}", "--db", ""],
    "tune:db-foreign": [*TUNE, "--replay", "{replay}", "--db", "{foreign_db}"],
    "tune:db-foreign-results": [*TUNE, "--replay", "{replay}", "--db", "{foreign_results_db}"],
    "tune:db-dir": [*TUNE, "--replay", "{replay}", "--db", "{dir}"],
    "tune:db-text-file": [*TUNE, "--replay", "{replay}", "--db", "{file}"],
    "tune:db-under-file": [*TUNE, "--replay", "{replay}", "--db", "{under_file}"],
    "tune:experts0": ["tune", "--experts", "0", "--hidden", "64", "--intermediate", "64", "--top-k", "1"],
    "tune:hidden-huge": ["tune", "--experts", "8", "--hidden", "9" * 30, "--intermediate", "64", "--top-k", "1"],
    "tune:batch-nan": [*TUNE_R[:-2], "--db", "{tmp}/t.sqlite", "--batch-sizes", "1,nan"],
    "tune:batch-zero": [*TUNE_R, "--batch-sizes", "0"],
    "tune:batch-huge": [*TUNE_R, "--batch-sizes", "9" * 30],
    "tune:budget-nan": [*TUNE_R, "--budget", "nan"],
    "tune:budget-zero": [*TUNE_R, "--budget", "0"],
    "tune:budget-1e30": [*TUNE_R, "--budget", "1e30s"],
    "tune:workers0": [*TUNE_R, "--workers", "0"],
    "tune:workers-huge": [*TUNE_R, "--workers", "100000"],
    "tune:seed-neg": [*TUNE_R, "--seed", "-1"],
    "tune:replay-latin1": [*TUNE, "--replay", "{latin1_csv}", "--db", "{tmp}/t.sqlite"],
    "tune:replay-dir": [*TUNE, "--replay", "{dir_csv}", "--db", "{tmp}/t.sqlite"],
    "tune:replay-truncated": [*TUNE, "--replay", "{replay_trunc}", "--db", "{tmp}/t.sqlite"],
    "tune:replay-duplicate": [*TUNE, "--replay", "{replay_dup}", "--db", "{tmp}/t.sqlite"],
    "tune:replay-negative": [*TUNE, "--replay", "{replay_neg}", "--db", "{tmp}/t.sqlite"],
    "tune:replay-inf": [*TUNE, "--replay", "{replay_inf}", "--db", "{tmp}/t.sqlite"],
    "tune:export-under-file": [*TUNE_R, "--export", "{under_file_dir}"],
    "tune:prior-latin1": [*TUNE_R, "--prior", "{latin1_json}"],
    "tune:prior-dir": [*TUNE_R, "--prior", "{dir}"],
    # study
    "study:out-empty": [*STUDY, "--out", ""],
    "study:out-under-file": [*STUDY, "--out", "{under_file_dir}"],
    "study:out-proc": [*STUDY, "--out", "/proc/report"],
    "study:out-is-file": [*STUDY, "--out", "{file}"],
    "study:out-long": [*STUDY, "--out", "{long}"],
    "study:set-dtype": [*STUDY, "--out", "{tmp}/r", "--set", "dtype_llm=fp16"],
    "study:set-baseline": [*STUDY, "--out", "{tmp}/r", "--set", "baseline=nosuch"],
    "study:set-unknown": [*STUDY, "--out", "{tmp}/r", "--set", "nosuch=1"],
    "study:set-no-key": [*STUDY, "--out", "{tmp}/r", "--set", "=1"],
    "study:set-nan": [*STUDY, "--out", "{tmp}/r", "--set", "input_len=nan"],
    "study:set-chips-bad": [*STUDY, "--out", "{tmp}/r", "--set", 'chips=["nosuch"]'],
    "study:latin1": ["study", "{latin1_toml}", "--out", "{tmp}/r"],
    "study:dir": ["study", "{dir_toml}", "--out", "{tmp}/r"],
    "study:not-a-runner": ["study", "{bad_runner}", "--out", "{tmp}/r"],
    "study:runner-executes": ["study", "{exec_runner}", "--out", "{tmp}/r"],
    "study:newline-name": ["study", "mtia\nroadmap", "--out", "{tmp}/r"],
    "study:ray-unreachable": [*STUDY, "--out", "{tmp}/r", "--ray", "127.0.0.1:1"],
    "study:ray-bad-address": [*STUDY, "--out", "{tmp}/r", "--ray", "a b;c"],
    "tune:check-configs-empty": ["tune", "--check-configs", ""],
    "tune:check-configs-missing": ["tune", "--check-configs", "{tmp}/nosuch"],
    "tune:ray-unreachable": [*TUNE_R, "--ray", "127.0.0.1:1"],
    # dashboard (must refuse before serving)
    "dashboard:host-all": ["dashboard", "--host", "0.0.0.0", "--port", "8050"],
    "dashboard:host-long": ["dashboard", "--host", "h" * 300],
    "dashboard:host-newline": ["dashboard", "--host", "local\nhost"],
    "dashboard:host-empty": ["dashboard", "--host", ""],
    "dashboard:port0-neg": ["dashboard", "--port", "-1"],
    "dashboard:port-big": ["dashboard", "--port", "70000"],
    "dashboard:debug-public": ["dashboard", "--debug", "--host", "0.0.0.0", "--expose"],
    # compare / pareto (shared flags from accelsim/args.py) and serving-mode flags
    "compare:hw-empty": ["compare", "--hw", ",", "--model", "llama3-70b"],
    "compare:hw-newline": ["compare", "--hw", "mtia-450,h100\nsxm", "--model", "llama3-70b"],
    "compare:hw-thousands": ["compare", "--hw", ",".join(["mtia-450"] * 5000), "--model", "llama3-70b"],
    "compare:hw-twice": ["compare", "--hw", "mtia-450", "--hw", "b200", "--model", "llama3-70b"],
    "compare:max-ttft-nan": ["compare", "--hw", "mtia-450,b200", "--model", "llama3-70b", "--max-ttft", "nan"],
    "compare:what-if-inf": ["compare", "--hw", "mtia-450,b200", "--model", "llama3-70b", "--what-if", "mem_bw=inf"],
    "compare:tp0": ["compare", "--hw", "mtia-450,b200", "--model", "llama3-70b", "--tp", "0"],
    "compare:calibration-nan": ["compare", "--hw", "mtia-450", "--model", "llama3-70b", "--calibration", "{nan_json}"],
    "pareto:chips0": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b", "--chips", "0"],
    "pareto:input-len-huge": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b", "--input-len", "9" * 30],
    "pareto:html-under-file": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b", "--html", "{under_file}"],
    "pareto:html-dir": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b", "--html", "{dir}"],
    "pareto:prefix-hit-nan": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b", "--prefix-hit", "nan"],
    "pareto:prefix-hit-2": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b", "--prefix-hit", "2"],
    "pareto:image-tokens-neg": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b", "--image-tokens", "-1"],
    "pareto:spec-decode-bad": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b", "--spec-decode", "k=nan"],
    "pareto:ranking-model": ["pareto", "--hw", "mtia-450", "--model", "dlrm-v2"],
    "predict:prefix-hit-inf": [*PREDICT, "--prefix-hit", "inf"],
    "predict:spec-decode-huge": [*PREDICT, "--spec-decode", "mtp=100000,accept=0.7"],
    # calibrate's siblings
    "validate:calibration-nan": ["validate", "--calibration", "{nan_json}", "--measurements", "{m_ok}"],
    "validate:calibration-dir": ["validate", "--calibration", "{dir}", "--measurements", "{m_ok}"],
    "validate:measurements-inf": ["validate", "--calibration", "{profile}", "--measurements", "{m_inf}"],
    "validate:measurements-latin1": ["validate", "--calibration", "{profile}", "--measurements", "{latin1_csv}"],
    "validate:calibration-latin1": ["validate", "--calibration", "{latin1_json}", "--measurements", "{m_ok}"],
    "calibrate-gpu:sample-huge": ["calibrate-gpu", "--sample", "9" * 30],
    "calibrate-gpu:sample-neg": ["calibrate-gpu", "--sample", "-1"],
    "calibrate-gpu:framework-bad": ["calibrate-gpu", "--framework", "nosuch"],
    "calibrate-gpu:out-dir-under-file": ["calibrate-gpu", "--out-dir", "{under_file_dir}"],
    "calibrate-gpu:report-proc": ["calibrate-gpu", "--report", "/proc/report.json"],
    "import:out-under-file": ["import", "aiconfigurator", "--system", "h100_sxm", "--out", "{under_file}"],
    "import:out-empty": ["import", "aiconfigurator", "--system", "h100_sxm", "--out", ""],
    "import:limit-neg": ["import", "aiconfigurator", "--system", "h100_sxm", "--limit", "-5", "--out", "{tmp}/i.csv"],
    "import:system-newline": ["import", "aiconfigurator", "--system", "h100\nsxm", "--out", "{tmp}/i.csv"],
    "import:system-long": ["import", "aiconfigurator", "--system", LONG, "--out", "{tmp}/i.csv"],
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_files(tmp_path_factory.mktemp("hostile-src"))


def make_files(src: Path) -> dict[str, str]:
    """Every file a case names, under `src`; returns {key: path}."""
    f = hostile_files(src)
    f["m_ok"] = measurement_csv(src, "m_ok.csv")
    if SHIPPED_PROFILES:  # a real profile, so that the measurement file is what a case gets wrong
        f["profile"] = str(shutil.copy(SHIPPED_PROFILES[0], src / SHIPPED_PROFILES[0].name))
    f["m_inf"] = measurement_csv(src, "m_inf.csv", median_s="inf")
    f["m_big_field"] = measurement_csv(src, "m_big.csv", device="x" * 200_000)
    f["m_nan"] = measurement_csv(src, "m_nan.csv", median_s="nan")
    f["m_inf_flops"] = measurement_csv(src, "m_inf_flops.csv", flops="inf")
    f["m_neg_p20"] = measurement_csv(src, "m_neg_p20.csv", p20_s="-1")
    text = Path(f["m_ok"]).read_text()
    (src / "m_trunc.csv").write_text(text[: len(text) - 40])
    f["m_trunc"] = str(src / "m_trunc.csv")
    lines = SYNTHETIC.read_text(encoding="utf-8").splitlines(keepends=True)
    head, first, second = lines[0], lines[1], lines[2]
    replays = {"replay": head + first + second, "replay_trunc": head + first + second[: len(second) // 2],
               "replay_dup": head + first + first.replace("0.0001762169", "0.0009"),
               "replay_neg": head + first.replace("0.0001762169", "-0.0001762169"),
               "replay_inf": head + first.replace("0.0001762169", "inf")}
    for key, text in replays.items():
        (src / f"{key}.csv").write_text(text, encoding="utf-8")
        f[key] = str(src / f"{key}.csv")
    return f


@pytest.fixture
def arena(files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    """A fresh copy of the hostile files for one case (so 'nothing written' is exact)."""
    root = tmp_path / "arena"
    src = Path(files["tmp"])
    shutil.copytree(src, root, symlinks=True)
    mapped = {k: v.replace(str(src), str(root)) for k, v in files.items()}
    mapped["fifo"] = add_fifo(root)
    monkeypatch.setenv("ACCELSIM_TUNE_DB", str(root / "default-tune.sqlite"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(root / "cache"))
    return root, mapped


def fill(argv: list[str], f: dict[str, str]) -> list[str]:
    out = []
    for a in argv:
        for key, val in f.items():
            a = a.replace("{" + key + "}", val)
        out.append(a)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_case(case: str, arena: tuple[Path, dict[str, str]]) -> None:
    root, f = arena
    if "{profile}" in CASES[case] and "profile" not in f:
        pytest.skip("no shipped calibration profile in hwmodels/calibrated")
    v = attempt(fill(CASES[case], f), root)
    assert v.clean, f"{case}: {v.problem}; stderr={v.stderr[-300:]!r}"


# The commands the hostile cases are variations of: each must succeed as given, or a case could
# "pass" on an unrelated error. (measure, import, calibrate-gpu and dashboard would time, download
# or serve: their cases fail in argparse or in checks before any work.)
CONTROLS: dict[str, list[str]] = {
    "hw": ["hw", "show", "mtia-450"],
    "workloads": ["workloads", "show", "llama3-70b"],
    "predict": PREDICT,
    "compare": ["compare", "--hw", "mtia-450,b200", "--model", "llama3-70b"],
    "pareto": ["pareto", "--hw", "mtia-450", "--model", "llama3-70b"],
    "plan": PLAN_SITE,
    "simulate": SIM_D,
    "simulate-training": TRAIN_D,
    "tune": TUNE_R,
    "study": [*STUDY, "--out", "{tmp}/r"],
}


@pytest.mark.slow
@pytest.mark.parametrize("sub", sorted(CONTROLS))
def test_control_succeeds(sub: str, arena: tuple[Path, dict[str, str]], capsys: pytest.CaptureFixture[str]) -> None:
    from accelsim.cli import main

    root, f = arena
    import os

    cwd = os.getcwd()
    os.chdir(root)
    try:
        code = main(fill(CONTROLS[sub], f))
    finally:
        os.chdir(cwd)
    assert code == 0, capsys.readouterr().err


def main() -> None:
    """`python tests/test_hostile_cli.py`: every case once, then a table of cases tried / clean per
    subcommand (the table of issue 13's closing note); each failing case with its problem."""
    import collections
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="hostile-"))
    src = base / "src"
    files = make_files(src)
    import os

    os.environ["ACCELSIM_TUNE_DB"] = str(base / "default.sqlite")
    tried: collections.Counter[str] = collections.Counter()
    clean: collections.Counter[str] = collections.Counter()
    for i, case in enumerate(sorted(CASES)):
        if "{profile}" in CASES[case] and "profile" not in files:
            continue
        root = base / f"a{i}"
        shutil.copytree(src, root, symlinks=True)
        f = {k: v.replace(str(src), str(root)) for k, v in files.items()}
        f["fifo"] = add_fifo(root)
        v = attempt(fill(CASES[case], f), root)
        sub = case.split(":")[0]
        tried[sub] += 1
        clean[sub] += v.clean
        if not v.clean:
            print(f"NOT CLEAN {case}: {v.problem}")
        shutil.rmtree(root, ignore_errors=True)
    print(f"{'subcommand':20s} {'tried':>6s} {'clean':>6s}")
    for sub in sorted(tried):
        print(f"{sub:20s} {tried[sub]:6d} {clean[sub]:6d}")
    print(f"{'total':20s} {sum(tried.values()):6d} {sum(clean.values()):6d}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
