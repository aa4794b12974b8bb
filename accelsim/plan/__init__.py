"""Capacity and power planning: chip -> server -> rack -> IT load -> facility -> site budget.

`accelsim.plan.planner.plan` is the entry point the CLI (`accelsim plan`) and the dashboard call;
`site` holds the rack/site arithmetic, `scenarios` builds fleet roadmaps by year and power-capping
sweeps; the sourced or assumed server, rack and site values live in the deployment catalog
(`accelsim.spec.deployment`, accelsim/data/deployment.toml). Each
chip's operating point is `accelsim.search.best` (the search `accelsim predict` uses).
"""
