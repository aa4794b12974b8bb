"""Chip power from activity: between idle and TDP, never above TDP.

    P = idle + (TDP - idle) * min(1, W_COMPUTE * u_compute + W_MEMORY * u_memory)

u_compute and u_memory are the average fractions of peak FLOP/s and peak bandwidth a step uses.
The weights are assumptions set against published observations (hardware_and_data.md §6.4):
prefill (u_c ~0.7) draws about TDP; small-batch decode (u_m ~0.8, u_c ~0.02) draws 0.3-0.45 TDP
(H200: 137-300 W of 700 W); large-batch decode approaches 0.8-0.95 TDP.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

W_COMPUTE = 1.3
W_MEMORY = 0.45


def activity(u_compute: ArrayLike, u_memory: ArrayLike) -> np.ndarray:
    return np.clip(W_COMPUTE * np.asarray(u_compute) + W_MEMORY * np.asarray(u_memory), 0.0, 1.0)


def chip_power_w(idle_w: ArrayLike, tdp_w: ArrayLike, u_compute: ArrayLike, u_memory: ArrayLike) -> np.ndarray:
    idle, tdp = np.asarray(idle_w), np.asarray(tdp_w)
    return idle + (tdp - idle) * activity(u_compute, u_memory)
