"""The Dash app: controls on the left, live plots on the right. `create_app() -> dash.Dash`.

One callback maps every control to every output through `accelsim.dashboard.page.render`;
the what-if sliders move in powers of two (value v means ×2**v of the catalog value).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import dash
from dash import Input, Output, dcc, html

from accelsim.dashboard.controls import DEFAULTS, DTYPES, FIDELITIES, TP_CHOICES, catalog_chip, catalog_model
from accelsim.dashboard.page import Page, render
from accelsim.spec import list_chips, list_models

SLIDER_LOG2 = (-2, 2)  # what-if sliders: log2 of the multiplier (1/4x to 4x)
MAX_REQUEST_BYTES = 256 * 1024  # a callback body is ~2 kB; a larger one is refused (HTTP 413) unread
SLIDERS = (("mem_bw", "HBM bandwidth"), ("flops", "FLOPS (every format)"), ("tdp", "TDP (idle scales with it)"),
           ("capacity", "HBM capacity"))
CONTROL_IDS = ("chip", "model", "dtype", "fidelity", "tp", "batch", *(k for k, _ in SLIDERS),
               "input_len", "output_len", "site_power_mw", "pue", "prefix_hit", "mtp_k", "spec_accept",
               "image_tokens", "attention_dp", "decode_chip", "disagg_chips")

_CSS = """
body { margin: 0; font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; background: #f4f6f9; color: #1a202c; }
.top { padding: 10px 20px; background: #1a365d; color: white; }
.top h1 { margin: 0; font-size: 20px; font-weight: 600; }
.top p { margin: 2px 0 0; font-size: 12px; opacity: .8; }
.wrap { display: flex; gap: 14px; padding: 12px; align-items: flex-start; }
.controls { width: 300px; flex: none; background: white; border-radius: 8px; padding: 12px 14px;
            box-shadow: 0 1px 3px rgba(0,0,0,.08); font-size: 13px; }
.controls h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .05em; color: #4a5568;
               margin: 14px 0 6px; border-top: 1px solid #e2e8f0; padding-top: 10px; }
.controls label { display: block; font-weight: 600; margin: 8px 0 3px; }
.controls .hint { font-size: 11px; color: #718096; margin-top: 2px; }
.controls input[type=number] { width: 100%; box-sizing: border-box; padding: 5px 6px; border: 1px solid #cbd5e0;
                               border-radius: 4px; font-size: 13px; }
.row2 { display: flex; gap: 8px; } .row2 > div { flex: 1; }
.main { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 12px; }
.message { background: #fff5f5; border: 1px solid #feb2b2; color: #9b2c2c; border-radius: 6px; padding: 8px 12px;
           font-size: 13px; }
.message:empty { display: none; }
.cards { display: flex; flex-wrap: wrap; gap: 8px; }
.card { background: white; border-radius: 8px; padding: 8px 12px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.card .k { font-size: 11px; color: #718096; text-transform: uppercase; letter-spacing: .04em; }
.card .v { font-size: 16px; font-weight: 600; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.panel { background: white; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.08); overflow: hidden; }
.chiptable { width: 100%; border-collapse: collapse; font-size: 12px; }
.chiptable th, .chiptable td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #edf2f7;
                               vertical-align: top; }
.chiptable tr.assumed td { background: #fffaf0; }
.chiptable td.basis { color: #4a5568; font-size: 11px; max-width: 360px; }
.tablewrap { padding: 10px 12px; max-height: 420px; overflow-y: auto; }
.tablewrap h4 { margin: 0 0 6px; font-size: 14px; }
"""


def _label(text: str, *children: Any, hint: str | None = None) -> html.Div:
    parts: list[Any] = [html.Label(text), *children]
    if hint:
        parts.append(html.Div(hint, className="hint"))
    return html.Div(parts)


def _slider(key: str, text: str) -> html.Div:
    marks = {-2: "¼×", -1: "½×", 0: "1×", 1: "2×", 2: "4×"}
    return _label(text, dcc.Slider(id=key, min=SLIDER_LOG2[0], max=SLIDER_LOG2[1], step=0.05, value=0, marks=marks,
                                   allow_direct_input=False,
                                   updatemode="mouseup"),
                  html.Div(id=f"{key}-readout", className="hint"))


def _controls() -> html.Div:
    chips = [{"label": f"{catalog_chip(n).display_name} ({catalog_chip(n).availability_year})", "value": n}
             for n in sorted(list_chips(), key=lambda n: (catalog_chip(n).family, catalog_chip(n).availability_year))]
    models = [{"label": f"{catalog_model(n).display_name} ({catalog_model(n).kind})", "value": n}
              for n in list_models()]
    tps = [{"label": "auto (best per chip)", "value": "auto"}] + [{"label": str(t), "value": t} for t in TP_CHOICES]
    num = lambda id_, value, **kw: dcc.Input(id=id_, type="number", value=value, debounce=True, **kw)
    return html.Div(className="controls", children=[
        _label("Chip", dcc.Dropdown(id="chip", options=chips, value=DEFAULTS.chip, clearable=False)),
        _label("Model", dcc.Dropdown(id="model", options=models, value=DEFAULTS.model, clearable=False)),
        html.Div(className="row2", children=[
            _label("Format", dcc.Dropdown(id="dtype", options=list(DTYPES), value=DEFAULTS.dtype, clearable=False)),
            _label("Fidelity", dcc.Dropdown(id="fidelity", options=list(FIDELITIES),
                                            value=DEFAULTS.fidelity, clearable=False))]),
        _label("Chips per replica (TP)", dcc.Dropdown(id="tp", options=tps, value="auto", clearable=False),
               hint="ranking models: chips the tables are sharded over"),
        html.H3("What-if (× catalog value)"),
        *(_slider(k, t) for k, t in SLIDERS),
        html.H3("Workload"),
        _label("Batch", num("batch", None, min=1, step=1, placeholder="auto (best throughput)"),
               hint="sequences per replica; ranking: samples per chip"),
        html.Div(className="row2", children=[
            _label("Input tokens", num("input_len", DEFAULTS.input_len, min=1, step=1)),
            _label("Output tokens", num("output_len", DEFAULTS.output_len, min=1, step=1))]),
        html.Div("prompt and generated tokens per sequence (LLMs only)", className="hint"),
        html.H3("Serving modes (LLMs)"),
        html.Div(className="row2", children=[
            _label("Prefix-cache hit", num("prefix_hit", DEFAULTS.prefix_hit, min=0, max=0.99, step=0.05)),
            _label("Image tokens", num("image_tokens", DEFAULTS.image_tokens, min=0, step=144))]),
        html.Div(className="row2", children=[
            _label("MTP drafts (k)", num("mtp_k", DEFAULTS.mtp_k, min=0, max=8, step=1)),
            _label("Acceptance", num("spec_accept", DEFAULTS.spec_accept, min=0, max=1, step=0.05))]),
        _label("Attention DP + wide EP", dcc.Dropdown(id="attention_dp", options=["off", "on"],
                                                       value=DEFAULTS.attention_dp, clearable=False)),
        html.Div(className="row2", children=[
            _label("Decode chip (disaggregated)", dcc.Dropdown(
                id="decode_chip", options=[{"label": "off", "value": "off"}, *chips], value=DEFAULTS.decode_chip,
                clearable=False)),
            _label("Chips to split", num("disagg_chips", DEFAULTS.disagg_chips, min=2, step=1))]),
        html.Div("the chip above prefills, this one decodes; the split is searched", className="hint"),
        html.H3("Site"),
        _label("Site power (MW)", num("site_power_mw", DEFAULTS.site_power_w / 1e6, min=0, step="any")),
        _label("PUE", dcc.Slider(id="pue", min=1.0, max=1.6, step=0.01, value=DEFAULTS.pue, allow_direct_input=False,
                                 marks={1.0: "1.0", 1.08: "1.08", 1.2: "1.2", 1.4: "1.4", 1.6: "1.6"},
                                 tooltip={"placement": "bottom", "always_visible": False})),
    ])


def _graph(id_: str, height: int) -> html.Div:
    return html.Div(className="panel", children=dcc.Graph(id=id_, style={"height": f"{height}px"},
                                                          config={"displaylogo": False}))


def layout() -> html.Div:
    return html.Div([
        html.Div(className="top", children=[
            html.H1("accelsim what-if dashboard"),
            html.P("Drag a chip's bandwidth, FLOPS, TDP or capacity and watch serving throughput, perf/W and a "
                   "site plan move. Every number is a model prediction labelled with its fidelity.")]),
        html.Div(className="wrap", children=[
            _controls(),
            html.Div(className="main", children=[
                html.Div(id="message", className="message", role="alert"),
                html.Div(id="summary", className="cards"),
                html.Div(className="grid", children=[_graph("roofline", 460), _graph("generations", 460)]),
                html.Div(className="grid", children=[
                    _graph("site", 400),
                    html.Div(className="panel tablewrap", children=[
                        html.H4("Chip values (highlighted: assumed, not published)"),
                        html.Table(id="chip-table", className="chiptable"),
                        html.H4("Site planning assumptions", style={"marginTop": "12px"}),
                        html.Table(id="site-table", className="chiptable")])]),
            ]),
        ]),
    ])


def _clip(text: str, n: int = 100) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"  # the full text is the cell's tooltip


def _table(rows: list[dict[str, str]]) -> list[Any]:
    head = html.Tr([html.Th(h) for h in ("value", "catalog", "what-if", "source or assumption")])
    body = [html.Tr([html.Td(r["value"]), html.Td(r["catalog"]), html.Td(r["what_if"]),
                     html.Td(_clip(r["basis"]), title=r["basis"], className="basis")],
                    className="assumed" if r["assumed"] else "")
            for r in rows]
    return [html.Thead(head), html.Tbody(body)]


def outputs(page: Page) -> tuple[Any, ...]:
    """The callback's return value, in the order of `_OUTPUTS`."""
    cards = [html.Div(className="card", children=[html.Div(k, className="k"),
                                                  html.Div(v, className="v", id=f"card-{i}")])
             for i, (k, v) in enumerate(page.summary)]
    message = [html.Div(m) for m in page.messages]
    site_rows = [html.Tr([html.Td(r["value"]), html.Td(_clip(r["basis"], 140), title=r["basis"], className="basis")])
                 for r in page.site_rows]
    return (message, cards, page.roofline, page.generations, page.site, _table(page.chip_rows), site_rows,
            *(page.readouts.get(k, "") for k, _ in SLIDERS))


_OUTPUTS = [Output("message", "children"), Output("summary", "children"), Output("roofline", "figure"),
            Output("generations", "figure"), Output("site", "figure"), Output("chip-table", "children"),
            Output("site-table", "children"),
            *(Output(f"{k}-readout", "children") for k, _ in SLIDERS)]


def raw_controls(values: tuple[Any, ...]) -> dict[str, Any]:
    """Callback input values → the raw mapping `render` takes (sliders are log2 multipliers)."""
    raw = dict(zip(CONTROL_IDS, values))
    for key, _ in SLIDERS:  # a forged value beyond the slider is clamped to its ends (2**1e308 overflows)
        v = raw[key]
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            raw[key] = 2.0 ** min(max(float(v), SLIDER_LOG2[0]), SLIDER_LOG2[1])
    return raw


def create_app(*, measured_dir: str | Path | None = None) -> dash.Dash:
    """The dashboard app (not started). `measured_dir` overrides hwmodels/measured/ for tests."""
    # no assets folder: the stylesheet is inlined so that the app works from any install
    app = dash.Dash(__name__, title="accelsim what-if", update_title=None,
                    assets_folder=str(Path(__file__).parent / "_no_assets"))
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + _CSS + "</style>")
    app.layout = layout()
    _harden(app.server)

    @app.callback(*_OUTPUTS, *(Input(i, "value") for i in CONTROL_IDS))
    def _update(*values: Any) -> tuple[Any, ...]:
        return outputs(render(raw_controls(values), measured_dir=measured_dir))

    return app


def _harden(server: Any) -> None:
    """Bound request bodies, and answer a malformed callback request with HTTP 400 and one line
    instead of a 500 (the app's own errors become messages on the page, see `page.render`)."""
    from werkzeug.exceptions import HTTPException

    server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    @server.errorhandler(Exception)
    def _bad_request(exc: Exception) -> Any:
        if isinstance(exc, HTTPException):
            return exc
        from flask import request

        if request.path.endswith("/_dash-update-component"):
            return f"bad callback request: {type(exc).__name__}", 400
        raise exc
