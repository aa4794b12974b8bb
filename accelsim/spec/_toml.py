"""Shared helpers for reading catalog TOML files with precise error messages."""

from __future__ import annotations

import math
import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from accelsim.errors import UserError, unknown_name
from accelsim.io import NAME_MAX, check_input_file


def catalog_dir(package: str) -> Path:
    """The directory of a shipped catalog package (`hwmodels`, `workloads`, `studies`): installed next
    to `accelsim` (wheel or editable checkout). Looked up there first, because under an editable
    install a bare `hwmodels/` folder in the working directory (`calibrate-gpu --out-dir
    hwmodels/calibrated`) would otherwise be imported in its place as a namespace package."""
    beside = Path(__file__).resolve().parents[2] / package
    if (beside / "__init__.py").is_file():
        return beside
    return Path(str(resources.files(package)))


def catalog_names(package: str) -> list[str]:
    return sorted(p.stem for p in catalog_dir(package).glob("*.toml"))


def resolve(package: str, kind: str, name_or_path: str) -> Path:
    """A catalog name (file stem) or a path to a .toml file → the file's path."""
    if not name_or_path or not name_or_path.isprintable():
        shown = name_or_path[:60].encode("unicode_escape").decode("ascii")
        raise UserError(f"{kind} name '{shown}' is empty or holds a control character (newline, tab, ...)")
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        try:
            return check_input_file(candidate, f"{kind} file")
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if len(name_or_path) > NAME_MAX or "/" in name_or_path:
        raise UserError(f"unknown {kind} '{name_or_path[:40]}...' (a catalog name, or a path ending in .toml)")
    path = catalog_dir(package) / f"{name_or_path}.toml"
    if not path.is_file():
        raise unknown_name(kind, name_or_path, catalog_names(package))
    return path


def read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path.name}: not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path.name}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except RecursionError:
        raise UserError(f"{path.name}: nested too deeply to read") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_user_file(path: str, what: str, missing: str | None = None) -> dict[str, Any]:
    """A TOML file a user named (`what` says which, e.g. "cluster file"); one-line UserError when
    it is missing (`missing` overrides that message), not a regular file (a FIFO would block the
    read) or not valid TOML."""
    if os.path.lexists(path):  # (a missing file gets the caller's `missing` message below)
        try:
            check_input_file(path, what)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(missing or f"{what} '{path}' does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{what} '{path}' is not valid TOML: {exc}") from None
    except RecursionError:
        raise UserError(f"{what} '{path}' is nested too deeply to read") from None
    except (OSError, ValueError) as exc:  # a directory, a name too long, an embedded NUL ...
        raise UserError(f"{what} '{path}' cannot be read: {getattr(exc, 'strerror', None) or exc}") from None


# No quantity in a catalog file comes near this (FLOP/s ~1e18, bytes ~1e15, parameters ~1e13): a
# larger value is a typo, and would print as a number hundreds of digits long.
MAX_NUMBER = 1e30


class Reader:
    """Pulls typed keys out of a TOML table; rejects unknown keys; errors name file and key."""

    def __init__(self, file: str, table: dict[str, Any], prefix: str = "") -> None:
        self.file, self.table, self.prefix = file, table, prefix
        self.seen: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self.file}: key '{self.prefix}{key}'"

    def has(self, key: str) -> bool:
        return key in self.table

    def raw(self, key: str, default: Any = ..., ) -> Any:
        self.seen.add(key)
        if key not in self.table:
            if default is ...:
                raise UserError(f"{self.where(key)} is missing")
            return default
        return self.table[key]

    def str(self, key: str, default: Any = ..., choices: tuple[str, ...] | None = None) -> str:
        val = self.raw(key, default)
        if not isinstance(val, str):
            raise UserError(f"{self.where(key)} must be a string, got {val!r}")
        if choices is not None and val not in choices:
            raise UserError(f"{self.where(key)} must be one of {', '.join(choices)}, got '{val}'")
        return val

    def number(self, key: str, default: Any = ..., lo: float = 0.0, hi: float = MAX_NUMBER,
               integer: bool = False) -> float:
        val = self.raw(key, default)
        if isinstance(val, bool) or not isinstance(val, int | float):
            raise UserError(f"{self.where(key)} must be a number, got {val!r}")
        if isinstance(val, float) and not math.isfinite(val):
            raise UserError(f"{self.where(key)} must be a finite number, got {val!r}")
        if integer and (not float(val).is_integer()):
            raise UserError(f"{self.where(key)} must be a whole number, got {val!r}")
        if not (lo <= val <= hi):
            raise UserError(f"{self.where(key)} = {str(val)[:40]} is out of range [{lo:g}, {hi:g}]")
        return int(val) if integer else float(val)

    def int(self, key: str, default: Any = ..., lo: float = 0, hi: float = MAX_NUMBER) -> int:
        return int(self.number(key, default, lo, hi, integer=True))

    def bool(self, key: str, default: Any = ...) -> bool:
        val = self.raw(key, default)
        if not isinstance(val, bool):
            raise UserError(f"{self.where(key)} must be true or false, got {val!r}")
        return val

    def int_list(self, key: str, lo: int = 0) -> tuple[int, ...]:
        val = self.raw(key)
        if not isinstance(val, list) or not val:
            raise UserError(f"{self.where(key)} must be a non-empty list of whole numbers")
        out = []
        for item in val:
            if isinstance(item, bool) or not isinstance(item, int) or item < lo:
                raise UserError(f"{self.where(key)} must hold whole numbers >= {lo}, got {item!r}")
            out.append(item)
        return tuple(out)

    def table_(self, key: str, required: bool = True) -> Reader | None:
        val = self.raw(key, ... if required else None)
        if val is None:
            return None
        if not isinstance(val, dict):
            raise UserError(f"{self.where(key)} must be a table")
        return Reader(self.file, val, f"{self.prefix}{key}.")

    def done(self) -> None:
        """Reject keys nobody asked for: a typo must not be silently ignored."""
        extra = sorted(set(self.table) - self.seen)
        if extra:
            raise UserError(f"{self.file}: unknown key '{self.prefix}{extra[0]}'")
