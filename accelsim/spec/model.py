"""Workload architectures: one TOML file per model in `workloads/`.

An `LLM` (dense or MoE transformer) or a `Ranking` model (DLRM-style). Parameter counts are
computed from the architecture here, in one place, and tested against published totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from accelsim.errors import UserError
from accelsim.spec._toml import Reader, catalog_names, read, resolve


@dataclass(frozen=True)
class MoE:
    num_experts: int
    top_k: int
    expert_intermediate_size: int
    num_shared_experts: int = 0
    shared_intermediate_size: int = 0
    layer_step: int = 1  # every `layer_step`-th layer is MoE (Llama 4 Maverick interleaves: 2)
    first_dense_layers: int = 0  # DeepSeek-V3 keeps its first 3 layers dense
    scoring: Literal["softmax", "sigmoid"] = "softmax"

    def is_moe_layer(self, i: int) -> bool:
        return i >= self.first_dense_layers and (i - self.first_dense_layers + 1) % self.layer_step == 0


@dataclass(frozen=True)
class Attention:
    kind: Literal["gqa", "mla"] = "gqa"
    chunk_size: int = 0  # >0: chunked local attention (Llama 4) on all but the global layers
    sliding_window: int = 0  # >0: sliding-window attention (Gemma 3, gpt-oss) on all but the global layers
    global_every: int = 0  # with a local window: every N-th layer attends to the whole context
    sinks: bool = False  # a learned sink logit per head (gpt-oss): one parameter per head and layer
    # Multi-head latent attention (DeepSeek-V3); zero for GQA.
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0

    @property
    def local_window(self) -> int:
        """Tokens a local layer attends to and keeps in its KV cache (0: no local layers). A chunk
        of Llama 4 and a sliding window cost the same bound: at most `local_window` positions."""
        return self.chunk_size or self.sliding_window


@dataclass(frozen=True)
class LLM:
    name: str
    display_name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int  # dense FFN width (SwiGLU)
    vocab_size: int
    tie_word_embeddings: bool
    attention: Attention
    moe: MoE | None
    source: str
    published_total_params: float | None = None
    published_active_params: float | None = None
    assumptions: Mapping[str, str] = field(default_factory=dict)
    kind: Literal["llm"] = "llm"

    # ---- layer structure -------------------------------------------------------------------
    @property
    def num_moe_layers(self) -> int:
        return 0 if self.moe is None else sum(self.moe.is_moe_layer(i) for i in range(self.num_layers))

    @property
    def num_dense_layers(self) -> int:
        return self.num_layers - self.num_moe_layers

    @property
    def num_local_attention_layers(self) -> int:
        """Layers whose attention window is capped at `attention.chunk_size`."""
        a = self.attention
        if a.local_window <= 0:
            return 0
        n_global = self.num_layers // a.global_every if a.global_every else 0
        return self.num_layers - n_global

    # ---- parameter counts (one place) --------------------------------------------------------
    @property
    def attention_params_per_layer(self) -> int:
        d, h, a = self.hidden_size, self.num_heads, self.attention
        if a.kind == "mla":
            qk = a.qk_nope_head_dim + a.qk_rope_head_dim
            q = d * a.q_lora_rank + a.q_lora_rank * h * qk if a.q_lora_rank else d * h * qk
            kv = d * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank * h * (a.qk_nope_head_dim + a.v_head_dim)
            return q + kv + h * a.v_head_dim * d
        return d * h * self.head_dim * 2 + 2 * d * self.num_kv_heads * self.head_dim + (h if a.sinks else 0)

    def _ffn_params(self, width: int) -> int:
        return 3 * self.hidden_size * width  # gate, up, down

    def _params(self, experts_counted: int) -> int:
        d, m = self.hidden_size, self.moe
        total = self.num_layers * (self.attention_params_per_layer + 2 * d)  # + two norms per layer
        total += self.num_dense_layers * self._ffn_params(self.intermediate_size)
        if m is not None:
            per_moe = d * m.num_experts + experts_counted * self._ffn_params(m.expert_intermediate_size)
            per_moe += m.num_shared_experts * self._ffn_params(m.shared_intermediate_size)
            total += self.num_moe_layers * per_moe
        total += self.vocab_size * d * (1 if self.tie_word_embeddings else 2) + d
        return total

    @property
    def total_params(self) -> int:
        return self._params(self.moe.num_experts if self.moe else 0)

    @property
    def active_params(self) -> int:
        return self._params(self.moe.top_k if self.moe else 0)

    @property
    def routed_expert_params(self) -> int:
        """Parameters of the routed experts (what expert parallelism spreads over chips)."""
        return self.total_params - self._params(0)

    # ---- KV cache -----------------------------------------------------------------------------
    def kv_elems_per_token_per_layer(self) -> int:
        """KV-cache elements one token adds to one layer (all heads, before TP sharding)."""
        a = self.attention
        if a.kind == "mla":  # the compressed latent plus the decoupled RoPE key, shared by all heads
            return a.kv_lora_rank + a.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    def kv_tokens_held(self, context: Any) -> Any:
        """Token-layers of KV a sequence at `context` tokens holds (local layers keep one chunk)."""
        import numpy as np

        ctx = np.asarray(context, dtype=float)
        local = self.num_local_attention_layers
        capped = np.minimum(ctx, self.attention.local_window) if local else ctx
        return (self.num_layers - local) * ctx + local * capped

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in ("attention", "moe", "assumptions")}
        d["attention"] = dict(self.attention.__dict__)
        d["moe"] = dict(self.moe.__dict__) if self.moe else None
        d["assumptions"] = dict(self.assumptions)
        d.update(total_params=self.total_params, active_params=self.active_params,
                 num_moe_layers=self.num_moe_layers)
        return d


@dataclass(frozen=True)
class Ranking:
    """A DLRM-style model: embedding bags + bottom MLP + interaction + top MLP."""

    name: str
    display_name: str
    num_dense_features: int
    embedding_dim: int
    table_rows: tuple[int, ...]
    lookups_per_table: tuple[int, ...]  # pooling factor per table (multi-hot size)
    bottom_mlp: tuple[int, ...]  # output widths; the last must equal embedding_dim
    top_mlp: tuple[int, ...]  # output widths; the input is the interaction's width
    interaction: Literal["dot", "dcn", "cat"]
    source: str
    dcn_num_layers: int = 0
    dcn_low_rank_dim: int = 0
    published_total_params: float | None = None
    assumptions: Mapping[str, str] = field(default_factory=dict)
    # How it is served ([inference] table): user-item pairs per ranking query (MLPerf's "sample"),
    # the stored table format (None: the serving --dtype) and the Zipf exponent of row popularity
    # within a table (0: uniform ids); see accelsim.ranking.
    candidates_per_query: float = 1.0
    embedding_dtype: str | None = None
    access_zipf_alpha: float = 0.0
    kind: Literal["ranking"] = "ranking"

    @property
    def num_tables(self) -> int:
        return len(self.table_rows)

    @property
    def lookups_per_sample(self) -> int:
        return sum(self.lookups_per_table)

    @property
    def interaction_width(self) -> int:
        n = self.num_tables + 1  # the tables plus the bottom MLP's output vector
        if self.interaction == "dot":
            return self.embedding_dim + n * (n - 1) // 2
        return n * self.embedding_dim

    def mlp_layers(self) -> list[tuple[int, int]]:
        """(in, out) of every dense layer in order: bottom, DCN (as two low-rank GEMMs), top."""
        layers, width = [], self.num_dense_features
        for out in self.bottom_mlp:
            layers.append((width, out))
            width = out
        w = self.interaction_width
        for _ in range(self.dcn_num_layers if self.interaction == "dcn" else 0):
            layers += [(w, self.dcn_low_rank_dim), (self.dcn_low_rank_dim, w)]
        width = w
        for out in self.top_mlp:
            layers.append((width, out))
            width = out
        return layers

    @property
    def dense_params(self) -> int:
        return sum(i * o + o for i, o in self.mlp_layers())

    @property
    def embedding_params(self) -> int:
        return sum(self.table_rows) * self.embedding_dim

    @property
    def total_params(self) -> int:
        return self.embedding_params + self.dense_params

    @property
    def active_params(self) -> int:
        """Parameters touched per sample: the rows looked up plus all dense weights."""
        return self.lookups_per_sample * self.embedding_dim + self.dense_params

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["assumptions"] = dict(self.assumptions)
        d.update(total_params=self.total_params, active_params=self.active_params,
                 dense_params=self.dense_params, lookups_per_sample=self.lookups_per_sample)
        return d


Model = LLM | Ranking


def _assumptions(r: Reader) -> dict[str, str]:
    t = r.table_("assumptions", required=False)
    if t is None:
        return {}
    out = {k: t.str(k) for k in list(t.table)}
    t.done()
    return out


def _parse_llm(r: Reader, name: str) -> LLM:
    arch = r.table_("architecture")
    assert arch is not None
    a = r.table_("attention", required=False)
    attention = Attention()
    if a is not None:
        kind = a.str("kind", "gqa", choices=("gqa", "mla"))
        attention = Attention(
            kind=kind,  # type: ignore[arg-type]
            chunk_size=a.int("chunk_size", 0),
            sliding_window=a.int("sliding_window", 0),
            global_every=a.int("global_every", 0),
            sinks=a.bool("sinks", False),
            **{k: a.int(k, 0) for k in ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim",
                                         "qk_rope_head_dim", "v_head_dim")},
        )
        a.done()
        if attention.chunk_size and attention.sliding_window:
            raise UserError(f"{r.file}: give one of attention.chunk_size and attention.sliding_window, not both")
        if kind == "mla" and not (attention.kv_lora_rank and attention.v_head_dim):
            raise UserError(f"{r.file}: MLA attention needs kv_lora_rank and v_head_dim")
    m = r.table_("moe", required=False)
    moe = None
    if m is not None:
        moe = MoE(
            num_experts=m.int("num_experts", lo=1),
            top_k=m.int("top_k", lo=1),
            expert_intermediate_size=m.int("expert_intermediate_size", lo=1),
            num_shared_experts=m.int("num_shared_experts", 0),
            shared_intermediate_size=m.int("shared_intermediate_size", 0),
            layer_step=m.int("layer_step", 1, lo=1),
            first_dense_layers=m.int("first_dense_layers", 0),
            scoring=m.str("scoring", "softmax", choices=("softmax", "sigmoid")),  # type: ignore[arg-type]
        )
        m.done()
        if moe.top_k > moe.num_experts:
            raise UserError(f"{r.file}: key 'moe.top_k' ({moe.top_k}) exceeds num_experts ({moe.num_experts})")
        if moe.num_shared_experts and not moe.shared_intermediate_size:
            raise UserError(f"{r.file}: key 'moe.shared_intermediate_size' is missing")
    model = LLM(
        name=name,
        display_name=r.str("display_name"),
        source=r.str("source"),
        published_total_params=r.number("published_total_params", None) if r.has("published_total_params") else None,
        published_active_params=r.number("published_active_params", None) if r.has("published_active_params") else None,
        assumptions=MappingProxyType(_assumptions(r)),
        attention=attention,
        moe=moe,
        # upper bounds: ~100x the largest published model (a typo must not size a 1e20-byte model)
        hidden_size=arch.int("hidden_size", lo=1, hi=1 << 20),
        num_layers=arch.int("num_layers", lo=1, hi=100_000),
        num_heads=arch.int("num_heads", lo=1, hi=1 << 16),
        num_kv_heads=arch.int("num_kv_heads", lo=1, hi=1 << 16),
        head_dim=arch.int("head_dim", lo=1, hi=1 << 16),
        intermediate_size=arch.int("intermediate_size", lo=1, hi=1 << 22),
        vocab_size=arch.int("vocab_size", lo=1, hi=1 << 26),
        tie_word_embeddings=arch.bool("tie_word_embeddings", False),
    )
    arch.done()
    if model.num_heads % model.num_kv_heads:
        raise UserError(f"{r.file}: num_heads ({model.num_heads}) must be a multiple of num_kv_heads")
    return model


def _ranking_inference(r: Reader) -> dict[str, Any]:
    """The optional [inference] table of a ranking workload (defaults: one pair per query, tables
    in the serving format, uniform ids)."""
    t = r.table_("inference", required=False)
    if t is None:
        return {}
    out = dict(candidates_per_query=t.number("candidates_per_query", 1.0, lo=1.0),
               embedding_dtype=t.str("embedding_dtype", None, choices=("fp32", "fp16", "bf16", "fp8", "int8"))
               if t.has("embedding_dtype") else None,
               access_zipf_alpha=t.number("access_zipf_alpha", 0.0, lo=0.0, hi=3.0))
    t.done()
    return out


def _parse_ranking(r: Reader, name: str) -> Ranking:
    arch = r.table_("architecture")
    assert arch is not None
    model = Ranking(
        name=name,
        display_name=r.str("display_name"),
        source=r.str("source"),
        published_total_params=r.number("published_total_params", None) if r.has("published_total_params") else None,
        assumptions=MappingProxyType(_assumptions(r)),
        num_dense_features=arch.int("num_dense_features", lo=1),
        embedding_dim=arch.int("embedding_dim", lo=1),
        table_rows=arch.int_list("table_rows", lo=1),
        lookups_per_table=arch.int_list("lookups_per_table", lo=0),
        bottom_mlp=arch.int_list("bottom_mlp", lo=1),
        top_mlp=arch.int_list("top_mlp", lo=1),
        interaction=arch.str("interaction", choices=("dot", "dcn", "cat")),  # type: ignore[arg-type]
        dcn_num_layers=arch.int("dcn_num_layers", 0),
        dcn_low_rank_dim=arch.int("dcn_low_rank_dim", 0),
        **_ranking_inference(r),
    )
    arch.done()
    if len(model.table_rows) != len(model.lookups_per_table):
        raise UserError(f"{r.file}: table_rows and lookups_per_table must have the same length")
    if model.bottom_mlp[-1] != model.embedding_dim:
        raise UserError(f"{r.file}: the last bottom_mlp width must equal embedding_dim ({model.embedding_dim})")
    if model.interaction == "dcn" and not (model.dcn_num_layers and model.dcn_low_rank_dim):
        raise UserError(f"{r.file}: a dcn interaction needs dcn_num_layers and dcn_low_rank_dim")
    return model


def parse_model(data: dict[str, Any], file: str, stem: str) -> Model:
    r = Reader(file, data)
    name = r.str("name")
    if name != stem:
        raise UserError(f"{file}: key 'name' is '{name}' but must equal the file name '{stem}'")
    kind = r.str("kind", choices=("llm", "ranking"))
    model = _parse_llm(r, name) if kind == "llm" else _parse_ranking(r, name)
    r.str("notes", "")
    r.done()
    return model


def load_model(name_or_path: str) -> Model:
    """Load a catalog workload by name (`llama4-maverick`) or any workload TOML by path."""
    path = resolve("workloads", "model", name_or_path)
    return parse_model(read(path), path.name, Path(path).stem)


def list_models() -> list[str]:
    return catalog_names("workloads")
