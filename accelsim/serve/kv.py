"""A paged KV-cache block manager (vLLM-style): fixed-size blocks, allocated on demand.

A sequence holding T tokens of KV holds ceil(T / block_size) blocks. A prefill chunk allocates the
blocks its tokens need before the step runs. A decoding sequence writes one token per step and
needs a new block exactly when its blocks are full: for a sequence that entered decode at step s0
with P tokens cached, decode step s writes token P + (s - s0) + 1, so it needs a block iff
(P + s - s0) % block_size == 0, i.e. iff s % block_size == (s0 - P) % block_size ("its phase").
Counting decoding sequences per phase makes the blocks due at a step an O(1) lookup instead of a
pass over the batch; this is what keeps the simulator at one cheap event per step.
"""

from __future__ import annotations


class BlockManager:
    """`total` blocks of `block_size` tokens; counts are for one replica."""

    __slots__ = ("_due", "block_size", "free", "total")

    def __init__(self, total: int, block_size: int) -> None:
        if total < 1 or block_size < 1:
            raise ValueError(f"need total >= 1 and block_size >= 1, got {total}, {block_size}")
        self.total = total
        self.block_size = block_size
        self.free = total
        self._due = [0] * block_size  # decoding sequences per phase

    def blocks_for(self, tokens: int) -> int:
        """Blocks that hold `tokens` tokens."""
        return -(-tokens // self.block_size)

    def phase(self, s0: int, cached: int) -> int:
        """Phase of a sequence entering decode at step `s0` with `cached` tokens of KV."""
        return (s0 - cached) % self.block_size

    def add_decoding(self, phase: int) -> None:
        self._due[phase] += 1

    def remove_decoding(self, phase: int) -> None:
        self._due[phase] -= 1

    def due(self, step: int) -> int:
        """Blocks the decoding sequences need for decode step `step`."""
        return self._due[step % self.block_size]

    def allocate(self, n: int) -> bool:
        """Take `n` blocks if that many are free; False (and nothing taken) otherwise."""
        if n > self.free:
            return False
        self.free -= n
        return True

    def release(self, n: int) -> None:
        self.free += n
        if self.free > self.total:
            raise AssertionError(f"released more KV blocks than exist ({self.free} > {self.total})")

    @property
    def used(self) -> int:
        return self.total - self.free

    def reset(self) -> None:
        """Everything freed (the replica failed and restarts empty)."""
        self.free = self.total
        self._due = [0] * self.block_size
