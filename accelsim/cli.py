"""The `accelsim` command: a thin argparse layer over the library.

Each area registers its own subcommands through a `register(subparsers)` function in a light
module (argparse only at import time; heavy imports happen inside the handlers), so that
`accelsim predict` never pays for plotly, simpy, torch or triton.
A handler returns an exit code; a `UserError` anywhere becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from accelsim.errors import UserError

# Modules that contribute subcommands, in the order they appear in `accelsim --help`.
COMMAND_MODULES = (
    "accelsim.commands",  # hw, workloads, predict
    "accelsim.calibrate.cli",  # measure, calibrate
    "accelsim.gpudata.cli",  # import
    "accelsim.tune.cli",  # tune
    "accelsim.serve.cli",  # simulate
    "accelsim.plan.cli",  # plan
    "accelsim.study.cli",  # study
    "accelsim.dashboard.cli",  # dashboard
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
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
    try:
        import numpy as np

        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        sys.stderr.write(f"accelsim: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("accelsim: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
