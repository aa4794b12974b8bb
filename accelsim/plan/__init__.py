"""Capacity and power planning: chip -> server -> rack -> IT load -> facility -> site budget.

`accelsim.plan.planner.plan` is the entry point the CLI (`accelsim plan`) and the dashboard call;
`site` holds the rack/site arithmetic, `scenarios` builds fleet roadmaps by year and power-capping
sweeps, `defaults.toml` holds the sourced or assumed server and rack values per chip family. Each
chip's operating point is `accelsim.search.best` (the search `accelsim predict` uses).
"""

from typing import Any


def __getattr__(name: str) -> Any:
    # `from accelsim.plan import plan` without importing the planner (and predict) when the CLI
    # only registers `accelsim plan`.
    if name == "plan":
        from accelsim.plan.planner import plan

        return plan
    raise AttributeError(f"module 'accelsim.plan' has no attribute {name!r}")
