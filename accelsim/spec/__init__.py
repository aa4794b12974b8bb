"""Typed, validated catalogs: chips (`hwmodels/*.toml`) and workloads (`workloads/*.toml`).

Every bad value fails with a `UserError` that names the file, the key and what was expected.
The TOML reading layer (`Reader`, `read`, `read_user_file`, `resolve`, `catalog_dir`) is public here
for the other packages' own files (studies, clusters, failure models); `spec._toml` is private.
"""

from accelsim.spec._toml import Reader, catalog_dir, read, read_user_file, resolve
from accelsim.spec.chip import DTYPES, Chip, Value, list_chips, load_chip
from accelsim.spec.model import LLM, Model, Ranking, list_models, load_model

__all__ = [
    "DTYPES",
    "LLM",
    "Chip",
    "Model",
    "Ranking",
    "Reader",
    "Value",
    "catalog_dir",
    "list_chips",
    "list_models",
    "load_chip",
    "load_model",
    "read",
    "read_user_file",
    "resolve",
]
