"""Atomic file output: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temp file next to `path`; on clean exit fsync and rename it over `path`.

    On an exception the temp file is removed and `path` is left as it was, so a reader never
    sees a half-written file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # the temp name must fit in one path component even when the target's name is near the limit
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:200]}.", suffix=".tmp", dir=target.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are meant to be read by others
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# Pseudo file systems: writing there changes the kernel or a device, never makes an output file.
_SPECIAL_ROOTS = ("/proc", "/sys", "/dev")
NAME_MAX = 255  # bytes in one path component (Linux)
PATH_MAX = 4096  # bytes in a whole path (Linux)


def check_output_path(path: str | os.PathLike[str], kind: str = "file") -> Path:
    """Check, before any work starts, that an output `kind` ("file" or "dir") can be written at `path`.

    Refused with a one-line ValueError: an empty path, a control character in it, a component longer
    than NAME_MAX bytes, a place under /proc, /sys or /dev, a file where a directory is wanted or the
    reverse, a path under an existing file, and a nearest existing directory that is not writable.
    Creates nothing.
    """
    text = os.fspath(path)
    if not text or not text.strip():
        raise ValueError("output path is empty")
    target = _checked_text(text, "output path")
    absolute = Path(os.path.abspath(target))
    for root in _SPECIAL_ROOTS:
        if absolute == Path(root) or Path(root) in absolute.parents:
            raise ValueError(f"output path '{text}' is under {root}, not a place for output files")
    if absolute.exists():
        if kind == "file" and absolute.is_dir():
            raise ValueError(f"output path '{text}' is a directory; give a file name")
        if kind == "dir" and not absolute.is_dir():
            raise ValueError(f"output directory '{text}' exists and is not a directory")
    parent = absolute if kind == "dir" else absolute.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"output path '{text}' lies under '{parent}', which is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"output path '{text}': directory '{parent}' is not writable")
    return target


def check_input_file(path: str | os.PathLike[str], what: str = "input file") -> Path:
    """A readable regular file, or a one-line ValueError saying what it is instead."""
    text = os.fspath(path)
    if not text:
        raise ValueError(f"{what} path is empty")
    p = _checked_text(text, what)
    if not p.exists():
        raise ValueError(f"{what} '{text}' does not exist")
    if p.is_dir():
        raise ValueError(f"{what} '{text}' is a directory, not a file")
    if not p.is_file():
        raise ValueError(f"{what} '{text}' is not a regular file")
    if not os.access(p, os.R_OK):
        raise ValueError(f"{what} '{text}' is not readable")
    return p


def _checked_text(text: str, what: str) -> Path:
    if not text.isprintable():
        shown = text[:60].encode("unicode_escape").decode("ascii")
        raise ValueError(f"{what} '{shown}' holds a control character (newline, tab, ...)")
    if len(os.fsencode(text)) >= PATH_MAX:
        raise ValueError(f"{what} '{text[:40]}...' is longer than {PATH_MAX} bytes")
    for part in Path(text).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise ValueError(f"{what} '{text[:40]}...': a name is longer than {NAME_MAX} bytes")
    return Path(text)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """Write dict rows as CSV; the header is the union of keys in first-seen order."""
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields))
        writer.writeheader()
        writer.writerows(rows)
