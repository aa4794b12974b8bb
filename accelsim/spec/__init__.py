"""Typed, validated catalogs: chips (`hwmodels/*.toml`) and workloads (`workloads/*.toml`).

Every bad value fails with a `UserError` that names the file, the key and what was expected.
"""

from accelsim.spec.chip import DTYPES, Chip, Value, list_chips, load_chip
from accelsim.spec.model import LLM, Model, Ranking, list_models, load_model

__all__ = [
    "DTYPES",
    "LLM",
    "Chip",
    "Model",
    "Ranking",
    "Value",
    "list_chips",
    "list_models",
    "load_chip",
    "load_model",
]
