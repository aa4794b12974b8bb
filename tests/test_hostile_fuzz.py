"""Generated hostile input (hypothesis): any text in a numeric flag, a name or a measurement cell gets
either a normal answer or the promised one: exit 2, one line on stderr, no traceback, nothing written.
The table of named cases is `test_hostile_cli.py`; these search the space between them."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from hostile_helpers import attempt, measurement_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accelsim.errors import UserError

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# numbers as a hostile user types them: special values, huge and tiny exponents, signs, junk
NUMBERS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "NaN", "1e308", "1e-308", "-0", "0", "1e30", "0x10", "1_000", " 1", "",
                     "9" * 400, "1e99999", "١٢", "½"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.text(max_size=12),
)
PREDICT_FLAGS = ["--chips", "--tp", "--pp", "--ep", "--batch", "--input-len", "--output-len", "--max-ttft",
                 "--max-tpot"]
PLAN_FLAGS = ["--site-power-w", "--pue", "--headroom", "--availability", "--power-cap-w", "--chips-per-rack",
              "--rack-power-limit-w", "--host-overhead-w", "--max-ttft"]


def _promise_kept(argv: list[str], root: Path) -> None:
    """Accepted (exit 0), or refused as promised."""
    v = attempt(argv, root)
    assert v.code == 0 or v.clean, f"{argv}: {v.problem}; stderr={v.stderr[-300:]!r}"


def _no_giant_numbers(out: str) -> None:
    """An accepted run prints no number hundreds of digits long (a sign that a value escaped its range)."""
    digits = max((len(w) for w in re.findall(r"[0-9][0-9,.]*", out)), default=0)
    assert digits < 40, f"a {digits}-character number in the output"


def _number_verdict(argv: list[str], root: Path, flag: str, value: str, x: float | None) -> None:
    """A value that is not a finite non-negative number is refused cleanly; any other value either
    runs (printing no absurdly long numbers) or is refused cleanly."""
    v = attempt(argv, root)
    if x is None or not (0 <= x < float("inf")):
        assert v.clean, f"{flag}={value!r} must be refused: {v.problem}"
    else:
        assert v.code == 0 or v.clean, f"{flag}={value!r}: {v.problem}"
        _no_giant_numbers(v.stdout)


def _number(text: str, integer: bool) -> float | None:
    """The value Python reads from `text` (None: not a number of that kind)."""
    try:
        return float(int(text)) if integer else float(text)
    except ValueError:
        return None
    except OverflowError:  # an integer beyond any float
        return float("inf")


@settings(SETTINGS, max_examples=12)
@given(value=NUMBERS)
def test_predict_numbers(tmp_path: Path, value: str) -> None:
    """Every predict number is positive and finite: anything else must be refused, not accepted."""
    for flag in PREDICT_FLAGS:
        base = ["predict", "--hw", "mtia-450", "--model", "llama3-8b", "--chips", "8"]
        if flag == "--chips":
            base = base[:-2]
        x = _number(value, integer=not flag.startswith("--max"))
        v = attempt([*base, f"{flag}={value}"], tmp_path)
        if x is None or not (0 < x < float("inf")):
            assert v.clean, f"{flag}={value!r} must be refused: {v.problem}"
        else:
            assert v.code == 0 or v.clean, f"{flag}={value!r}: {v.problem}"
            _no_giant_numbers(v.stdout)


@settings(SETTINGS, max_examples=12)
@given(value=NUMBERS)
def test_plan_numbers(tmp_path: Path, value: str) -> None:
    """No plan number may be NaN, infinite or negative."""
    for flag in PLAN_FLAGS:
        base = ["plan", "--hw", "mtia-450", "--model", "llama3-8b", "--tp", "1"]
        if flag != "--site-power-w":
            base += ["--site-power-w", "1e8"]
        x = _number(value, integer=flag == "--chips-per-rack")
        _number_verdict([*base, f"{flag}={value}"], tmp_path, flag, value, x)


@SETTINGS
@given(factor=NUMBERS, key=st.sampled_from(["mem_bw", "flops", "capacity", "tdp", "nosuch", ""]))
def test_what_if_factors(tmp_path: Path, key: str, factor: str) -> None:
    _promise_kept(["predict", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--what-if",
                   f"{key}={factor}"], tmp_path)


@SETTINGS
@given(name=st.text(min_size=0, max_size=300))
def test_chip_names(tmp_path: Path, name: str) -> None:
    """Any text as a chip name: the catalog entry, or one line (no OSError from a long or odd name)."""
    _promise_kept(["hw", "show", name], tmp_path)


@SETTINGS
@given(path=st.text(min_size=0, max_size=300))
def test_output_paths_are_checked_before_work(tmp_path: Path, path: str) -> None:
    """Any text as `measure --out` with a bad --reps: the path check or the reps check fails first;
    in no case does a measurement start or a file appear."""
    v = attempt(["measure", "--device", "cpu", "--quick", f"--out={path}", "--reps", "1"], tmp_path)
    assert v.clean, f"{path!r}: {v.problem}"


@SETTINGS
@given(column=st.sampled_from(["flops", "bytes", "median_s", "p20_s", "p80_s", "reps", "shape", "config"]),
       value=NUMBERS)
def test_measurement_cells(tmp_path: Path, column: str, value: str) -> None:
    """A measurement file with any text in one cell: read (and every number finite), or a UserError."""
    from accelsim import measurements as M

    path = measurement_csv(tmp_path, "m.csv", **{column: value})
    try:
        rows = M.read(path)
    except UserError as exc:
        assert "\n" not in str(exc)
        return
    for r in rows:
        for key in ("flops", "bytes", "median_s", "p20_s", "p80_s"):
            assert r[key] == r[key] and abs(r[key]) != float("inf") and r[key] >= 0
        assert r["median_s"] > 0 and isinstance(r["shape"], dict)


@pytest.mark.slow
@settings(max_examples=15, deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.floats(allow_nan=True), st.text(max_size=5)),
                               st.integers(-5, 10**12), st.integers(-5, 10**12)), min_size=0, max_size=6))
def test_trace_files(rows: list[tuple[object, int, int]]) -> None:
    """A request trace with any rows: simulated, or refused in one line."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        with (root / "t.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["arrival_s", "input_len", "output_len"])
            w.writerows(rows)
        _promise_kept(["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--trace",
                       str(root / "t.csv"), "--duration", "5", "--failures", "none", "--json"], root)


JSONISH = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(-(10**30), 10**30), st.text(max_size=50), st.lists(st.integers(), max_size=3))


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(key=st.sampled_from(["chip", "model", "dtype", "tp", "batch", "mem_bw", "flops", "input_len", "site_power_mw",
                            "pue", "prefix_hit", "mtp_k", "image_tokens"]), value=JSONISH)
def test_dashboard_controls_answer_with_a_message(key: str, value: object) -> None:
    """Any JSON value in any control (what a forged callback can send): the page renders, and a bad
    value comes back as a short message instead of an exception (HTTP 500)."""
    pytest.importorskip("dash")
    from test_hostile_units import _good

    from accelsim.dashboard.app import CONTROL_IDS, outputs, raw_controls
    from accelsim.dashboard.page import render

    values = _good() | {key: value}
    out = outputs(render(raw_controls(tuple(values.get(k) for k in CONTROL_IDS))))
    assert all(isinstance(m.children, str) and len(m.children) < 500 for m in out[0])


SIM_FLAGS = ["--cv", "--length-cv", "--slo-ttft", "--slo-tpot", "--power-cap-w", "--ranking-slo", "--seed",
             "--block-size", "--input-len", "--output-len"]


@pytest.mark.slow
@settings(SETTINGS, max_examples=8)
@given(value=NUMBERS)
def test_simulate_numbers(tmp_path: Path, value: str) -> None:
    """No simulate number may be NaN, infinite or negative (flags whose valid values are all cheap to run)."""
    base = ["simulate", "--hw", "h100-sxm", "--model", "llama3-8b", "--chips", "1", "--arrival-rate", "1",
            "--duration", "5", "--failures", "none", "--json"]
    for flag in SIM_FLAGS:
        x = _number(value, integer=flag in ("--seed", "--block-size", "--input-len", "--output-len"))
        _number_verdict([*base, f"{flag}={value}"], tmp_path, flag, value, x)
