"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright).

The app is served from a background thread on 127.0.0.1 at a free port; the tests read plotted
values from the plotly div's `data` in the DOM. Skipped with a reason when Chromium or the
playwright package is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ACCELSIM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# x of the what-if bar in the throughput column (per-chip output tokens/s), or null before the first draw
WHAT_IF = """() => {
  const d = document.querySelector('#generations .js-plotly-plot');
  const t = d && d.data && d.data.find(t => t.name === 'selected chip (what-if)' && t.xaxis === 'x');
  return t ? t.x[0] : null;
}"""
TIMEOUT_MS = 30_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    pytest.importorskip("dash")
    from werkzeug.serving import make_server

    from accelsim.dashboard.app import create_app

    port = _free_port()
    srv = make_server("127.0.0.1", port, create_app().server, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/"
    srv.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the PyPI package)")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set ACCELSIM_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[tuple[Any, list[str]]]:
    pg = browser.new_page(viewport={"width": 1600, "height": 1250})
    errors: list[str] = []
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(server)
    pg.wait_for_function(f"({WHAT_IF})() !== null", timeout=TIMEOUT_MS)
    yield pg, errors
    pg.close()


def test_page_loads_without_console_errors(page):
    pg, errors = page
    assert pg.evaluate(WHAT_IF) > 0
    assert pg.inner_text("#message").strip() == ""
    assert "projected" in pg.inner_text("#summary")  # the default chip (MTIA 450) has no measured kernels
    assert errors == []


def test_hbm_slider_raises_the_plotted_throughput(page):
    pg, errors = page
    before = pg.evaluate(WHAT_IF)
    pg.locator("#mem_bw [role=slider]").focus()
    pg.keyboard.press("End")  # the slider's maximum: 4x the catalog bandwidth
    pg.wait_for_function(f"({WHAT_IF})() !== {before}", timeout=TIMEOUT_MS)
    assert pg.evaluate(WHAT_IF) > before
    assert pg.inner_text("#mem_bw-readout").startswith("×4.00")
    assert errors == []


def test_dropdown_and_bad_value_show_a_message(page):
    pg, errors = page
    pg.click("#model")
    pg.get_by_role("option", name="Llama 3.1 405B").click()
    pg.click("#tp")
    pg.get_by_role("option", name="1", exact=True).click()
    pg.wait_for_function("document.querySelector('#message').innerText.includes('does not fit')", timeout=TIMEOUT_MS)
    assert "Traceback" not in pg.content()
    pg.fill("#input_len", "")
    pg.press("#input_len", "Enter")
    pg.wait_for_function("document.querySelector('#message').innerText.includes('input length')",
                         timeout=TIMEOUT_MS)
    assert errors == []
