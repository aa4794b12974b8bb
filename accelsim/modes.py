"""Serving modes that change what a step computes: speculative decoding, prefix caching and
multimodal (image) prompts. Pure functions over the spine's lowering (`graph.llm_ops`) and costing
(`perf.cost`); `predict.llm_metrics` calls `prefill_shape`, `vision_cost` and `decode_step`.

Speculative decoding (draft model, or MTP heads): per step each sequence runs k cheap draft steps,
then one target step verifies the k drafts plus the next token. With acceptance a per draft token
(i.i.d.), a step emits E = (1 - a^(k+1)) / (1 - a) tokens per sequence. With a draft step costing
c of a target decode step and verification costing one target step, the speed-up over plain
decoding is E / (k c + 1) = (1 - a^(k+1)) / ((1 - a)(k c + 1)). Here verification is lowered for
real: the GEMMs see (k + 1) rows per sequence, attention reads each sequence's KV once for its
k + 1 queries; so the speed-up meets the closed form where decode is memory bound and falls below
it as the batch grows.

Prefix caching: a hit rate h means the first h of every prompt's KV is already cached. Prefill
computes the (1 - h) L new tokens only; they attend to the cached prefix too, so linear layers
lose exactly h of their FLOPs and causal attention loses h^2 (the prefix-prefix triangle).

Images: `image_tokens` LLM tokens per prompt (Llama 4: 144 per 336 px tile after pixel shuffle)
join the prompt, and the vision encoder runs over their patches during prefill.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from accelsim import ops as O
from accelsim.errors import UserError
from accelsim.graph import Parallel, Precision, llm_ops
from accelsim.perf import Cost, Efficiency, HwVec, cost
from accelsim.spec.model import LLM

DraftKind = Literal["draft", "mtp"]


@dataclass(frozen=True)
class SpecDecode:
    kind: DraftKind
    k: int  # draft tokens per step
    accept: float  # acceptance probability of each draft token
    draft: str | None = None  # draft model name (kind == "draft")

    def validate(self) -> None:
        if not 1 <= self.k <= 16:
            raise UserError(f"--spec-decode k must be in 1..16, got {self.k}")
        if not 0.0 <= self.accept <= 1.0:
            raise UserError(f"--spec-decode accept must be in [0, 1], got {self.accept}")
        if self.kind == "draft" and not self.draft:
            raise UserError("--spec-decode draft=MODEL needs a model name")

    @property
    def tokens_per_step(self) -> float:
        return expected_tokens_per_step(self.accept, self.k)

    def label(self) -> str:
        head = f"draft={self.draft}" if self.kind == "draft" else f"mtp={self.k}"
        return f"{head},k={self.k},accept={self.accept:g}"


def parse_spec_decode(text: str) -> SpecDecode:
    """`draft=MODEL,k=K,accept=A` or `mtp=K,accept=A`; one-line UserError otherwise."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UserError(f"--spec-decode '{text}': expected draft=MODEL,k=K,accept=A or mtp=K,accept=A")
        fields[key.strip()] = value.strip()
    unknown = set(fields) - {"draft", "mtp", "k", "accept"}
    if unknown or ("draft" in fields) == ("mtp" in fields) or "accept" not in fields:
        raise UserError(f"--spec-decode '{text}': expected draft=MODEL,k=K,accept=A or mtp=K,accept=A")
    try:
        accept = float(fields["accept"])
        k = int(fields["mtp"] if "mtp" in fields else fields.get("k", ""))
    except ValueError:
        raise UserError(f"--spec-decode '{text}': k must be an integer and accept a number") from None
    spec = (SpecDecode("mtp", k, accept) if "mtp" in fields
            else SpecDecode("draft", k, accept, fields["draft"]))
    spec.validate()
    return spec


def expected_tokens_per_step(accept: ArrayLike, k: int) -> np.ndarray:
    """Tokens a sequence emits per verification step: 1 + a + ... + a^k."""
    a = np.asarray(accept, dtype=np.float64)
    return np.sum([a ** i for i in range(k + 1)], axis=0)


def spec_decode_speedup(accept: float, k: int, c: float) -> float:
    """The closed form (1 - a^(k+1)) / ((1 - a)(k c + 1)) (limit k + 1 over k c + 1 at a = 1)."""
    e = k + 1.0 if accept == 1.0 else (1 - accept ** (k + 1)) / (1 - accept)
    return e / (k * c + 1)


@dataclass(frozen=True)
class Modes:
    """What a request stream asks of the engine beyond plain prefill + decode."""

    spec: SpecDecode | None = None
    prefix_hit: float = 0.0  # share of each prompt whose KV is cached
    image_tokens: int = 0  # LLM tokens of image content per prompt
    # Every request of exactly input_len / output_len, all started together (an offline fixed-length
    # benchmark): the batch runs in lockstep waves (prefill, then decode), not as a steady mix
    # (`predict.llm_metrics`).
    fixed_lengths: bool = False

    def validate(self, model: LLM) -> None:
        if not 0.0 <= self.prefix_hit < 1.0:
            raise UserError(f"--prefix-hit must be in [0, 1), got {self.prefix_hit}")
        if self.image_tokens < 0:
            raise UserError(f"--image-tokens must be >= 0, got {self.image_tokens}")
        if self.image_tokens and vision_encoder(model) is None:
            raise UserError(f"--image-tokens: {model.name} has no vision encoder in accelsim "
                            f"(known: {', '.join(sorted(VISION_ENCODERS))})")
        if self.spec is not None:
            self.spec.validate()

    @property
    def plain(self) -> bool:
        return self.spec is None and not self.prefix_hit and not self.image_tokens

    def prompt_len(self, input_len: int) -> int:
        """Tokens a prompt holds in the KV cache: its text plus its image tokens."""
        return input_len + self.image_tokens

    def to_dict(self) -> dict[str, object]:
        return {"spec_decode": self.spec.label() if self.spec else None, "prefix_hit": self.prefix_hit,
                "image_tokens": self.image_tokens, "fixed_lengths": self.fixed_lengths}


PLAIN = Modes()


def prefill_shape(prompt_len: int, prefix_hit: float) -> tuple[float, float]:
    """(new tokens to compute, their mean attended context) of one prompt of `prompt_len` tokens
    whose first `prefix_hit` share is cached: (1 - h) L tokens at context (h L + L) / 2."""
    new = (1.0 - prefix_hit) * prompt_len
    return new, prefix_hit * prompt_len + new / 2


# ---- speculative decoding -----------------------------------------------------------------------
def _with_queries(op: O.Op, q: int) -> O.Op:
    """An attention decode op whose sequences each bring q queries: q x the FLOPs and query bytes,
    the KV read once."""
    return dataclasses.replace(op, flops=op.flops * q)


def verify_ops(model: LLM, par: Parallel, prec: Precision, batch: ArrayLike, context: ArrayLike,
               k: int) -> list[O.Op]:
    """The target step that checks k drafts: GEMMs over (k + 1) rows per sequence, attention over
    each sequence's KV once for its k + 1 queries."""
    b = np.asarray(batch, dtype=np.float64)
    rows = [o for o in llm_ops(model, par, prec, "decode", b * (k + 1), context)
            if o.kind is not O.OpKind.ATTN_DECODE]
    attn = [_with_queries(o, k + 1) for o in llm_ops(model, par, prec, "decode", b, context)
            if o.kind is O.OpKind.ATTN_DECODE]
    return rows + attn


def draft_ops(model: LLM, spec: SpecDecode, par: Parallel, prec: Precision, batch: ArrayLike,
              context: ArrayLike) -> list[O.Op]:
    """One draft step for `batch` sequences. MTP: one transformer block of the target plus its LM
    head (the target lowered as if it had one layer: `pp = num_layers`). A draft model: its own
    decode step, on the same chips with the widest TP its heads allow."""
    if spec.kind == "mtp":
        return llm_ops(model, Parallel(par.tp, par.ep, model.num_layers, par.dp), prec, "decode", batch, context)
    draft = _draft_model(spec)
    return llm_ops(draft, Parallel(_draft_tp(draft, par.tp), 1, 1, par.dp), prec, "decode", batch, context)


def _draft_model(spec: SpecDecode) -> LLM:
    from accelsim.spec import load_model

    draft = load_model(spec.draft or "")
    if not isinstance(draft, LLM):
        raise UserError(f"--spec-decode draft={spec.draft} is not an LLM")
    return draft


def _draft_tp(draft: LLM, tp: int) -> int:
    """The widest TP up to the target's that the draft's heads allow."""
    while tp > 1 and (draft.num_heads % tp or (draft.num_kv_heads % tp and tp % draft.num_kv_heads)):
        tp //= 2
    return tp


@dataclass(frozen=True)
class DecodeStep:
    """One decode step of a replica stage: its cost and the tokens each sequence emits."""

    cost: Cost
    tokens_per_seq: float
    draft_cost_ratio: float | None = None  # c: a draft step over a plain target step (spec decode)


def decode_step(hw: HwVec, model: LLM, par: Parallel, prec: Precision, batch: ArrayLike, context: ArrayLike,
                eff: Efficiency, modes: Modes = PLAIN) -> DecodeStep:
    """Cost of one decode step of `batch` sequences (per pipeline stage) at mean `context`."""
    plain = cost(llm_ops(model, par, prec, "decode", batch, context), hw, eff)
    spec = modes.spec
    if spec is None:
        return DecodeStep(plain, 1.0)
    draft = cost(draft_ops(model, spec, par, prec, batch, context), hw, eff)
    step = cost(verify_ops(model, par, prec, batch, context, spec.k), hw, eff) + draft.scale(spec.k)
    c = float(np.mean(draft.total_s / plain.total_s))
    return DecodeStep(step, float(spec.tokens_per_step), c)


def draft_weight_bytes_per_chip(spec: SpecDecode | None, par: Parallel, prec: Precision) -> float:
    """Weights the draft adds to each chip (MTP heads are counted in the target's checkpoint)."""
    if spec is None or spec.kind == "mtp":
        return 0.0
    draft = _draft_model(spec)
    return float(draft.total_params) * prec.w_bytes / _draft_tp(draft, par.tp)


# ---- images -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VisionEncoder:
    """A ViT over image tiles, then pixel shuffle and an MLP projector into the LLM's width."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int  # GELU MLP (two matrices)
    image_size: int
    patch_size: int
    pixel_shuffle_ratio: float
    projector_dim: int
    source: str

    @property
    def patches_per_tile(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def tokens_per_tile(self) -> int:
        """LLM tokens one tile becomes: pixel shuffle merges 1/ratio^2 patches into one token."""
        return int(self.patches_per_tile * self.pixel_shuffle_ratio ** 2)


# Llama 4 Scout and Maverick share one vision tower.
_LLAMA4_VISION = VisionEncoder(
    hidden_size=1408, num_layers=34, num_heads=16, intermediate_size=5632, image_size=336, patch_size=14,
    pixel_shuffle_ratio=0.5, projector_dim=4096,
    source="HF config meta-llama/Llama-4-Scout-17B-16E vision_config (mirrored in public test fixtures): "
           "hidden 1408, 34 layers, 16 heads, MLP 5632, 336 px tiles of 14 px patches, pixel shuffle 0.5, "
           "projector 4096")
VISION_ENCODERS: dict[str, VisionEncoder] = {"llama4-scout": _LLAMA4_VISION, "llama4-maverick": _LLAMA4_VISION}


def vision_encoder(model: LLM) -> VisionEncoder | None:
    return VISION_ENCODERS.get(model.name)


def vision_ops(model: LLM, prec: Precision, tp: int, prompts: ArrayLike, image_tokens: int) -> list[O.Op]:
    """The encoder's work for `prompts` prompts of `image_tokens` image tokens each, per chip of a
    tp group (heads and MLP split tp ways, as the LLM's). Attention is full within each tile."""
    enc = vision_encoder(model)
    if enc is None or not image_tokens:
        return []
    tiles = np.asarray(prompts, dtype=np.float64) * math.ceil(image_tokens / enc.tokens_per_tile)
    seq = enc.patches_per_tile + 1  # + the class token
    rows = tiles * seq
    d, hd = enc.hidden_size, enc.hidden_size // enc.num_heads
    a = prec.a_bytes
    g = dict(dtype="bf16", a_bytes=a, w_bytes=2.0, out_bytes=a)  # the vision tower is served in bf16
    n = enc.num_layers
    shuffled = enc.tokens_per_tile * tiles
    return [
        O.gemm("vit_qkv", rows, 3 * d / tp, d, **g, calls=n),
        O.attention_prefill("vit_attention", rows, seq, heads=enc.num_heads / tp, qk_dim=hd, v_dim=hd,
                            kv_elems_per_token=2 * d / tp, dtype="bf16", act_bytes=a, kv_bytes=a, calls=n),
        O.gemm("vit_o", rows, d, d / tp, **g, calls=n),
        O.gemm("vit_mlp_up", rows, enc.intermediate_size / tp, d, **g, calls=n),
        O.gemm("vit_mlp_down", rows, d, enc.intermediate_size / tp, **g, calls=n),
        O.elementwise("vit_norms_act", rows * (2 * d + enc.intermediate_size / tp), dtype="bf16",
                      bytes_per_elem=2 * a, calls=n),
        O.gemm("vit_adapter", shuffled, enc.projector_dim, d / enc.pixel_shuffle_ratio ** 2 / tp, **g),
        O.gemm("vit_projector", shuffled, model.hidden_size, enc.projector_dim / tp, **g),
    ]


def vision_cost(hw: HwVec, model: LLM, par: Parallel, prec: Precision, prompts: ArrayLike, eff: Efficiency,
                modes: Modes) -> Cost | None:
    """Encoder cost of `prompts` prompts per chip (each attention-DP group encodes its own), or None."""
    ops = vision_ops(model, prec, par.tp, np.asarray(prompts, dtype=np.float64) / par.dp, modes.image_tokens)
    return cost(ops, hw, eff) if ops else None
