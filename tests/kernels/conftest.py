"""Kernel tests: on a CPU-only machine the Triton kernels run through the interpreter.

TRITON_INTERPRET must be set before ``kernels.moe.triton_impl`` is imported: ``triton.jit`` decides
between compiling and interpreting when the kernel is decorated. With a CUDA device the same tests
run the compiled kernels on the GPU (importing torch does not import triton); ``setdefault`` lets
either choice be forced from the environment (``TRITON_INTERPRET=1`` or ``=0``).
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
