"""accelsim: accelerator co-design simulator and MoE kernel autotuner.

The analytical path (spec, ops, perf, memory, power, predict) imports only numpy/scipy:
never torch or triton, so a prediction starts in well under a second.
"""

__version__ = "0.1.0"
