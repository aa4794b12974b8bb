"""Every sourced catalog value cites something a user can open: a URL, a repository path, a paper
or a named public document; never a private notes file or its section numbers."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([*ROOT.glob("hwmodels/*.toml"), *ROOT.glob("workloads/*.toml"), *ROOT.glob("accelsim/data/*.toml")])
# what an openable citation looks like: a domain, an owner/repo:path, a paper id, a known public document
OPENABLE = re.compile(r"[a-z0-9-]+\.(com|org|io|net|dev|de|cz|app|blog|co|cn|news|ai|gov)\b|[\w.-]+/[\w.-]+:[\w/.-]+|"
                      r"arXiv|HF config|mlcommons|aiconfigurator|DeepRecSys|llama-models|TensorRT-LLM|"
                      r"datasheet|whitepaper|Meta, '|ISCA|fitted|accelsim\.|benchmarks/reference/")


def _texts(node, key=""):
    """(key, text) of every `source` / `assumed` string in a parsed TOML tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("source", "assumed") and isinstance(v, str):
                yield f"{key}.{k}", v
            else:
                yield from _texts(v, f"{key}.{k}" if key else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _texts(v, f"{key}[{i}]")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sources_are_openable(path):
    texts = list(_texts(tomllib.loads(path.read_text())))
    for key, text in texts:
        assert "hardware_and_data" not in text and "§" not in text, f"{key}: {text}"
        if key.endswith(".source"):
            assert OPENABLE.search(text), f"{path.name} {key}: no URL, repository or document in '{text}'"


def test_the_files_were_found():
    assert len(FILES) > 20 and any(p.parent.name == "hwmodels" for p in FILES)
