"""Where a study's sweep chunks run: in this process (default) or on a Ray cluster (`--ray`).

A runner splits its sweep into chunks (each a vectorised evaluation, e.g. one parallel layout over
all chips x batches) and calls `executor.map(fn, chunks, label=...)`; `fn` must be a module-level
function so Ray can ship it. Results come back in the order of `chunks`. A rich progress bar shows
on stderr when stderr is a terminal (stdout stays clean for `--json`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from accelsim.errors import UserError

T = TypeVar("T")
R = TypeVar("R")

RAY_HINT = "--ray needs Ray, which is not installed: pip install ray (or pip install 'accelsim[ray]')"


class Executor(Protocol):
    name: str

    def map(self, fn: Callable[[T], R], chunks: Sequence[T], *, label: str = "sweep") -> list[R]: ...

    def close(self) -> None: ...


def _progress(total: int, label: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True, disable=not console.is_terminal)
    return progress


class LocalExecutor:
    """Runs chunks one after another in this process."""

    name = "local"

    def map(self, fn: Callable[[T], R], chunks: Sequence[T], *, label: str = "sweep") -> list[R]:
        out: list[R] = []
        with _progress(len(chunks), label) as progress:
            task = progress.add_task(label, total=len(chunks))
            for chunk in chunks:
                out.append(fn(chunk))
                progress.advance(task)
        return out

    def close(self) -> None:
        pass


class RayExecutor:
    """Runs each chunk as a Ray task. `address` None starts (or joins) a local Ray instance."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UserError(RAY_HINT) from None
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UserError(f"--ray {address or ''}: cannot connect to Ray ({first})".replace("  ", " ")) from None
            self._started = True

    def map(self, fn: Callable[[T], R], chunks: Sequence[T], *, label: str = "sweep") -> list[R]:
        ray = self._ray
        remote = ray.remote(fn)
        refs = [remote.remote(c) for c in chunks]
        pending = list(refs)
        with _progress(len(chunks), label) as progress:
            task = progress.add_task(f"{label} (ray)", total=len(chunks))
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                progress.advance(task, len(done))
        return list(ray.get(refs))

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


def make_executor(ray: str | None) -> Executor:
    """None → local; "local" → Ray started on this machine; any other string → a Ray address."""
    if ray is None:
        return LocalExecutor()
    return RayExecutor(None if ray in ("", "local") else ray)
