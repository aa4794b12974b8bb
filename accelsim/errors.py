"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input from a user: a name, a value, a file. The message is one line and says what was expected."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> UserError:
    """An error for an unknown catalog name, suggesting the closest valid names."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UserError(f"unknown {kind} '{name}'{hint} (valid: {', '.join(valid)})")
