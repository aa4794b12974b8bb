"""Shipped fused-MoE config files as labels: each (file, batch size) entry is the config an exhaustive
tuning run found fastest on that GPU for that problem.

`cases(dirs)` turns every usable entry into a `Case`: the tuning problem (E and N from the name, H
and top_k from ``data/moe_shapes.toml``), the device's limits key, the winner and where it came
from. An entry is not usable (and is counted in ``skipped`` with its reason) when the file is a
``_down`` table (second GEMM only; accelsim's kernel uses one config for both), its quantisation is
not one accelsim's kernel runs (int8, int4, fp8 with blocks other than 128 x 128), or the device has
no limits entry in `space.DEVICE_LIMITS`.

`vllm_config_dir()` finds vLLM's shipped folder in an installed vllm (importlib metadata only:
vllm itself is never imported).
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from accelsim.errors import UserError
from accelsim.tune.export import TunedFile, read_dir
from accelsim.tune.space import Config, Problem, device_limits

_SHAPES_FILE = Path(__file__).resolve().parent / "data" / "moe_shapes.toml"
VLLM_CONFIG_SUBDIR = Path("vllm") / "model_executor" / "layers" / "fused_moe" / "configs"


@dataclass(frozen=True)
class Case:
    """One label: on ``device`` (a DEVICE_LIMITS key), for ``problem``, ``winner`` was fastest.
    ``shape`` groups cases for hold-out (E, N and dtype); ``source`` names the file and package."""

    problem: Problem
    device: str
    winner: Config
    file: str
    source: str
    family: str

    @property
    def shape(self) -> tuple[int, int, str]:
        return self.problem.experts, self.problem.inter, self.problem.dtype


@dataclass
class LabelSet:
    cases: list[Case] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    rejected_files: list[dict[str, object]] = field(default_factory=list)


@functools.lru_cache(maxsize=1)
def _shape_table() -> dict[str, object]:
    import tomllib

    return tomllib.loads(_SHAPES_FILE.read_text(encoding="utf-8"))


def shape_for(experts: int, n: int) -> tuple[int, int, str]:
    """(H, top_k, family name) for a file's E and N (see data/moe_shapes.toml); the fallback's
    family name is "unknown"."""
    table = _shape_table()
    for fused_shared in (False, True):
        base = experts - 1 if fused_shared else experts
        for fam in table["family"]:  # type: ignore[union-attr]
            tp = fam["intermediate"] / n
            if fam["experts"] == base and tp >= 1 and tp == int(tp) and int(tp) & (int(tp) - 1) == 0:
                return int(fam["hidden"]), int(fam["top_k"]) + fused_shared, str(fam["name"])
    for fused_shared in (False, True):  # E matches but N is no power-of-two shard of I
        for fam in table["family"]:  # type: ignore[union-attr]
            if fam["experts"] == experts - fused_shared:
                return int(fam["hidden"]), int(fam["top_k"]) + fused_shared, str(fam["name"]) + "?"
    fb = table["fallback"]
    top_k = fb["top_k_large_e"] if experts >= fb["large_e"] else fb["top_k_small_e"]  # type: ignore[index]
    return int(fb["hidden"]), int(min(top_k, experts)), "unknown"  # type: ignore[index]


def file_cases(f: TunedFile, source: str) -> tuple[list[Case], str]:
    """Cases of one parsed file, or ([], reason) when it cannot be used as labels; reason is one of
    "_down file", "quantisation not run by accelsim's kernel", "no device limits"."""
    if f.name.down:
        return [], "_down file"
    dtype = f.name.accel_dtype
    if dtype is None:
        return [], "quantisation not run by accelsim's kernel"
    try:
        limits = device_limits(f.device.replace("_", " ")) if f.device else None
    except UserError:
        limits = None
    if limits is None:
        return [], "no device limits"
    hidden, top_k, family = shape_for(f.experts, f.n)
    out = []
    for m, cfg in f.table.items():
        problem = Problem(f.experts, hidden, f.n, min(top_k, f.experts), dtype, m)
        out.append(Case(problem, limits.name, dict(cfg), f.name.format("sglang"), source, family))
    return out, ""


def cases(dirs: Sequence[tuple[str | os.PathLike[str], str]]) -> LabelSet:
    """Labels from config folders, each given as (directory, source text such as "vllm 0.33.0")."""
    out = LabelSet()
    for directory, source in dirs:
        files, rejected = read_dir(directory)
        out.rejected_files += rejected
        for f in files:
            got, reason = file_cases(f, source)
            if reason:
                out.skipped[reason] += len(f.table)
            out.cases += got
    return out


def vllm_config_dir() -> Path | None:
    """The fused-MoE configs folder of an installed vllm, or None (vllm is never imported)."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        dist = distribution("vllm")
    except (ImportError, PackageNotFoundError):
        return None
    path = Path(str(dist.locate_file(VLLM_CONFIG_SUBDIR)))
    return path if path.is_dir() else None


def group_folds(keys: Iterable[object], folds: int) -> dict[object, int]:
    """Assign each distinct key (a shape) to one of ``folds`` folds, deterministically (sorted keys
    dealt round-robin), so that every case of a shape is held out together."""
    distinct = sorted(set(keys), key=repr)
    return {k: i % folds for i, k in enumerate(distinct)}


def case_space(case: Case) -> tuple[np.ndarray, int]:
    """(indices of the pruned tune_space for the case's problem and device, index of the winner's
    canonical equivalent in tune_space, or -1 when it is not in the pruned space)."""
    from accelsim.tune.space import DEVICE_LIMITS, TUNE_SPACE, as_tuple, canonical, prune_mask, tune_space_arrays

    kept, _ = prune_mask(tune_space_arrays(), case.problem, DEVICE_LIMITS[case.device], TUNE_SPACE["GROUP_SIZE_M"])
    w = as_tuple(canonical(case.winner, case.problem))
    pos = _space_position(w)
    return np.flatnonzero(kept), pos if pos >= 0 and kept[pos] else -1


def _space_position(config: tuple[int, ...]) -> int:
    """Index of a config tuple in tune_space's lexicographic order, or -1 when a value is outside it."""
    from accelsim.tune.space import CONFIG_KEYS, TUNE_SPACE

    pos = 0
    for k, v in zip(CONFIG_KEYS, config):
        values = TUNE_SPACE[k]
        if v not in values:
            return -1
        pos = pos * len(values) + values.index(v)
    return pos
