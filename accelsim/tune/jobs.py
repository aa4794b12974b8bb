"""Tuning jobs, one per (shape, batch size), run inline, over local processes, or over Ray.

A worker (process or Ray actor) builds its device once, opens its own connection to the SQLite
store, and for each job prunes the space, builds the strategy and runs `core.tune`; every
measurement is in the store the moment it is taken, so a killed run resumes where it stopped.
GPU jobs get one worker per GPU (local: CUDA_VISIBLE_DEVICES pinned per process; Ray: one actor
with num_gpus=1 per GPU). The store must be on a disk every worker can reach (one machine).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Literal

from accelsim.errors import UserError
from accelsim.tune.core import Budget, Measurement, tune
from accelsim.tune.space import Config, DeviceLimits, Problem, as_config, device_limits, prune, tune_space
from accelsim.tune.strategies import default_budget, make_strategy

DeviceKind = Literal["replay", "synthetic", "gpu"]


@dataclass(frozen=True)
class DeviceSpec:
    """What measures: a replay file, the synthetic simulator, or the local GPU (with its timer)."""

    kind: DeviceKind
    path: str | None = None
    timer: str = "cuda_graph"


@dataclass(frozen=True)
class Job:
    problem: Problem
    strategy: str
    device: DeviceSpec
    budget: Budget = field(default_factory=Budget)
    seed: int = 0
    db: str | None = None
    priors: tuple[tuple[tuple[str, int], ...], ...] = field(default_factory=tuple)

    @staticmethod
    def pack_priors(configs: Sequence[Config]) -> tuple[tuple[tuple[str, int], ...], ...]:
        return tuple(tuple(sorted(c.items())) for c in configs)


@functools.lru_cache(maxsize=4)
def build_device(spec: DeviceSpec) -> Any:
    """One device per spec and process (GPU inputs and replay tables are expensive to rebuild)."""
    if spec.kind == "replay":
        from accelsim.tune.replay import load

        return load(spec.path or "")
    if spec.kind == "synthetic":
        from accelsim.tune.synthetic import SyntheticDevice

        return SyntheticDevice()
    from accelsim.tune.bench import GpuDevice

    return GpuDevice("cuda", timer=spec.timer)  # type: ignore[arg-type]


def limits_for(device: Any) -> DeviceLimits:
    """The device's limits: from the table by name, else (a GPU not in the table) from torch."""
    name = str(device.fingerprint.get("device", ""))
    try:
        return device_limits(name)
    except UserError:
        if getattr(device, "device", None) is None:
            raise
    import torch

    props = torch.cuda.get_device_properties(device.device)
    per_sm = int(getattr(props, "shared_memory_per_multiprocessor", 0))
    per_block = int(getattr(props, "shared_memory_per_block_optin", per_sm))
    if not per_sm:
        raise UserError(f"no shared-memory limits for '{name}' in the table or from torch")
    return DeviceLimits(name, None, props.multi_processor_count, per_sm, per_block,
                        int(getattr(props, "L2_cache_size", 0)), "torch.cuda.get_device_properties")


def chip_for(limits: DeviceLimits) -> Any:
    if limits.chip is None:
        return None
    from accelsim.spec import load_chip

    return load_chip(limits.chip)


def search_space(device: Any, problem: Problem) -> list[Config]:
    """The configs a device can be asked about: a replay's recorded configs for this problem (it
    can answer nothing else), otherwise the whole tuning space (space.tune_space)."""
    recorded = getattr(device, "configs", None)
    if callable(recorded):
        configs = [as_config(t) for t in sorted(recorded(problem))]
        if not configs:
            raise UserError(f"the replay holds no rows for {problem.shape_json} at M={problem.m}")
        return configs
    return tune_space()


def map_priors(priors: Sequence[Config], problem: Problem, candidates: Sequence[Config]) -> list[Config]:
    """Each prior replaced by its equivalent among the candidates (space.canonical; a GROUP_SIZE_M
    that launches like a kept value is mapped to it), in order; priors with no equivalent dropped."""
    from accelsim.tune.space import as_tuple, canonical

    groups = sorted({c["GROUP_SIZE_M"] for c in candidates})
    kept = {as_tuple(c) for c in candidates}
    out: list[Config] = []
    for p in priors:
        mapped = canonical(p, problem, groups) if groups else dict(p)
        if as_tuple(mapped) in kept and mapped not in out:
            out.append(mapped)
    return out


def run_job(job: Job, on_result: Callable[[Config, Measurement, str], None] | None = None) -> dict[str, Any]:
    """Run one job in this process; returns its JSON summary (plus fingerprint and space sizes)."""
    from accelsim.tune.store import ResultStore

    device = build_device(job.device)
    limits = limits_for(device)
    space = search_space(device, job.problem)
    candidates, rejected = prune(space, job.problem, limits)
    priors = map_priors([dict(p) for p in job.priors], job.problem, candidates)
    # The learned correction describes real GPUs; a synthetic device is a made-up one, on which only
    # the analytical model's assumptions hold (it exists to compare search mechanics).
    ranker = None if getattr(device, "synthetic", False) else "default"
    strategy = make_strategy(job.strategy, candidates, problem=job.problem, limits=limits, chip=chip_for(limits),
                             priors=priors, seed=job.seed, ranker=ranker)
    budget = job.budget
    if budget.evaluations is None and budget.seconds is None:
        budget = Budget(evaluations=default_budget(job.strategy, len(candidates)))
    store = ResultStore(job.db, device.fingerprint) if job.db else None
    try:
        result = tune(job.problem, strategy, device, budget=budget, sink=store, on_result=on_result)
    finally:
        if store is not None:
            store.close()
    out = result.summary()
    out.update({"space_size": len(space), "candidates": len(candidates), "pruned": len(rejected),
                "priors_mapped": len(priors),
                "budget": budget.to_dict(), "fingerprint": dict(device.fingerprint), "timed": device.timed})
    return out


def _pin_gpu(queue: Any) -> None:
    """Process-pool initializer: take one GPU id and hide the others before torch starts CUDA."""
    gpu = queue.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)


def _run_job_remote(job: Job) -> dict[str, Any]:
    return run_job(job)


def run_jobs(jobs: Sequence[Job], *, workers: int = 1, ray_address: str | None = None,
             on_result: Callable[[Config, Measurement, str], None] | None = None,
             on_job: Callable[[int, dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run jobs and return their summaries in job order. ``ray_address``: None = no Ray; "local" =
    start (or reuse) a local Ray instance; otherwise the address of a running cluster. Without Ray,
    ``workers`` > 1 runs jobs in that many spawned processes (for GPU jobs, one per visible GPU).
    ``on_result`` (inline runs only) follows each measurement; ``on_job`` each finished job."""
    if ray_address is not None:
        return _run_ray(jobs, ray_address, on_job)
    out: list[dict[str, Any] | None] = [None] * len(jobs)
    gpu = any(j.device.kind == "gpu" for j in jobs)
    if workers <= 1 or len(jobs) <= 1:
        for i, job in enumerate(jobs):
            out[i] = run_job(job, on_result)
            if on_job:
                on_job(i, out[i])  # type: ignore[arg-type]
        return out  # type: ignore[return-value]
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # never fork a process that may hold a CUDA context
    queue = ctx.Queue()
    for w in range(workers):
        queue.put(w if gpu else None)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_pin_gpu,
                             initargs=(queue,)) as pool:
        futures = {pool.submit(_run_job_remote, job): i for i, job in enumerate(jobs)}
        for fut in as_completed(futures):
            i = futures[fut]
            out[i] = fut.result()
            if on_job:
                on_job(i, out[i])  # type: ignore[arg-type]
    return out  # type: ignore[return-value]


class _Worker:
    """Ray actor body: one per GPU (or CPU for replay jobs); keeps its device between jobs."""

    def run(self, index: int, job: Job) -> tuple[int, dict[str, Any]]:
        return index, run_job(job)


def _run_ray(jobs: Sequence[Job], address: str, on_job: Callable[[int, dict[str, Any]], None] | None
             ) -> list[dict[str, Any]]:
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise UserError("--ray needs the optional package ray: pip install 'accelsim[ray]'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        gpu = any(j.device.kind == "gpu" for j in jobs)
        resources = ray.cluster_resources()
        if gpu:
            n = int(resources.get("GPU", 0))
            if n == 0:
                raise UserError("--ray: the Ray cluster has no GPUs for GPU tuning jobs")
            actor = ray.remote(num_gpus=1, num_cpus=1)(_Worker)
        else:
            n = max(1, min(len(jobs), int(resources.get("CPU", 1))))
            actor = ray.remote(num_cpus=1)(_Worker)
        pool = ActorPool([actor.remote() for _ in range(n)])
        out: list[dict[str, Any] | None] = [None] * len(jobs)
        for i, summary in pool.map_unordered(lambda a, ij: a.run.remote(*ij), list(enumerate(jobs))):
            out[i] = summary
            if on_job:
                on_job(i, summary)
        return out  # type: ignore[return-value]
    finally:
        if started:
            ray.shutdown()
