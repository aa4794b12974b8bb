"""The chip catalog (`hwmodels/*.toml`) and every way `accelsim.spec.chip` rejects a bad chip file."""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest

from accelsim.errors import UserError
from accelsim.spec import DTYPES, Chip, list_chips, load_chip
from accelsim.spec._toml import catalog_dir
from accelsim.spec.chip import parse_chip

REQUIRED_CHIPS = {
    "h100-sxm", "h200-sxm", "b200", "gb200", "mi300x", "mi355x",
    "mtia-v1", "mtia-v2", "mtia-300", "mtia-400", "mtia-450", "mtia-500",
    "tpu-v5e", "tpu-v6e", "tpu7x",
    "a100-sxm", "b300", "gb300", "l40s",  # systems with AIConfigurator measurements (accelsim.gpudata)
}
NEW_MTIA = ("mtia-300", "mtia-400", "mtia-450", "mtia-500")
HW = catalog_dir("hwmodels")


def _raw(name: str) -> dict[str, Any]:
    with (HW / f"{name}.toml").open("rb") as fh:
        return tomllib.load(fh)


def _parse(data: dict[str, Any], stem: str = "mtia-400") -> Chip:
    return parse_chip(data, f"{stem}.toml", stem)


# --- the catalog ---------------------------------------------------------------------------------------


def test_list_chips_is_exactly_the_catalog():
    assert set(list_chips()) == REQUIRED_CHIPS
    assert len(list_chips()) == len(REQUIRED_CHIPS)
    assert list_chips() == sorted(list_chips())


@pytest.mark.parametrize("name", sorted(REQUIRED_CHIPS))
def test_every_chip_loads_with_full_provenance(name: str):
    chip = load_chip(name)
    assert chip.name == name
    assert chip.family in ("gpu", "mtia", "tpu")
    assert "bf16" in chip.peak_flops
    assert set(chip.peak_flops) <= set(DTYPES)
    assert 0 < chip.idle_w < chip.tdp_w
    assert isinstance(chip.scale_up_domain_size, int) and chip.scale_up_domain_size >= 1
    # Every number has a non-empty source or a non-empty assumption, never both.
    for key, value in chip.provenance.items():
        assert (value.source is None) != (value.assumed is None), key
        assert (value.source or value.assumed or "").strip(), key
    required = {"availability_year", "mem_capacity_bytes", "mem_bw_bytes_per_s", "tdp_w", "idle_w",
                "scale_up_bw_bytes_per_s", "scale_up_domain_size", "scale_out_bw_bytes_per_s",
                "peak_flops.bf16"}
    assert required <= set(chip.provenance)
    # Narrower formats are never slower than wider ones.
    order = [d for d in ("fp32", "bf16", "fp8", "fp4") if d in chip.peak_flops]
    rates = [chip.peak_flops[d] for d in order]
    assert rates == sorted(rates)
    # to_dict round-trips the provenance and the assumed list.
    d = chip.to_dict()
    assert d["assumed"] == chip.assumed_keys
    assert set(d["provenance"]) == set(chip.provenance)


@pytest.mark.parametrize("name", sorted(REQUIRED_CHIPS))
def test_file_layout_matches_the_example(name: str):
    text = (HW / f"{name}.toml").read_text()
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == f'name = "{name}"'
    headers = [ln for ln in lines if ln.startswith("[")]
    assert headers == ["[peak_flops_per_s]"]
    assert lines[-1].split(" = ")[0] in DTYPES  # the table is last: all flat keys come before it


@pytest.mark.parametrize("name", NEW_MTIA)
def test_unpublished_mtia_values_are_flagged_assumed(name: str):
    chip = load_chip(name)
    for key in ("sram_bytes", "sram_bw_bytes_per_s", "idle_w", "scale_up_bw_bytes_per_s"):
        assert key in chip.assumed_keys, key
    # Only MTIA 400's 72-chip domain is published; the others are assumed.
    if name == "mtia-400":
        assert chip.scale_up_domain_size == 72
        assert "scale_up_domain_size" not in chip.assumed_keys
    else:
        assert "scale_up_domain_size" in chip.assumed_keys
    for key in ("mem_capacity_bytes", "mem_bw_bytes_per_s", "tdp_w", "peak_flops.bf16", "peak_flops.fp8"):
        assert key not in chip.assumed_keys, key


def test_published_mtia_table():
    expect = {  # bf16, fp8, fp4 (PF), HBM GB, HBM TB/s, TDP W, year
        "mtia-300": (0.6, 1.2, None, 216, 6.12, 800, 2026),
        "mtia-400": (3, 6, 12, 288, 9.2, 1200, 2026),
        "mtia-450": (3.5, 7, 21, 288, 18.4, 1400, 2027),
        "mtia-500": (5, 10, 30, 384, 27.6, 1700, 2027),
    }
    for name, (bf16, fp8, fp4, cap, bw, tdp, year) in expect.items():
        c = load_chip(name)
        assert c.peak_flops["bf16"] == pytest.approx(bf16 * 1e15)
        assert c.peak_flops["fp8"] == pytest.approx(fp8 * 1e15)
        if fp4 is None:
            assert "fp4" not in c.peak_flops
        else:
            assert c.peak_flops["fp4"] == pytest.approx(fp4 * 1e15)
        assert c.mem_capacity_bytes == pytest.approx(cap * 1e9)
        assert c.mem_bw_bytes_per_s == pytest.approx(bw * 1e12)
        assert c.tdp_w == tdp
        assert c.availability_year == year


def test_roadmap_claims_300_to_500():
    m300, m500 = load_chip("mtia-300"), load_chip("mtia-500")
    assert m500.mem_bw_bytes_per_s / m300.mem_bw_bytes_per_s == pytest.approx(4.5, rel=0.01)
    assert m500.peak_flops["fp4"] / m300.peak_flops["fp8"] == pytest.approx(25.0, rel=0.01)


def test_tpu7x_capacity_is_192_gib():
    assert load_chip("tpu7x").mem_capacity_bytes == pytest.approx(192 * 2**30, rel=1e-3)


# --- Chip behaviour -------------------------------------------------------------------------------------


def test_compute_dtype_fallbacks():
    h100 = load_chip("h100-sxm")
    assert h100.compute_dtype("fp4") == "fp8"
    assert h100.flops("fp4") == h100.peak_flops["fp8"]
    assert h100.compute_dtype("bf16") == "bf16"
    v5e = load_chip("tpu-v5e")
    assert v5e.compute_dtype("fp8") == "bf16"
    assert v5e.compute_dtype("fp4") == "bf16"
    assert v5e.flops("fp8") == v5e.peak_flops["bf16"]
    assert v5e.compute_dtype("int8") == "int8"
    assert load_chip("mtia-300").compute_dtype("fp4") == "fp8"
    assert load_chip("mtia-500").compute_dtype("fp4") == "fp4"


def test_compute_dtype_with_no_usable_rate_raises():
    h100 = load_chip("h100-sxm")
    bare = dataclasses.replace(h100, peak_flops={"int8": 1e12})
    with pytest.raises(UserError, match=r"h100-sxm.*bf16"):
        bare.compute_dtype("bf16")


def test_scaled_multiplies_fields_and_records_what_if():
    base = load_chip("mtia-400")
    s = base.scaled(mem_bw=2.0, flops=0.5, capacity=1.5, tdp=1.25)
    assert s.mem_bw_bytes_per_s == pytest.approx(base.mem_bw_bytes_per_s * 2)
    for k, v in base.peak_flops.items():
        assert s.peak_flops[k] == pytest.approx(v * 0.5)
    assert s.mem_capacity_bytes == pytest.approx(base.mem_capacity_bytes * 1.5)
    assert s.tdp_w == pytest.approx(base.tdp_w * 1.25)
    assert s.idle_w == pytest.approx(base.idle_w * 1.25)
    # Untouched fields stay the same.
    assert s.scale_up_bw_bytes_per_s == base.scale_up_bw_bytes_per_s
    assert s.sram_bytes == base.sram_bytes
    assert s.name == base.name
    assert dict(s.what_if) == {"mem_bw": 2.0, "flops": 0.5, "capacity": 1.5, "tdp": 1.25}
    assert s.to_dict()["what_if"] == dict(s.what_if)
    assert not base.what_if and "what_if" not in base.to_dict()
    # Factors compose; a factor back to 1.0 drops out.
    s2 = s.scaled(mem_bw=0.5, flops=3.0)
    assert dict(s2.what_if) == {"flops": 1.5, "capacity": 1.5, "tdp": 1.25}
    assert base.scaled() == base


@pytest.mark.parametrize("kwargs", [{"mem_bw": 0.0}, {"flops": -1.0}, {"capacity": 0}, {"tdp": -0.5},
                                    {"mem_bw": math.nan}, {"flops": math.inf}, {"capacity": 1e308}])
def test_scaled_rejects_non_positive_factor(kwargs: dict[str, float]):
    key = next(iter(kwargs))
    with pytest.raises(UserError, match=f"what-if factor {key} must be (in|a finite)"):
        load_chip("h100-sxm").scaled(**kwargs)


# --- rejection paths ------------------------------------------------------------------------------------


def test_unmodified_dict_parses():
    data = _raw("mtia-400")
    assert _parse(copy.deepcopy(data)) == load_chip("mtia-400")


def _rejects(data: dict[str, Any], *fragments: str, stem: str = "mtia-400") -> str:
    with pytest.raises(UserError) as exc:
        _parse(data, stem)
    msg = str(exc.value)
    assert f"{stem}.toml" in msg, msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return msg


def test_rejects_unknown_top_level_key():
    data = _raw("mtia-400")
    data["tdp_watts"] = {"value": 1.0, "source": "typo"}
    _rejects(data, "unknown key 'tdp_watts'")


def test_rejects_unknown_key_inside_value_table():
    data = _raw("mtia-400")
    data["tdp_w"]["unit"] = "W"
    _rejects(data, "unknown key 'tdp_w.unit'")


def test_rejects_unknown_dtype_in_flops_table():
    data = _raw("mtia-400")
    data["peak_flops_per_s"]["fp6"] = {"value": 1e15, "source": "x"}
    _rejects(data, "unknown key 'peak_flops_per_s.fp6'")


@pytest.mark.parametrize("key", ["mem_capacity_bytes", "mem_bw_bytes_per_s", "tdp_w", "idle_w",
                                 "scale_up_bw_bytes_per_s", "scale_up_domain_size",
                                 "scale_out_bw_bytes_per_s", "availability_year", "display_name",
                                 "vendor", "family", "peak_flops_per_s", "name"])
def test_rejects_missing_required_key(key: str):
    data = _raw("mtia-400")
    del data[key]
    _rejects(data, f"key '{key}'", "missing")


def test_optional_sram_may_be_missing():
    data = _raw("mtia-400")
    del data["sram_bytes"], data["sram_bw_bytes_per_s"]
    chip = _parse(data)
    assert chip.sram_bytes is None and chip.sram_bw_bytes_per_s is None


def test_rejects_missing_bf16():
    data = _raw("mtia-400")
    del data["peak_flops_per_s"]["bf16"]
    _rejects(data, "peak_flops_per_s.bf16", "missing")


@pytest.mark.parametrize(("key", "bad"), [
    ("mem_bw_bytes_per_s", 1e3),
    ("mem_capacity_bytes", 1e20),
    ("tdp_w", -5),
    ("scale_up_domain_size", 0),
    ("availability_year", 1999),
])
def test_rejects_value_out_of_range(key: str, bad: float):
    data = _raw("mtia-400")
    data[key]["value"] = bad
    _rejects(data, f"key '{key}.value'", "out of range")


def test_rejects_flops_out_of_range():
    data = _raw("mtia-400")
    data["peak_flops_per_s"]["fp8"]["value"] = 1e30
    _rejects(data, "key 'peak_flops_per_s.fp8.value'", "out of range")


@pytest.mark.parametrize("bad", ["800", True, [1.0], {"x": 1}])
def test_rejects_value_not_a_number(bad: Any):
    data = _raw("mtia-400")
    data["tdp_w"]["value"] = bad
    _rejects(data, "key 'tdp_w.value'", "must be a number")


def test_rejects_bare_number_without_provenance_table():
    data = _raw("mtia-400")
    data["tdp_w"] = 1200
    _rejects(data, "key 'tdp_w'", "must be a table")


def test_rejects_both_source_and_assumed():
    data = _raw("mtia-400")
    data["tdp_w"]["assumed"] = "also a guess"
    _rejects(data, "key 'tdp_w'", "exactly one of 'source' or 'assumed'")


def test_rejects_neither_source_nor_assumed():
    data = _raw("mtia-400")
    del data["peak_flops_per_s"]["fp4"]["source"]
    _rejects(data, "key 'peak_flops_per_s.fp4'", "exactly one of 'source' or 'assumed'")


@pytest.mark.parametrize(("key", "field"), [("tdp_w", "source"), ("idle_w", "assumed")])
@pytest.mark.parametrize("text", ["", "   "])
def test_rejects_empty_source_or_assumption(key: str, field: str, text: str):
    data = _raw("mtia-400")
    assert field in data[key]
    data[key][field] = text
    _rejects(data, f"key '{key}'", "empty source/assumed")


def test_rejects_non_string_source():
    data = _raw("mtia-400")
    data["tdp_w"]["source"] = 42
    _rejects(data, "key 'tdp_w.source'", "must be a string")


def test_rejects_name_not_equal_to_file_stem():
    data = _raw("mtia-400")
    data["name"] = "mtia-401"
    _rejects(data, "'mtia-401'", "'mtia-400'", "key 'name'")


@pytest.mark.parametrize("idle", [1200, 1500])
def test_rejects_idle_not_below_tdp(idle: float):
    data = _raw("mtia-400")
    data["idle_w"]["value"] = idle
    _rejects(data, "key 'idle_w'", "must be below tdp_w")


def test_rejects_bad_family():
    data = _raw("mtia-400")
    data["family"] = "npu"
    _rejects(data, "key 'family'", "must be one of gpu, mtia, tpu", "'npu'")


@pytest.mark.parametrize("bad", [72.5, 1.5e0])
def test_rejects_non_integer_domain_size(bad: float):
    data = _raw("mtia-400")
    data["scale_up_domain_size"]["value"] = bad
    _rejects(data, "key 'scale_up_domain_size.value'", "whole number")


def test_integral_float_domain_size_is_accepted_as_int():
    data = _raw("mtia-400")
    data["scale_up_domain_size"]["value"] = 72.0
    chip = _parse(data)
    assert chip.scale_up_domain_size == 72 and isinstance(chip.scale_up_domain_size, int)


def test_rejects_non_integer_year():
    data = _raw("mtia-400")
    data["availability_year"]["value"] = 2026.5
    _rejects(data, "key 'availability_year.value'", "whole number")


# --- load_chip by path and by name ------------------------------------------------------------------


def test_load_chip_by_path(tmp_path: Path):
    path = tmp_path / "mtia-400.toml"
    path.write_text((HW / "mtia-400.toml").read_text())
    assert load_chip(str(path)) == load_chip("mtia-400")


def test_load_chip_path_checks_stem(tmp_path: Path):
    path = tmp_path / "my-chip.toml"
    path.write_text((HW / "mtia-400.toml").read_text())
    with pytest.raises(UserError, match=r"my-chip\.toml: key 'name' is 'mtia-400'.*'my-chip'"):
        load_chip(str(path))


def test_load_chip_path_that_does_not_exist(tmp_path: Path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(UserError) as exc:
        load_chip(str(missing))
    assert str(missing) in str(exc.value) and "does not exist" in str(exc.value)


def test_load_chip_unknown_name_suggests_close_name():
    with pytest.raises(UserError) as exc:
        load_chip("mtia-45")
    msg = str(exc.value)
    assert "unknown chip 'mtia-45'" in msg
    assert "did you mean" in msg and "mtia-450" in msg.split("(valid:")[0]
    assert "(valid:" in msg and "tpu7x" in msg


def test_load_chip_invalid_toml(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "broken"\ntdp_w = { value = 700, source = "x" \n')
    with pytest.raises(UserError) as exc:
        load_chip(str(path))
    assert "broken.toml" in str(exc.value) and "not valid TOML" in str(exc.value)


def test_load_chip_renamed_key_from_file_names_file_and_key(tmp_path: Path):
    path = tmp_path / "tpu-v5e.toml"
    text = (HW / "tpu-v5e.toml").read_text().replace("tdp_w =", "tdp_watts =")
    path.write_text(text)
    with pytest.raises(UserError) as exc:
        load_chip(str(path))
    msg = str(exc.value)
    assert "tpu-v5e.toml" in msg
    assert "tdp_w" in msg  # the missing required key is reported first
