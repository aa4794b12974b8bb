"""Autotuner for the fused-MoE Triton kernel: search space, strategies, timing, correctness gate,
SQLite results store, vLLM-format export, replay devices and the `accelsim tune` command.

Importing this package imports nothing heavy: `cli.py` must stay argparse-only at import time, and
`bench.py` must run on a GPU box that has torch/triton/numpy/scipy but no rich/optuna/simpy.

Modules (each usable alone):
  space       the tuning space (vLLM's + shipped winners' values), device limits, pruning, equivalences
  costmodel   analytical tile-level cost model ranking candidates (the `model` strategy's prior)
  ranker      the learned correction of the analytical model, fitted on shipped winners
  realfit     fitting and judging the cost model on shipped winners and AIConfigurator latencies
  labels      shipped vLLM/SGLang config files as labels (tuning problem, device, winner)
  names       vLLM/SGLang config file names: parse, format, vLLM's device-name rule
  plan        `--dry-run`: what a run would measure first, with predicted times
  strategies  exhaustive, random, model, bayes behind one ask/tell interface
  core        Measurement, the Device protocol, the budgeted tuning loop
  store       SQLite results store (WAL, transactions) keyed by device fingerprint
  gate        correctness gate against the PyTorch reference
  bench       the GPU timing harness (do_bench with L2 flush, or CUDA graphs)
  replay      a recorded measurements CSV standing in for a GPU
  synthetic   an independent synthetic ground-truth simulator that writes replay files
  export      vLLM/SGLang config files: write, read, check, nearest shipped file, fused_moe defaults
  jobs        (shape x batch size) jobs over local processes or Ray
"""
