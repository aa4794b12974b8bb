"""What to simulate: replica groups, traffic, routing, SLOs. Frozen dataclasses plus a cluster TOML.

A cluster is a list of replica groups; groups may use different chips (heterogeneous fleets).
Every LLM group serves the one LLM request stream; ranking groups (and LLM groups with
`serve_ranking = true`, i.e. co-located) serve the ranking stream.

Cluster TOML (`accelsim simulate --cluster FILE`):

    [[llm]]                      # one table per LLM replica group
    hw = "h100-sxm"              # keys: the fields of `ReplicaGroup`
    model = "llama3-70b"
    replicas = 4
    tp = 4
    [[ranking]]                  # dedicated ranking replicas: the fields of `RankingGroup`
    hw = "mtia-400"              # (the ranking model is the stream's: --ranking-model)
    chips = 8
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from accelsim.errors import UserError
from accelsim.memory import CHUNK_TOKENS
from accelsim.serve.failures import FailureModel
from accelsim.spec import read_user_file
from accelsim.spec.chip import SERVING_DTYPES

Router = Literal["round-robin", "least-outstanding"]
Arrival = Literal["poisson", "gamma", "trace"]
Role = Literal["both", "prefill", "decode"]
ROLES: tuple[str, ...] = typing.get_args(Role)
ROUTERS: tuple[str, ...] = typing.get_args(Router)
ARRIVALS: tuple[str, ...] = typing.get_args(Arrival)
DTYPES = SERVING_DTYPES

# Engine defaults (assumed): vLLM's max_num_seqs=256 and the spine's prefill chunk
# (accelsim.memory.CHUNK_TOKENS); vLLM's default KV block of 16 tokens.
DEFAULT_MAX_SEQS = 256
DEFAULT_MAX_BATCHED_TOKENS = CHUNK_TOKENS
DEFAULT_BLOCK_SIZE = 16
# SLOs (MLPerf Inference rules, llama2-70b server: TTFT <= 2 s, TPOT <= 200 ms; DLRM-v2: 60 ms).
DEFAULT_SLO_TTFT_S = 2.0
DEFAULT_SLO_TPOT_S = 0.200
DEFAULT_RANKING_SLO_S = 0.060


@dataclass(frozen=True)
class ReplicaGroup:
    """`replicas` identical LLM replicas, each tp x pp chips of `hw` serving `model`."""

    hw: str
    model: str
    replicas: int = 1
    tp: int = 1
    ep: int = 1
    pp: int = 1
    dtype: str = "bf16"
    kv_dtype: str | None = None  # default: fp8 when dtype is fp8/fp4, else bf16 (as `predict`)
    max_seqs: int = DEFAULT_MAX_SEQS  # sequences running at once (prefilling + decoding)
    max_batched_tokens: int = DEFAULT_MAX_BATCHED_TOKENS  # decode tokens + prefill chunk per step
    block_size: int = DEFAULT_BLOCK_SIZE  # KV tokens per block
    kv_blocks: int | None = None  # override of the memory plan's KV budget (what-ifs, tests)
    serve_ranking: bool = False  # also serve the ranking stream on these replicas (co-located)
    role: Role = "both"  # "prefill" / "decode": a pool of disaggregated serving (serve.disagg)
    prefix_cache_share: float = 0.0  # share of the KV blocks kept as an LRU prefix cache (0: off)
    dp: int = 1  # attention data parallel groups of tp chips (experts over all tp x dp: ep = tp x dp)
    spec_decode: str | None = None  # speculative decoding: "mtp=K,accept=A" or "draft=MODEL,k=K,accept=A"

    @property
    def chips_per_replica(self) -> int:
        return self.tp * self.dp * self.pp

    def validate(self) -> None:
        for key in ("replicas", "tp", "ep", "pp", "dp", "max_seqs", "max_batched_tokens", "block_size"):
            if getattr(self, key) < 1:
                raise UserError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.kv_blocks is not None and self.kv_blocks < 1:
            raise UserError(f"kv_blocks must be >= 1, got {self.kv_blocks}")
        if not 0.0 <= self.prefix_cache_share <= 0.9:
            raise UserError(f"prefix_cache_share must be in [0, 0.9], got {self.prefix_cache_share}")
        if self.spec_decode is not None:
            from accelsim.modes import parse_spec_decode

            parse_spec_decode(self.spec_decode)
        if self.role not in ROLES:
            raise UserError(f"role '{self.role}' is not one of {', '.join(ROLES)}")
        for key in ("dtype", "kv_dtype"):
            v = getattr(self, key)
            if v is not None and v not in DTYPES:
                raise UserError(f"{key} '{v}' is not one of {', '.join(DTYPES)}")


@dataclass(frozen=True)
class RankingGroup:
    """`replicas` dedicated ranking replicas of `chips` chips each (tables sharded over them, MLPs
    data parallel), serving the ranking stream's model."""

    hw: str
    replicas: int = 1
    chips: int = 1
    dtype: str = "bf16"
    placement: str | None = None  # where the tables live over the chips (None: the planner's choice)

    def validate(self) -> None:
        from accelsim.ranking import parse_placement

        parse_placement(self.placement)
        for key in ("replicas", "chips"):
            if getattr(self, key) < 1:
                raise UserError(f"ranking {key} must be >= 1, got {getattr(self, key)}")
        if self.dtype not in DTYPES:
            raise UserError(f"ranking dtype '{self.dtype}' is not one of {', '.join(DTYPES)}")


@dataclass(frozen=True)
class Traffic:
    """The LLM request stream. Lengths are lognormal around the means with coefficient of
    variation `length_cv` (0 = every request exactly at the mean), clipped to [1, 8 x mean].
    The lognormal shape and the default CV of 0.5 are assumptions (chat traces are right-skewed)."""

    rate_per_s: float = 1.0
    arrival: Arrival = "poisson"
    cv: float = 1.0  # coefficient of variation of inter-arrival gaps (gamma); poisson is 1
    trace: str | None = None  # CSV with arrival_s,input_len,output_len (replaces the above)
    input_len: int = 1000
    output_len: int = 1000
    length_cv: float = 0.5
    prefix_pool: int = 0  # distinct shared prompt prefixes requests draw from (0: none)
    prefix_len: int = 0  # tokens of each shared prefix (the first tokens of the prompt)
    prefix_zipf: float = 0.0  # popularity exponent of the prefixes (0: uniform)
    image_tokens: int = 0  # image tokens every prompt carries on top of its text (vision encoder in prefill)

    def validate(self) -> None:
        if self.arrival not in ARRIVALS:
            raise UserError(f"--arrival '{self.arrival}' is not one of {', '.join(ARRIVALS)}")
        if self.arrival == "trace" and not self.trace:
            raise UserError("--arrival trace needs --trace CSV")
        if self.arrival != "trace" and not self.rate_per_s > 0:
            raise UserError(f"--arrival-rate must be > 0 requests/s, got {self.rate_per_s}")
        if not self.cv > 0:
            raise UserError(f"--cv must be > 0, got {self.cv}")
        if self.input_len < 1 or self.output_len < 1:
            raise UserError(f"--input-len and --output-len must be >= 1, got {self.input_len}, {self.output_len}")
        if not 0 <= self.length_cv <= 10:
            raise UserError(f"--length-cv must be in [0, 10], got {self.length_cv}")
        if self.prefix_pool < 0 or self.prefix_len < 0 or (self.prefix_pool > 0) != (self.prefix_len > 0):
            raise UserError(f"--prefix-pool and --prefix-len go together (both >= 1), got {self.prefix_pool}, "
                            f"{self.prefix_len}")
        if self.image_tokens < 0:
            raise UserError(f"--image-tokens must be >= 0, got {self.image_tokens}")
        if not 0 <= self.prefix_zipf <= 5:
            raise UserError(f"--prefix-zipf must be in [0, 5], got {self.prefix_zipf}")


@dataclass(frozen=True)
class RankingTraffic:
    """The ranking request stream: requests of `samples` items each for ranking model `model`."""

    model: str
    rate_per_s: float
    samples: int = 128  # items ranked per request (assumed; MLPerf DLRM queries vary widely)
    slo_s: float = DEFAULT_RANKING_SLO_S
    arrival: Arrival = "poisson"
    cv: float = 1.0

    def validate(self) -> None:
        if self.arrival not in ("poisson", "gamma"):
            raise UserError(f"ranking arrivals must be poisson or gamma, got '{self.arrival}'")
        if not self.cv > 0:
            raise UserError(f"--cv must be > 0, got {self.cv}")
        if not self.rate_per_s > 0:
            raise UserError(f"--ranking-rate must be > 0 requests/s, got {self.rate_per_s}")
        if self.samples < 1:
            raise UserError(f"--ranking-samples must be >= 1, got {self.samples}")
        if not self.slo_s > 0:
            raise UserError(f"--ranking-slo must be > 0 s, got {self.slo_s}")


@dataclass(frozen=True)
class SimConfig:
    """One simulation run. Arrivals stop at `duration_s`; with `drain` the run goes on until
    every request has finished (at most `DRAIN_LIMIT` x duration), else it ends at duration."""

    groups: tuple[ReplicaGroup, ...] = ()
    traffic: Traffic | None = None
    duration_s: float = 60.0
    ranking_groups: tuple[RankingGroup, ...] = ()
    ranking: RankingTraffic | None = None
    router: Router = "least-outstanding"
    failures: FailureModel = field(default_factory=FailureModel.none)
    seed: int = 0
    drain: bool = False
    slo_ttft_s: float = DEFAULT_SLO_TTFT_S
    slo_tpot_s: float = DEFAULT_SLO_TPOT_S
    power_cap_w: float | None = None  # site cap on accelerator power; replicas throttle to a TDP share
    interval_s: float | None = None  # time-series bin; default: duration / 200, at least 1 ms

    def validate(self) -> None:
        if not self.duration_s > 0:
            raise UserError(f"--duration must be > 0 s, got {self.duration_s}")
        if self.router not in ROUTERS:
            raise UserError(f"--router '{self.router}' is not one of {', '.join(ROUTERS)}")
        if not self.groups and not self.ranking_groups:
            raise UserError("the cluster has no replicas")
        if self.traffic is not None and not self.groups:
            raise UserError("an LLM request stream needs at least one LLM replica group")
        if self.ranking is not None and not (self.ranking_groups or any(g.serve_ranking for g in self.groups)):
            raise UserError("a ranking stream needs a ranking group or an LLM group with serve_ranking = true")
        for g in (*self.groups, *self.ranking_groups):
            g.validate()
        roles = {g.role for g in self.groups}
        if roles & {"prefill", "decode"} and not {"prefill", "decode"} <= roles:
            raise UserError("disaggregated serving needs both a role = \"prefill\" and a role = \"decode\" group")
        if "both" in roles and len(roles) > 1:
            raise UserError("mix no role = \"both\" group with prefill/decode pools")
        for t in (self.traffic, self.ranking):
            if t is not None:
                t.validate()
        if self.power_cap_w is not None and not self.power_cap_w > 0:
            raise UserError(f"--power-cap-w must be > 0, got {self.power_cap_w}")
        if self.interval_s is not None and not self.interval_s > 0:
            raise UserError(f"--interval must be > 0 s, got {self.interval_s}")
        for key in ("slo_ttft_s", "slo_tpot_s"):
            if not getattr(self, key) > 0:
                raise UserError(f"{key} must be > 0, got {getattr(self, key)}")

    @property
    def bin_s(self) -> float:
        return self.interval_s or max(self.duration_s / 200.0, 1e-3)


def load_cluster(path: str) -> tuple[tuple[ReplicaGroup, ...], tuple[RankingGroup, ...]]:
    """Replica groups from a cluster TOML (format in the module docstring); one-line errors."""
    data = read_user_file(path, "cluster file")
    unknown = set(data) - {"llm", "ranking"}
    if unknown:
        raise UserError(f"cluster file '{path}': unknown key(s) {', '.join(sorted(unknown))} "
                        "(expected [[llm]], [[ranking]])")
    llm = tuple(_build(ReplicaGroup, t, f"{path} [[llm]] #{i + 1}") for i, t in enumerate(_tables(data, "llm", path)))
    rk = tuple(_build(RankingGroup, t, f"{path} [[ranking]] #{i + 1}")
               for i, t in enumerate(_tables(data, "ranking", path)))
    if not llm and not rk:
        raise UserError(f"cluster file '{path}' defines no [[llm]] or [[ranking]] group")
    return llm, rk


def _tables(data: dict[str, Any], key: str, path: str) -> list[dict[str, Any]]:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(t, dict) for t in v):
        raise UserError(f"cluster file '{path}': '{key}' must be an array of tables ([[{key}]])")
    return v


def _build(cls: type, table: dict[str, Any], where: str) -> Any:
    """Instantiate a config dataclass from a TOML table, checking keys and value types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - names
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (valid: {', '.join(sorted(names))})")
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in table:
            raise UserError(f"{where}: missing required key '{f.name}'")
    for key, value in table.items():
        allowed = _types(hints[key])
        ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
        if not ok:
            want = " or ".join(t.__name__ for t in allowed)
            raise UserError(f"{where}: '{key}' must be {want}, got {value!r}")
    obj = cls(**table)
    try:
        obj.validate()
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    return obj


def _types(hint: Any) -> tuple[type, ...]:
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    out = [a for a in args if isinstance(a, type) and a is not type(None)]
    if float in out:  # TOML writes 3 for 3.0
        out.append(int)
    return tuple(out)
