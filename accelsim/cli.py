"""The `accelsim` command: a thin argparse layer over the library.

Each area registers its own subcommands through a `register(subparsers)` function in a light
module (argparse only at import time; heavy imports happen inside the handlers), so that
`accelsim predict` never pays for plotly, simpy, torch or triton.
A handler returns an exit code; a `UserError` anywhere becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from accelsim.errors import UserError

# Modules that contribute subcommands, in the order they appear in `accelsim --help`.
COMMAND_MODULES = (
    "accelsim.commands",  # hw, workloads, predict
    "accelsim.pareto_cli",  # pareto
    "accelsim.calibrate.cli",  # measure, calibrate
    "accelsim.gpudata.cli",  # import
    "accelsim.tune.cli",  # tune
    "accelsim.serve.cli",  # simulate
    "accelsim.plan.cli",  # plan
    "accelsim.study.cli",  # study
    "accelsim.dashboard.cli",  # dashboard
)


MAX_MESSAGE = 1000  # characters of an error message (one line; longer ones are cut)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {one_line(message)}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accelsim", description="accelsim: accelerator co-design simulator and MoE kernel autotuner.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # an area not built yet must not break the others
            if not exc.name or not name.startswith(exc.name):
                raise
            continue
        module.register(sub)
    return parser


def _version() -> str:
    from accelsim import __version__

    return __version__


def print_json(obj: Any) -> None:
    """Print one JSON document on stdout (the `--json` contract shared by all commands)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):  # typed results (predictions, ...) carry their JSON form
        return obj.to_dict()
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def one_line(message: str) -> str:
    """`message` with control characters (a newline in a user's file name ...) escaped: one line."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done, 2 bad input (one line on stderr, nothing written),
    130 interrupted, 141 stdout closed early (`accelsim ... | head`: quiet, as SIGPIPE would be)."""
    _tolerant_stdout()
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # a usage error (already one line on stderr), --help, --version
            return exc.code if isinstance(exc.code, int) else 2
        return int(args.func(args) or 0)
    except UserError as exc:
        return _fail(str(exc))
    except UnicodeDecodeError as exc:  # a user file that is not UTF-8, wherever it was read
        return _fail(f"a file is not UTF-8 text ({exc.reason} at byte {exc.start}); accelsim reads UTF-8")
    except csv.Error as exc:  # a CSV file with a field over the csv module's limit, a NUL byte ...
        return _fail(f"a CSV file cannot be read: {exc}")
    except RecursionError:  # a TOML or JSON file of arrays nested thousands deep
        return _fail("a file is nested too deeply to read (arrays or tables thousands of levels deep)")
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            return _broken_pipe()
        if exc.filename is None:
            raise
        # a path the checks could not foresee (disk full, permissions changed mid-run ...)
        return _fail(f"{exc.filename}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        sys.stderr.write("accelsim: interrupted\n")
        return 130


def _tolerant_stdout() -> None:
    """Print what the terminal's encoding cannot show as escapes (a chip named 'Méta' on an ASCII
    terminal) instead of failing mid-output with UnicodeEncodeError; stderr already does this."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):  # a stream that cannot be reconfigured: leave it
            reconfigure(errors="backslashreplace")


def _fail(message: str) -> int:
    text = one_line(message)
    if len(text) > MAX_MESSAGE:  # a user's 4,000-character path need not be echoed whole
        text = text[:MAX_MESSAGE] + "..."
    sys.stderr.write(f"accelsim: error: {text}\n")
    return 2


def _broken_pipe() -> int:
    """The reader of stdout went away: silence the flush at exit (it would raise again) and stop."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
