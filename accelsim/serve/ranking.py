"""Ranking (DLRM-style) serving: requests (queries) of `samples` user-item pairs, batched under a
latency SLO.

A ranking worker keeps a FIFO queue. Whenever its replica is free it takes as many queued requests
as fit in `RankingService.max_samples` (the largest batch whose service time stays within a share
of the SLO; at least one request) and serves them as one batch: one SimPy event per batch, the
batch time from the spine (`predict.ranking_metrics`: the placement of the tables over the
replica's chips, hot rows in SRAM, `graph.ranking_ops` + `perf.cost`). A worker runs either on a dedicated
ranking replica (`RankingReplica`) or inside an LLM replica (co-located): there a queued ranking
batch runs before the next LLM step, i.e. ranking has priority, being the latency-critical stream.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from accelsim.serve.failures import ReplicaLife
from accelsim.serve.service import RankingService

if TYPE_CHECKING:
    from accelsim.serve.recorder import Recorder


class RankingWorker:
    """The ranking queue of one replica (`owner`: a ReplicaLife with idle_w)."""

    def __init__(self, owner: Any, service: RankingService, samples: int, recorder: Recorder, router: Any) -> None:
        self.owner, self.service, self.samples = owner, service, samples
        self.per_batch = service.per_batch
        self.rec, self.router = recorder, router
        self.queue: deque[int] = deque()
        self.inflight: list[int] = []

    @property
    def outstanding(self) -> int:
        return len(self.queue) + len(self.inflight)

    @property
    def up(self) -> bool:
        return self.owner.up

    def enqueue(self, idx: int) -> None:
        self.queue.append(idx)
        self.owner.kick()

    def step(self, owner: Any) -> Generator[Any, Any, None]:
        """Serve one batch from the queue (a SimPy sub-process of the owner's process)."""
        env, q = owner.env, self.queue
        k = min(len(q), self.per_batch)
        self.inflight = [q.popleft() for _ in range(k)]
        dt, e = self.service.batch(k)
        epoch, t0 = owner.epoch, env.now
        yield env.timeout(dt)
        excess = owner.chips * (e - owner.idle_w * dt)
        if epoch != owner.epoch:  # failed mid-batch: on_down() re-routed it; the energy until then was spent
            self.rec.step(t0, owner.failed_at, excess * (owner.failed_at - t0) / dt, 0)
            return
        self.rec.step(t0, env.now, excess, 0)
        for idx in self.inflight:
            self.rec.ranking_done(idx, env.now)
        self.inflight = []

    def on_down(self) -> None:
        """The owner failed: leave the router's list, send everything queued or in flight elsewhere."""
        self.router.replica_down(self)
        reqs = [*self.inflight, *self.queue]
        self.inflight, self.queue = [], deque()
        for idx in reqs:
            self.router.dispatch(idx)

    def on_up(self) -> None:
        self.router.replica_up(self)


class RankingReplica(ReplicaLife):
    """A dedicated ranking replica of `chips` chips."""

    def __init__(self, env: Any, rid: int, chips: int, service: RankingService, samples: int,
                 recorder: Recorder, router: Any, idle_w: float) -> None:
        self.env, self.rid, self.chips, self.idle_w = env, rid, chips, idle_w
        self.rec = recorder
        self._start_life()
        self.worker = RankingWorker(self, service, samples, recorder, router)
        self.proc = env.process(self._run())

    def _run(self) -> Generator[Any, Any, None]:
        while True:
            if not self.up:
                yield self.until_up()
            elif self.worker.queue:
                yield from self.worker.step(self)
            else:
                yield self.until_kicked()

    def _on_down(self, t: float) -> None:
        self.worker.on_down()

    def _on_up(self) -> None:
        self.worker.on_up()


class RankingRouter:
    """Least-outstanding routing over the ranking workers that are up; a queue while none is."""

    def __init__(self, workers: list[RankingWorker]) -> None:
        self.workers = workers
        self.up = list(workers)
        self.pending: deque[int] = deque()

    def dispatch(self, idx: int) -> None:
        if not self.up:
            self.pending.append(idx)
            return
        min(self.up, key=_outstanding).enqueue(idx)

    def replica_down(self, worker: RankingWorker) -> None:
        self.up = [w for w in self.workers if w.up]

    def replica_up(self, worker: RankingWorker) -> None:
        self.up = [w for w in self.workers if w.up]
        pending, self.pending = self.pending, deque()
        for idx in pending:
            self.dispatch(idx)


def _outstanding(w: RankingWorker) -> int:
    return w.outstanding


def ranking_arrivals(env: Any, arrival_s: Any, router: RankingRouter) -> Generator[Any, Any, None]:
    """SimPy process: release ranking request i at arrival_s[i]."""
    for i, t in enumerate(arrival_s.tolist()):
        yield env.timeout(t - env.now)
        router.dispatch(i)
