"""Script injection: `<script>` and `<img onerror>` planted in every text field that reaches a report
(chip and model display names, a study's title and description) or the dashboard must come out as
text, never as markup. The three reports named in issue 13 are built from planted files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accelsim.report import Report

ROOT = Path(__file__).parents[1]
SCRIPT = "<script>alert(1337)</script>"
IMG = '<img src=x onerror="alert(7331)">'
PAYLOAD = f"Evil {SCRIPT}{IMG}"


def _planted(text: str, key: str, path: Path) -> str:
    """`text` (a catalog TOML) with its display_name and every `assumed` reason replaced by the payload
    (assumed values are listed in every report's assumptions table)."""
    out, n = re.subn(rf'(?m)^{key} = ".*"$', f"{key} = '{PAYLOAD}'", text)
    out = re.sub(r'assumed = "[^"]*"', f"assumed = '{PAYLOAD}'", out)
    assert n == 1
    path.write_text(out, encoding="utf-8")
    return str(path)


def _assert_inert(page: str) -> None:
    assert "alert(1337)" in page or "alert(7331)" in page, "the payload never reached the page"
    assert SCRIPT not in page and "<img src=x" not in page
    assert "<script>alert" not in page.replace(" ", "")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("planted")
    chip = _planted((ROOT / "hwmodels" / "mtia-450.toml").read_text(encoding="utf-8"), "display_name",
                    d / "mtia-450.toml")
    llm = _planted((ROOT / "workloads" / "llama4-scout.toml").read_text(encoding="utf-8"), "display_name",
                   d / "llama4-scout.toml")
    rk = _planted((ROOT / "workloads" / "dlrm-v2.toml").read_text(encoding="utf-8"), "display_name",
                  d / "dlrm-v2.toml")
    return {"chip": chip, "llm": llm, "ranking": rk, "dir": str(d)}


def test_markdown_shows_raw_html_as_text() -> None:
    rep = Report(PAYLOAD)
    rep.add_text(f"## {PAYLOAD}\n\n{PAYLOAD} [x](javascript:alert(1337))")
    rep.add_table("t", [{PAYLOAD: PAYLOAD}], caption=PAYLOAD, fidelity=PAYLOAD)
    page = rep.render()
    _assert_inert(page)
    assert "&lt;script&gt;" in page and 'href="javascript:' not in page


@pytest.mark.slow
@pytest.mark.parametrize("study,params", [
    ("roadmap:run", {"chips": ["{chip}", "h100-sxm"], "models": ["{llm}", "{ranking}"], "baseline": "h100-sxm",
                     "max_ttft": 2.0, "max_tpot": 0.05, "max_latency": 0.06, "dtype_llm": "fp8",
                     "dtype_ranking": "bf16", "fidelity": "analytical", "stack": "", "calibration": ""}),
    ("whatif:run", {"base": "{chip}", "factors": [0.5, 1.0], "grid_factors": [1.0], "llm": "{llm}",
                    "ranking": "{ranking}", "long_input_len": 8000, "prefill_len": 2048, "max_ttft": 2.0,
                    "max_tpot": 0.05, "max_latency": 0.06, "dtype_llm": "fp8", "dtype_ranking": "bf16",
                    "fidelity": "analytical", "stack": "", "calibration": ""}),
])
def test_planted_names_and_description_stay_text(planted: dict[str, str], tmp_path: Path, study: str,
                                                 params: dict[str, object]) -> None:
    from accelsim.study.run import run_study

    def fill(v: object) -> object:
        if isinstance(v, str):
            return v.format(**planted)
        if isinstance(v, list):
            return [fill(x) for x in v]
        return v

    lines = [f"title = '{PAYLOAD}'", f"description = '''{PAYLOAD}'''", f'runner = "accelsim.study.{study}"',
             "[params]"]
    for k, v in params.items():
        v = fill(v)
        lines.append(f"{k} = {v!r}".replace("'", '"') if not isinstance(v, str) else f'{k} = "{v}"')
    path = tmp_path / "evil_study.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        res = run_study(str(path), tmp_path / "out")
    except Exception as exc:  # pragma: no cover - the message says which runner broke
        pytest.fail(f"study {study} failed on planted files: {exc}")
    _assert_inert(res.report.read_text(encoding="utf-8"))


def test_dashboard_shows_planted_text_as_text() -> None:
    """Dash renders children as text nodes (React escapes them); the page's messages and tables are
    built from plain strings, so a planted name arrives as a string, not as a component."""
    pytest.importorskip("dash")
    from accelsim.dashboard.app import outputs
    from accelsim.dashboard.page import render

    page = render({"chip": PAYLOAD})  # an unknown chip name: its text comes back in a message
    msgs = outputs(page)[0]
    assert msgs and all(type(m).__name__ == "Div" and isinstance(m.children, str) for m in msgs)
    assert any("alert(1337)" in m.children for m in msgs)


@pytest.mark.slow
def test_planted_files_in_the_site_budget_study(planted: dict[str, str], tmp_path: Path) -> None:
    """power_budget_1gw (--reduced) with its title, description, chip and models replaced by planted ones."""
    from accelsim.study.run import run_study

    text = (ROOT / "studies" / "power_budget_1gw.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^title = ".*"$', f"title = '{PAYLOAD}'", text)
    text = re.sub(r'(?s)description = """.*?"""', f"description = '''{PAYLOAD}'''", text)
    for key, name in (("chip", "mtia-450"), ("llm", "llama4-scout"), ("ranking", "dlrm-v2")):
        text = re.sub(rf'(?m)^((?:chips|models) = \[.*)"{name}"', rf'\1"{planted[key]}"', text)
    assert text.count(planted["chip"]) == 2 and text.count(planted["llm"]) == 2  # [params] and [reduced]
    path = tmp_path / "evil_budget.toml"
    path.write_text(text, encoding="utf-8")
    res = run_study(str(path), tmp_path / "out", reduced=True)
    _assert_inert(res.report.read_text(encoding="utf-8"))
