"""An LLM replica: continuous batching with chunked prefill over a paged KV cache, one SimPy event
per step.

Each step (vLLM-like scheduling, priority = admission order):
  1. every decoding sequence gets one token; the KV blocks they need this step are allocated, and
     while fewer blocks are free than needed the most recently admitted running request is
     preempted (recompute: its blocks are freed, it re-queues at the front and later re-prefills
     its prompt plus the tokens it had generated);
  2. prefill chunks fill the rest of the token budget (max_batched_tokens - decoding sequences):
     first the requests already part-way through their prompt, then new ones from the queue while
     fewer than max_seqs run; a chunk runs only if its blocks can be allocated, and once one cannot,
     no newer request is scheduled in the step (no overtaking for memory). If nothing at all can
     run, the newest running request is preempted;
  3. the step lasts `LLMService.step` (the spine's cost of the decode batch plus the prefill chunk).
A prompt's last chunk yields the request's first output token (TTFT); each decode step one more.
Per-step work is O(1) in the batch size: sequences are not visited per step (see `kv.py` for block
accounting and `finishing` below for completions), which is what makes a million requests cheap.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from accelsim.serve.failures import ReplicaLife
from accelsim.serve.kv import BlockManager
from accelsim.serve.service import LLMService

if TYPE_CHECKING:
    from accelsim.serve.recorder import Recorder


class Request:
    """One LLM request in flight. `prompt` is what must be prefilled in this attempt (the input,
    plus generated tokens after a recompute preemption); `s0`, `phase`: see `kv.BlockManager`."""

    __slots__ = ("blocks", "done", "finish_step", "generated", "idx", "input_len", "output_len",
                 "phase", "prefix", "prefix_len", "prompt", "s0")

    def __init__(self, idx: int, input_len: int, output_len: int, prefix: int = -1, prefix_len: int = 0) -> None:
        self.idx, self.input_len, self.output_len = idx, input_len, output_len
        self.prefix, self.prefix_len = prefix, prefix_len  # shared prompt prefix (serve.prefix_cache), -1: none
        self.reset()

    def reset(self) -> None:
        self.prompt, self.done, self.generated, self.blocks, self.s0 = self.input_len, 0, 0, 0, -1
        self.phase = self.finish_step = 0

    @property
    def need_tokens(self) -> int:
        """KV slots the request needs at its longest (the last output token is never cached)."""
        return self.input_len + self.output_len - 1


class LLMReplica(ReplicaLife):
    """One replica of `chips` chips. `router.dispatch(req)` re-routes requests of a failed replica."""

    def __init__(self, env: Any, rid: int, chips: int, service: LLMService, kv_blocks: int, block_size: int,
                 max_seqs: int, max_tokens: int, recorder: Recorder, router: Any, idle_w: float,
                 cap_w: float | None = None, ranking: Any = None) -> None:
        self.env, self.rid, self.chips, self.service = env, rid, chips, service
        self.kv = BlockManager(kv_blocks, block_size)
        self.cap_tokens = kv_blocks * block_size
        self.max_seqs, self.max_tokens = max_seqs, max_tokens
        self.rec, self.router = recorder, router
        self.idle_w, self.cap_w = idle_w, cap_w
        self.ranking = ranking  # a ranking.Colocated when this replica also serves ranking
        self.handoff: Any = None  # serve.disagg.KVHandoff on a prefill-pool replica
        self.prefix_cache: Any = None  # serve.prefix_cache.PrefixCache when prefix caching is on
        self.waiting: deque[Request] = deque()
        self.running: dict[Request, None] = {}  # admission order; the last one is preempted first
        self.prefilling: list[Request] = []
        self.finishing: dict[int, list[Request]] = {}  # decode step -> requests finishing on it
        self.n_dec = 0
        self.a_sum = 0  # sum over decoding requests of (prompt - s0 + 1): contexts sum to a_sum + n_dec * step
        self.step_no = 0
        self._start_life()
        self.proc = env.process(self._run())

    # ---- the router's side ----------------------------------------------------------------------
    @property
    def outstanding(self) -> int:
        """Requests routed here and not finished (the least-outstanding router's key)."""
        return len(self.waiting) + len(self.running)

    def enqueue(self, req: Request) -> None:
        self.waiting.append(req)
        self.router.load[self.rid] += 1
        self.kick()

    # ---- the process --------------------------------------------------------------------------
    def _run(self) -> Generator[Any, Any, None]:
        env, rec, kv = self.env, self.rec, self.kv
        step, fill, timeout = self.service.step, self.service.fill_s, env.timeout
        chips, idle_w, cap_w = self.chips, self.idle_w, self.cap_w
        while True:
            if not self.up:
                yield self.until_up()
                continue
            if self.ranking is not None and self.ranking.queue:
                yield from self.ranking.step(self)
                continue
            s = self.step_no
            if self.prefilling or self.waiting:
                chunks = self._schedule()
            else:  # the common decode-only step: allocate the blocks due, unless that needs preemption
                due = kv.due(s)
                if due <= kv.free:
                    kv.free -= due
                    chunks = []
                else:
                    chunks = self._schedule()
            n = self.n_dec
            if not chunks and not n:
                yield self.until_kicked()
                continue
            p_tok = p_ctx = 0
            for req, c in chunks:
                p_tok += c
                p_ctx += c * (req.done + 0.5 * c)
            dt, e = step(n, self.a_sum + n * s, p_tok, p_ctx)
            if cap_w is not None and e > cap_w * dt:  # throttle to the cap, same excess energy
                dt *= (e / dt - idle_w) / (cap_w - idle_w)
            epoch, t0 = self.epoch, env.now
            yield timeout(dt)
            excess = chips * (e - idle_w * dt)
            if epoch != self.epoch:  # failed mid-step: the work is lost, the energy until then was spent
                rec.step(t0, self.failed_at, excess * (self.failed_at - t0) / dt, 0)
                continue
            t = env.now
            rec.step(t0, t, excess, self._commit(chunks, t, fill(p_tok, p_ctx) if p_tok else 0.0))

    def _schedule(self) -> list[tuple[Request, int]]:
        kv, s = self.kv, self.step_no
        while kv.due(s) > kv.free:
            self._preempt_last(s)
        kv.free -= kv.due(s)
        chunks: list[tuple[Request, int]] = []
        budget = self.max_tokens - self.n_dec
        bs = kv.block_size
        for req in self.prefilling:
            if budget <= 0:
                break
            c = min(req.prompt - req.done, budget)
            need = -(-(req.done + c) // bs) - req.blocks
            if not kv.allocate(need):
                budget = 0  # no newer request may take the blocks this older one waits for
                break
            req.blocks += need
            chunks.append((req, c))
            budget -= c
        waiting, running = self.waiting, self.running
        while waiting and budget > 0 and len(running) < self.max_seqs:
            req = waiting[0]
            cache = self.prefix_cache
            start = req.prefix_len if cache is not None and req.prefix >= 0 and cache.contains(req.prefix) else 0
            c = min(req.prompt - start, budget)
            need = -(-(start + c) // bs)
            if not kv.allocate(need):
                break
            waiting.popleft()
            if cache is not None and req.prefix >= 0:
                cache.lookup(req.prefix, start)  # a hit skips the cached prefix's prefill; a miss caches it
            req.done = start
            req.blocks = need
            running[req] = None
            self.prefilling.append(req)
            chunks.append((req, c))
            budget -= c
        if not chunks and not self.n_dec and running:
            # every running request is a prefill waiting for blocks held by the others: free the newest
            self._preempt_last(s)
            return self._schedule()
        return chunks

    def _preempt_last(self, s: int) -> None:
        req, _ = self.running.popitem()
        kv = self.kv
        if req.s0 >= 0:  # decoding: s - s0 decode steps done, prompt + s - s0 tokens cached
            self.finishing[req.finish_step].remove(req)
            kv.remove_decoding(req.phase)
            self.n_dec -= 1
            self.a_sum -= req.prompt - req.s0 + 1
            kv.release(kv.blocks_for(req.prompt + s - req.s0))
            req.generated += s - req.s0
        else:
            self.prefilling.remove(req)
            kv.release(req.blocks)
        req.prompt, req.done, req.blocks, req.s0 = req.input_len + req.generated, 0, 0, -1
        self.rec.preemptions[req.idx] += 1
        self.rec.preemption_log.append((self.env.now, self.rid, s, req.idx))
        self.waiting.appendleft(req)

    def _commit(self, chunks: list[tuple[Request, int]], t: float, fill: float = 0.0) -> int:
        """Apply step `step_no`'s results at time t; returns the output tokens it generated.
        A prompt completed in the step yields its first token `fill` seconds later (pp > 1)."""
        s = self.step_no
        self.step_no = s + 1
        tokens = self.n_dec
        done = self.finishing.pop(s, None)
        if not done and not chunks:
            return tokens
        rec, kv = self.rec, self.kv
        if done:
            for req in done:
                self.n_dec -= 1
                self.a_sum -= req.prompt - req.s0 + 1
                kv.remove_decoding(req.phase)
                kv.release(kv.blocks_for(req.prompt + s - req.s0 + 1))
                self._finish(req, t)
        if chunks:
            first_s = rec.first_s
            completed = False
            for req, c in chunks:
                req.done += c
                if req.done < req.prompt:
                    continue
                completed = True
                req.generated += 1
                tokens += 1
                if math.isnan(first_s[req.idx]):
                    first_s[req.idx] = t + fill
                if req.generated >= req.output_len:
                    kv.release(req.blocks)
                    self._finish(req, t + fill, t)
                    continue
                if self.handoff is not None:  # a prefill-pool replica: the KV moves to a decode replica
                    del self.running[req]
                    self.router.load[self.rid] -= 1
                    self.handoff(self, req)
                    continue
                s0 = s + 1
                req.s0, req.phase = s0, kv.phase(s0, req.prompt)
                req.finish_step = s0 + req.output_len - req.generated - 1
                kv.add_decoding(req.phase)
                self.n_dec += 1
                self.a_sum += req.prompt - s0 + 1
                lst = self.finishing.get(req.finish_step)
                if lst is None:
                    self.finishing[req.finish_step] = [req]
                else:
                    lst.append(req)
            if completed:
                self.prefilling = [r for r in self.prefilling if r.done < r.prompt]
        return tokens

    def _finish(self, req: Request, t: float, now: float | None = None) -> None:
        del self.running[req]
        self.router.load[self.rid] -= 1
        self.rec.finished(req.idx, t, self.rid, now)

    # ---- failures -----------------------------------------------------------------------------
    def _on_down(self, t: float) -> None:
        """The replica drops out: every request on it is retried from scratch elsewhere."""
        self.router.replica_down(self)
        s = self.step_no
        reqs = [*self.running, *self.waiting]
        for req in reqs:
            self.rec.tokens_lost += req.generated + (s - req.s0 if req.s0 >= 0 else 0)
        self.waiting.clear()
        self.running.clear()
        self.prefilling.clear()
        self.finishing.clear()
        self.n_dec = self.a_sum = 0
        self.kv.reset()
        if self.prefix_cache is not None:
            self.prefix_cache.clear()
        for req in reqs:
            req.reset()
            self.rec.first_s[req.idx] = math.nan
            self.rec.retries[req.idx] += 1
            self.router.dispatch(req)
        if self.ranking is not None:
            self.ranking.on_down()

    def _on_up(self) -> None:
        self.router.replica_up(self)
        if self.ranking is not None:
            self.ranking.on_up()
