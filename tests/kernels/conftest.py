"""Kernel tests run on CPU through the Triton interpreter.

TRITON_INTERPRET must be set before ``kernels.moe.triton_impl`` is imported: ``triton.jit`` decides
between compiling and interpreting when the kernel is decorated. ``setdefault`` lets a GPU machine
run the same tests on compiled kernels with ``TRITON_INTERPRET=0 python -m pytest tests/kernels``.
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
