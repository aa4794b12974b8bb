"""Capacity and power planning: chip -> server -> rack -> IT load -> facility -> site budget.

`accelsim.plan.planner.plan` is the entry point the CLI (`accelsim plan`) and the dashboard call;
`site` holds the rack/site arithmetic, `scenarios` builds fleet roadmaps by year and power-capping
sweeps, `defaults.toml` holds the sourced or assumed server and rack values per chip family. Each
chip's operating point is `accelsim.search.best` (the search `accelsim predict` uses).
"""
