"""Disaggregated serving in the simulator: prefill replicas hand each prompt's KV cache to a
decode pool over the fabric (`accelsim.disagg.kv_link` picks scale-up or scale-out and its cost).

A prefill replica (role "prefill") runs the ordinary scheduler; when a prompt's last chunk has run
(its first token is out) the request leaves the replica: `KVHandoff` holds its KV blocks for the
transfer time, then frees them and routes the request to the decode pool. A decode replica (role
"decode") admits an arrived request straight into decoding: it allocates the blocks of the
transferred prompt and starts at the next token. A request preempted or retried on a decode
replica has lost its KV there and is re-prefilled on that replica (recompute, as vLLM does).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from accelsim.serve.replica import LLMReplica, Request


class KVHandoff:
    """Moves a prefilled request to the decode router after `transfer_s(prompt_tokens)` seconds
    on its prefill replica's links, which send one cache at a time (FIFO per source replica): a
    transfer waits for the ones before it, so a link that cannot keep up shows as queueing."""

    def __init__(self, env: Any, decode_router: Any, transfer_s: Callable[[int], float]) -> None:
        self.env, self.router, self.transfer_s = env, decode_router, transfer_s
        self.moved = 0
        self.bytes_s = 0.0  # seconds of link time used, summed over transfers
        self.wait_s = 0.0  # seconds transfers waited for their replica's link, summed
        self._free_at: dict[int, float] = {}  # source replica -> when its link is next free

    def __call__(self, src: LLMReplica, req: Request) -> None:
        self.env.process(self._move(src, req, src.epoch))

    def _move(self, src: LLMReplica, req: Request, epoch: int) -> Generator[Any, Any, None]:
        dt = self.transfer_s(req.prompt)
        now = self.env.now
        start = max(now, self._free_at.get(src.rid, 0.0))
        self._free_at[src.rid] = start + dt
        yield self.env.timeout(start + dt - now)
        self.moved += 1
        self.bytes_s += dt
        self.wait_s += start - now
        if src.epoch == epoch:  # a replica that failed meanwhile has already dropped its blocks
            src.kv.release(req.blocks)
            src.kick()
        req.blocks = 0
        self.router.dispatch(req)


class DecodeReplica(LLMReplica):
    """A replica of the decode pool: arrived requests join the decode batch without a prefill."""

    def _schedule(self) -> list[tuple[Request, int]]:
        kv, s = self.kv, self.step_no
        waiting, running = self.waiting, self.running
        while waiting and len(running) < self.max_seqs:
            req = waiting[0]
            if req.done < req.prompt or req.s0 >= 0:
                break  # a request to recompute: the ordinary scheduler prefills it
            need = kv.blocks_for(req.prompt)
            if need + kv.due(s) > kv.free:
                break
            waiting.popleft()
            kv.free -= need
            req.blocks = need
            running[req] = None
            self._start_decoding(req, s)
        return super()._schedule()

    def _start_decoding(self, req: Request, s0: int) -> None:
        """Decode step s0 writes the first token's KV and yields the second token (cf. `_commit`)."""
        kv = self.kv
        req.s0, req.phase = s0, kv.phase(s0, req.prompt)
        req.finish_step = s0 + req.output_len - req.generated - 1
        kv.add_decoding(req.phase)
        self.n_dec += 1
        self.a_sum += req.prompt - s0 + 1
        self.finishing.setdefault(req.finish_step, []).append(req)
