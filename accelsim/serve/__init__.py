"""The serving and fleet simulator: a SimPy discrete-event model at iteration level.

One event per batch step per replica (never per token of each request). A step's duration and
energy come from the spine's performance and power models (`accelsim.perf.cost` over
`accelsim.graph.llm_ops` / `ranking_ops`, `accelsim.power.chip_power_w`), tabulated once per
replica group (`service.py`); there is no second performance model here.

Modules, by concept:
    config     what to simulate: replica groups, traffic, router, SLOs (dataclasses + cluster TOML)
    workload   arrival times and request lengths (Poisson, Gamma, CSV trace)
    service    per-step time and energy tables from the spine; KV budget from `accelsim.memory`
    kv         the paged KV-cache block manager
    replica    an LLM replica: continuous batching, chunked prefill, preemption, failures
    ranking    DLRM-style batched ranking serving with a latency SLO
    failures   per-component failure processes and their defaults (Llama 3 table)
    recorder   per-request records, site time series, the summary
    cluster    router and the whole run (`simulate`)
    training   a synchronous training job under failures, checkpoints and restarts
    studies    study runners (Llama 3 interruptions)
    cli        `accelsim simulate`, `accelsim simulate-training`
"""
