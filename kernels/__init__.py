"""Kernels: Triton implementations with PyTorch references (torch/triton are an optional extra)."""
