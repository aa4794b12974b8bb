"""Tuner tests run on CPU. The Triton interpreter must be chosen before triton is first imported
(kernels decide at decoration time), so it is set here, as in tests/kernels/conftest.py."""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
