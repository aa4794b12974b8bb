"""Published GPU measurements, imported into accelsim's measurement schema with their provenance.

  aiconfigurator   NVIDIA AIConfigurator's per-GPU op database (`aiconfigurator-core` on PyPI,
                   Apache-2.0): GEMM, fused MoE, attention, collectives and quantize latencies
                   of ten GPUs, read as data through importlib.resources (its code is not used)
  cli              `accelsim import aiconfigurator ...`

Importing this package is free; pandas / pyarrow are imported by the reader when it runs.
"""
