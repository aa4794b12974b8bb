"""Deployment catalog (`accelsim/data/deployment.toml`): per-family server/rack values (per-chip
overrides), site PUE, availability rates and the power-capping exponent, each with its source or
assumption. Catalog data like the chips, so the core (power's energy report) and the planner both
read it without the core importing the planner."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from accelsim.spec._toml import Reader
from accelsim.spec.chip import Chip, Value, read_value

FILE = "deployment.toml"
RACK_KEYS: dict[str, tuple[float, float]] = {
    "host_overhead_w_per_chip": (0.0, 1e5),
    "chips_per_server": (1, 1e4),
    "chips_per_rack": (1, 1e5),
    "rack_power_limit_w": (1.0, 1e8),
}
_INT_KEYS = ("chips_per_server", "chips_per_rack")


@dataclass(frozen=True)
class RackDefaults:
    host_overhead_w_per_chip: float
    chips_per_server: int
    chips_per_rack: int
    rack_power_limit_w: float
    provenance: dict[str, Value]

    @property
    def assumptions(self) -> dict[str, str]:
        return {k: v.assumed for k, v in self.provenance.items() if v.assumed}


@functools.cache
def _load() -> dict[str, Any]:
    with resources.files("accelsim.data").joinpath(FILE).open("rb") as fh:
        data = tomllib.load(fh)
    out: dict[str, Any] = {"family": {}, "chip": {}}
    r = Reader(FILE, data)
    for group in ("family", "chip"):
        tables = r.table_(group)
        assert tables is not None
        for name in list(tables.table):
            t = tables.table_(name)
            assert t is not None
            out[group][name] = {k: read_value(t, k, *RACK_KEYS[k], integer=k in _INT_KEYS)
                                for k in RACK_KEYS if t.has(k)}
            t.done()
        tables.done()
    for section, keys in (("site", {"pue": (1.0, 3.0)}),
                          ("availability", {"failures_per_chip_hour": (0.0, 1.0), "mttr_h": (0.0, 1e4)}),
                          ("power_cap", {"dvfs_exponent": (0.5, 5.0)})):
        t = r.table_(section)
        assert t is not None
        out[section] = {k: read_value(t, k, *bounds) for k, bounds in keys.items()}
        t.done()
    r.done()
    return out


def rack_defaults(chip: Chip) -> RackDefaults:
    """The chip's server/rack values: its [chip.NAME] entries over its [family.F] entries."""
    data = _load()
    merged: dict[str, Value] = {**data["family"].get(chip.family, {}), **data["chip"].get(chip.name, {})}
    missing = sorted(set(RACK_KEYS) - set(merged))
    if missing:  # a family without defaults is a data-file bug, not user input
        raise KeyError(f"{FILE}: no '{missing[0]}' for chip {chip.name} (family {chip.family})")
    vals = {k: (int(v.value) if k in _INT_KEYS else v.value) for k, v in merged.items()}
    return RackDefaults(**vals, provenance=merged)


def value(section: str, key: str) -> Value:
    """A scalar default with its provenance, e.g. value('availability', 'mttr_h')."""
    return _load()[section][key]
