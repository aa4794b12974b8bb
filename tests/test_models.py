"""Workload catalog: parameter counts against published totals; rejections."""

import tomllib

import pytest

from accelsim.errors import UserError
from accelsim.spec import list_models, load_model
from accelsim.spec.model import parse_model

REQUIRED = {"llama3-8b", "llama3-70b", "llama3.1-405b", "llama2-70b", "llama4-scout", "llama4-maverick",
            "llama4-behemoth", "mixtral-8x7b", "deepseek-v3", "dlrm-v2", "dlrm-rm1", "dlrm-rm2", "dlrm-rm3",
            "qwen3-8b", "qwen3-14b", "qwen3-32b", "qwen3-30b-a3b", "qwen3-235b-a22b", "qwen3-coder-480b-a35b",
            "gpt-oss-20b", "gpt-oss-120b", "gemma3-12b", "gemma3-27b"}

# Published totals (billions): total, active. Sources: the issue / hardware_and_data.md §3.
PUBLISHED = {
    "llama4-scout": (109, 17), "llama4-maverick": (400, 17), "llama3-8b": (8, 8), "llama3-70b": (70, 70),
    "llama3.1-405b": (405, 405), "mixtral-8x7b": (46.7, 12.9), "deepseek-v3": (671, 37),
    "llama4-behemoth": (2000, 288),
}


def test_catalog_has_required_models():
    assert set(list_models()) == REQUIRED


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_published_within_2pct(name):
    m = load_model(name)
    total, active = PUBLISHED[name]
    assert m.total_params / 1e9 == pytest.approx(total, rel=0.02)
    assert m.active_params / 1e9 == pytest.approx(active, rel=0.02)


def test_llama3_8b_exact_count():
    # embeddings 2*V*d + 32 layers of (attention 41.9M + MLP 176.2M + norms) + final norm
    d, v, i = 4096, 128256, 14336
    layer = 2 * d * d + 2 * d * 1024 + 3 * d * i + 2 * d
    assert load_model("llama3-8b").total_params == 2 * v * d + 32 * layer + d


def test_llama4_structure():
    scout, mav = load_model("llama4-scout"), load_model("llama4-maverick")
    assert scout.num_moe_layers == 48 and scout.num_dense_layers == 0
    assert mav.num_moe_layers == 24 and mav.num_dense_layers == 24
    assert mav.moe.top_k == 1 and mav.moe.num_shared_experts == 1
    assert scout.num_local_attention_layers == 36  # every 4th layer is global
    assert load_model("llama4-behemoth").assumptions  # layer shape marked as assumed


def test_deepseek_dense_prefix_and_mla_kv():
    m = load_model("deepseek-v3")
    assert m.num_dense_layers == 3 and m.num_moe_layers == 58
    assert m.kv_elems_per_token_per_layer() == 512 + 64


def test_dlrm_v2_shape():
    m = load_model("dlrm-v2")
    assert sum(m.table_rows) == 204_184_588
    assert m.lookups_per_sample == 214
    assert m.interaction_width == 27 * 128
    assert m.dense_params / 1e6 == pytest.approx(16.0, rel=0.02)  # reference §3.4: ≈16.0 M


def _data(name):
    from accelsim.spec._toml import resolve

    return tomllib.loads(resolve("workloads", "model", name).read_text())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(extra=1), "unknown key 'extra'"),
    (lambda d: d["architecture"].pop("hidden_size"), "architecture.hidden_size' is missing"),
    (lambda d: d["architecture"].update(num_layers=0), "out of range"),
    (lambda d: d["architecture"].update(num_heads="x"), "must be a number"),
    (lambda d: d["moe"].update(top_k=99), "exceeds num_experts"),
    (lambda d: d.update(kind="cnn"), "must be one of llm, ranking"),
    (lambda d: d.update(name="other"), "must equal the file name"),
    (lambda d: d["architecture"].update(num_kv_heads=7), "multiple of num_kv_heads"),
])
def test_llm_rejections(mutate, message):
    d = _data("mixtral-8x7b")
    mutate(d)
    with pytest.raises(UserError, match=message):
        parse_model(d, "mixtral-8x7b.toml", "mixtral-8x7b")


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["architecture"].update(lookups_per_table=[1]), "same length"),
    (lambda d: d["architecture"].update(bottom_mlp=[512, 64]), "must equal embedding_dim"),
    (lambda d: d["architecture"].update(dcn_num_layers=0), "dcn interaction needs"),
    (lambda d: d["architecture"].update(table_rows=[]), "non-empty list"),
])
def test_ranking_rejections(mutate, message):
    d = _data("dlrm-v2")
    mutate(d)
    with pytest.raises(UserError, match=message):
        parse_model(d, "dlrm-v2.toml", "dlrm-v2")


def test_unknown_model_suggests_close_names():
    with pytest.raises(UserError, match="did you mean llama4-maverick"):
        load_model("llama4-maverik")
