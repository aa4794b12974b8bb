"""Prefix caching: a per-replica LRU cache of prompt prefixes (system prompts, shared documents,
earlier turns of a conversation), so the hit rate comes from the workload's reuse, not a constant.

A request whose prefix id is cached skips prefilling the prefix's tokens (`Request.done` starts
after them); a miss prefills the whole prompt and inserts the prefix, evicting the least recently
used one. The cache holds `capacity` prefixes in KV blocks carved out of the replica's budget
(`blocks_for_capacity`); a request that hits still allocates blocks for its whole context (the
cached blocks are copied, not shared): memory is counted conservatively, compute exactly.

Workload side (`workload.prefix_ids`): each request draws one of `pool` prefixes with Zipf
popularity p_i ~ 1 / i^s (s = 0: uniform). For uniform popularity an LRU of C entries hits
C / N of the time (independent reference model), which the tests check.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class PrefixCache:
    """LRU over prefix ids; `lookup` counts a hit or inserts on a miss."""

    __slots__ = ("_lru", "capacity", "hits", "lookups", "tokens_saved")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"prefix cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._lru: OrderedDict[int, None] = OrderedDict()
        self.hits = self.lookups = self.tokens_saved = 0

    def lookup(self, prefix: int, tokens: int) -> bool:
        """True when `prefix` is cached (then `tokens` of prefill are saved); else cache it."""
        self.lookups += 1
        lru = self._lru
        if prefix in lru:
            lru.move_to_end(prefix)
            self.hits += 1
            self.tokens_saved += tokens
            return True
        lru[prefix] = None
        if len(lru) > self.capacity:
            lru.popitem(last=False)
        return False

    def contains(self, prefix: int) -> bool:
        """Whether `prefix` is cached (no effect on the LRU order or the counts)."""
        return prefix in self._lru

    def clear(self) -> None:
        """A failed replica restarts with an empty cache."""
        self._lru.clear()

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0


def blocks_for_capacity(kv_blocks: int, share: float, prefix_len: int, block_size: int) -> tuple[int, int]:
    """(prefixes the cache holds, blocks it takes) when `share` of a replica's `kv_blocks` goes to it."""
    per = -(-prefix_len // block_size)
    n = int(kv_blocks * share) // per if per else 0
    return n, n * per


def zipf_popularity(pool: int, s: float) -> np.ndarray:
    """p_i ~ 1 / i^s over i = 1..pool (s = 0: uniform)."""
    w = 1.0 / np.arange(1, pool + 1, dtype=np.float64) ** s
    return w / w.sum()


def che_hit_rate(p: np.ndarray, capacity: int) -> float:
    """Che's approximation of an LRU's hit rate under independent requests with popularity `p`:
    the characteristic time T solves sum(1 - exp(-p T)) = C; hit rate = sum(p (1 - exp(-p T)))."""
    if capacity >= len(p):
        return 1.0
    lo, hi = 0.0, 1.0
    while np.sum(1 - np.exp(-p * hi)) < capacity:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sum(1 - np.exp(-p * mid)) < capacity else (lo, mid)
    return float(np.sum(p * (1 - np.exp(-p * lo))))
