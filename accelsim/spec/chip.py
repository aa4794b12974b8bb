"""Chip specifications: one TOML file per chip in `hwmodels/`, loaded into a frozen `Chip`.

Every numeric field is a table `{ value = ..., source = "..." }` or `{ value = ..., assumed = "why" }`,
so each number a report shows can say where it came from. SI units, units in the key names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from accelsim.errors import UserError
from accelsim.spec._toml import Reader, catalog_names, read, resolve
from accelsim.validate import MAX_WHAT_IF, check_range

Dtype = Literal["fp32", "bf16", "fp8", "fp4", "int8"]
DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp8", "fp4", "int8")
# The formats a model is served in (`--dtype`, `--kv-dtype` of every command).
# mxfp4: MoE expert weights in OCP MXFP4, every other weight in bf16 (as gpt-oss ships); weight-only,
# so its matmuls compute in bf16 (`_FALLBACK`).
ServingDtype = Literal["bf16", "fp8", "fp4", "mxfp4"]
SERVING_DTYPES: tuple[ServingDtype, ...] = ("bf16", "fp8", "fp4", "mxfp4")
# The chip values a what-if may scale (`Chip.scaled`, `--what-if KEY=FACTOR`, the dashboard sliders).
WhatIfKey = Literal["mem_bw", "flops", "capacity", "tdp"]
WHAT_IF_KEYS: tuple[WhatIfKey, ...] = ("mem_bw", "flops", "capacity", "tdp")
# Storage bytes per element. fp4 carries one 8-bit scale per 32 elements (OCP MX), hence 4.25 bits.
DTYPE_BYTES: Mapping[str, float] = MappingProxyType(
    {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 4.25 / 8, "mxfp4": 4.25 / 8}
)
# When a chip has no unit for a format it computes in the next wider one it has.
_FALLBACK = {"fp4": ("fp4", "fp8", "bf16"), "fp8": ("fp8", "bf16"), "int8": ("int8", "fp8", "bf16"),
             "bf16": ("bf16",), "fp32": ("fp32", "bf16"), "mxfp4": ("bf16",)}

Family = Literal["gpu", "mtia", "tpu", "cpu"]

# key -> (lower, upper) plausibility bounds; outside them the file is wrong, not the chip.
_SPEC_KEYS: dict[str, tuple[float, float, bool]] = {
    # name: (lo, hi, required)
    "mem_capacity_bytes": (1e8, 1e13, True),
    "mem_bw_bytes_per_s": (1e10, 1e15, True),
    "sram_bytes": (1e5, 1e11, False),
    "sram_bw_bytes_per_s": (1e10, 1e17, False),
    "tdp_w": (1.0, 1e5, True),
    "idle_w": (0.1, 1e5, True),
    "scale_up_bw_bytes_per_s": (1e9, 1e14, True),
    "scale_up_domain_size": (1, 1e6, True),
    "scale_out_bw_bytes_per_s": (1e8, 1e13, True),
}
_FLOPS_RANGE = (1e9, 1e18)


@dataclass(frozen=True)
class Value:
    """One number and where it came from: exactly one of `source` or `assumed` is set."""

    value: float
    source: str | None = None
    assumed: str | None = None

    @property
    def is_assumed(self) -> bool:
        return self.assumed is not None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"value": self.value}
        d.update({"source": self.source} if self.source else {"assumed": self.assumed})
        return d


@dataclass(frozen=True)
class Chip:
    name: str
    display_name: str
    vendor: str
    family: Family
    availability_year: int
    peak_flops: Mapping[str, float]
    mem_capacity_bytes: float
    mem_bw_bytes_per_s: float
    tdp_w: float
    idle_w: float
    scale_up_bw_bytes_per_s: float
    scale_up_domain_size: int
    scale_out_bw_bytes_per_s: float
    sram_bytes: float | None = None
    sram_bw_bytes_per_s: float | None = None
    provenance: Mapping[str, Value] = field(default_factory=dict, compare=False)
    what_if: Mapping[str, float] = field(default_factory=dict)

    def compute_dtype(self, dtype: str) -> str:
        """The format this chip actually computes `dtype` in (fp4 on H100 runs as fp8)."""
        for candidate in _FALLBACK[dtype]:
            if candidate in self.peak_flops:
                return candidate
        raise UserError(f"chip '{self.name}' has no compute rate for {dtype} or a wider format")

    def flops(self, dtype: str) -> float:
        return self.peak_flops[self.compute_dtype(dtype)]

    @property
    def assumed_keys(self) -> list[str]:
        return sorted(k for k, v in self.provenance.items() if v.is_assumed)

    def scaled(self, *, mem_bw: float = 1.0, flops: float = 1.0, capacity: float = 1.0,
               tdp: float = 1.0) -> Chip:
        """A what-if variant: multiply bandwidth, every FLOP rate, capacity or TDP (idle scales with TDP)."""
        factors = {"mem_bw": mem_bw, "flops": flops, "capacity": capacity, "tdp": tdp}
        for key, f in factors.items():  # a factor beyond 1/1000..1000x is a typo, and overflows a model
            check_range(f, f"what-if factor {key}", lo=1 / MAX_WHAT_IF, hi=MAX_WHAT_IF, exc=UserError)
        merged = {k: self.what_if.get(k, 1.0) * f for k, f in factors.items()}
        return dataclasses.replace(
            self,
            peak_flops=MappingProxyType({k: v * flops for k, v in self.peak_flops.items()}),
            mem_bw_bytes_per_s=self.mem_bw_bytes_per_s * mem_bw,
            mem_capacity_bytes=self.mem_capacity_bytes * capacity,
            tdp_w=self.tdp_w * tdp,
            idle_w=self.idle_w * tdp,
            what_if=MappingProxyType({k: v for k, v in merged.items() if v != 1.0}),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of `accelsim hw show`: values, then each value's source or assumption."""
        d: dict[str, Any] = {
            "name": self.name,
            "display_name": self.display_name,
            "vendor": self.vendor,
            "family": self.family,
            "availability_year": self.availability_year,
            "peak_flops": dict(self.peak_flops),
        }
        for key in _SPEC_KEYS:
            d[key] = getattr(self, key)
        d["provenance"] = {k: v.to_dict() for k, v in sorted(self.provenance.items())}
        d["assumed"] = self.assumed_keys
        if self.what_if:
            d["what_if"] = dict(self.what_if)
        return d


def read_value(r: Reader, key: str, lo: float, hi: float, integer: bool = False) -> Value:
    """`{ value = ..., source = "..." }` or `{ value = ..., assumed = "..." }` at `key`: the number in
    [lo, hi] and exactly one non-empty provenance text (every sourced data file uses this form)."""
    t = r.table_(key)
    assert t is not None
    v = t.number("value", lo=lo, hi=hi, integer=integer)
    source = t.str("source", None) if t.has("source") else None
    assumed = t.str("assumed", None) if t.has("assumed") else None
    t.done()
    if (source is None) == (assumed is None):
        raise UserError(f"{r.where(key)} needs exactly one of 'source' or 'assumed' (a one-line reason)")
    if not (source or assumed or "").strip():
        raise UserError(f"{r.where(key)} has an empty source/assumed text")
    return Value(v, source, assumed)


def parse_chip(data: dict[str, Any], file: str, stem: str) -> Chip:
    r = Reader(file, data)
    name = r.str("name")
    if name != stem:
        raise UserError(f"{file}: key 'name' is '{name}' but must equal the file name '{stem}'")
    prov: dict[str, Value] = {}
    year = read_value(r, "availability_year", 2010, 2040, integer=True)
    prov["availability_year"] = year
    flops_table = r.table_("peak_flops_per_s")
    assert flops_table is not None
    peak: dict[str, float] = {}
    for dtype in DTYPES:
        if flops_table.has(dtype):
            v = read_value(flops_table, dtype, *_FLOPS_RANGE)
            peak[dtype] = v.value
            prov[f"peak_flops.{dtype}"] = v
    flops_table.done()
    if "bf16" not in peak:
        raise UserError(f"{file}: key 'peak_flops_per_s.bf16' is missing (every chip needs a bf16 rate)")
    specs: dict[str, Any] = {}
    for key, (lo, hi, required) in _SPEC_KEYS.items():
        if not required and not r.has(key):
            continue
        v = read_value(r, key, lo, hi, integer=(key == "scale_up_domain_size"))
        prov[key] = v
        specs[key] = int(v.value) if key == "scale_up_domain_size" else v.value
    chip = Chip(
        name=name,
        display_name=r.str("display_name"),
        vendor=r.str("vendor"),
        family=r.str("family", choices=("gpu", "mtia", "tpu", "cpu")),  # type: ignore[arg-type]
        availability_year=int(year.value),
        peak_flops=MappingProxyType(peak),
        provenance=MappingProxyType(prov),
        **specs,
    )
    r.str("notes", "")
    r.done()
    if chip.idle_w >= chip.tdp_w:
        raise UserError(f"{file}: key 'idle_w' ({chip.idle_w:g} W) must be below tdp_w ({chip.tdp_w:g} W)")
    return chip


def load_chip(name_or_path: str) -> Chip:
    """Load a catalog chip by name (`mtia-450`) or any chip TOML by path."""
    path = resolve("hwmodels", "chip", name_or_path)
    return parse_chip(read(path), path.name, Path(path).stem)


def list_chips() -> list[str]:
    return catalog_names("hwmodels")
