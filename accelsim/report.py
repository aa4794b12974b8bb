"""Self-contained HTML reports: text, Plotly figures and tables in one `index.html`.

    rep = Report("MTIA roadmap")
    rep.add_text("## Findings\\n- MTIA 450 ...")          # Markdown; raw HTML in it is shown as text
    rep.add_figure(fig, "Throughput per chip", fidelity="analytical")
    rep.add_table("throughput", rows, "one row per chip x model")
    rep.add_assumptions(chips)                            # every assumed chip value shown
    path = rep.write("out/roadmap")                       # -> out/roadmap/index.html (+ CSVs)

The page works offline: plotly.js is inlined once for the whole page, every figure after it only
carries its data. Each table is also written as `<name>.csv` beside the page.

`write` is atomic: the whole directory is built in a temporary directory next to the target and
renamed into place (or, when the target exists, its files are moved in with `index.html` last),
so an exception while rendering or writing never leaves a new `index.html` behind.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accelsim.errors import UserError
from accelsim.io import write_csv, write_text

if TYPE_CHECKING:  # plotly is imported only when a figure is rendered
    import plotly.graph_objects as go

    from accelsim.spec.chip import Chip

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FIDELITY_HELP = {
    "roofline": "datasheet peaks only: an upper bound",
    "analytical": "peaks x documented efficiency curves x a software-stack factor fitted on published H100 data",
    "calibrated": "efficiencies fitted to kernels measured on real hardware",
    "measured": "measured, not predicted",
}


@dataclass
class _Block:
    kind: str  # "text" | "figure" | "table"
    html: str
    caption: str = ""
    fidelity: str | None = None


@dataclass
class Report:
    """An HTML report under construction. Blocks appear in the order they are added."""

    title: str
    blocks: list[_Block] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fidelity: set[str] = field(default_factory=set)

    def add_text(self, markdown: str) -> None:
        """Markdown (CommonMark + tables). Raw HTML is not rendered but shown as text: text reaches a
        report from chip, model and study files (display names, descriptions) written by anyone, and a
        shared report must not run a `<script>` planted in them. Links keep markdown-it's safe-URL
        check (no `javascript:`)."""
        from markdown_it import MarkdownIt

        md = MarkdownIt("commonmark", {"html": False}).enable("table")
        self.blocks.append(_Block("text", md.render(markdown)))

    def add_figure(self, fig: go.Figure, caption: str, *, fidelity: str | None = None) -> None:
        """A Plotly figure with a caption; `fidelity` labels how its numbers were obtained."""
        height = fig.layout.height or 460  # a fixed height: "100%" of an auto-height block collapses
        body = fig.to_html(full_html=False, include_plotlyjs=False, default_height=f"{height}px",
                           config={"displaylogo": False, "responsive": True})
        self._note_fidelity(fidelity)
        self.blocks.append(_Block("figure", body, caption, fidelity))

    def add_table(self, name: str, rows: Sequence[Mapping[str, Any]], caption: str = "", *,
                  fidelity: str | None = None) -> None:
        """A table shown as HTML and written as `<name>.csv`. Raises ValueError on a bad or reused name."""
        if not _NAME.match(name):
            raise ValueError(f"table name {name!r} must be letters, digits, '_', '-' or '.' (it names a CSV file)")
        if name in self.tables:
            raise ValueError(f"table name {name!r} is used twice in report {self.title!r}")
        rows = [dict(r) for r in rows]
        self.tables[name] = rows
        self._note_fidelity(fidelity)
        self.blocks.append(_Block("table", _table_html(name, rows), caption, fidelity))

    def add_assumptions(self, chips: Iterable[Chip], extra: Mapping[str, str] | None = None) -> None:
        """The 'fidelity and assumptions' section: every assumed value of every chip the report
        shows (with the reason given in its hwmodels file), what-if factors, plus `extra`
        (name -> text) for other assumptions (planning defaults, SLOs, software stack)."""
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for chip in chips:
            if chip.name in seen and not chip.what_if:
                continue
            seen.add(chip.name)
            for key in chip.assumed_keys:
                v = chip.provenance[key]
                rows.append({"chip": chip.name, "value_of": key, "value": v.value, "assumed": v.assumed})
            for key, factor in sorted(chip.what_if.items()):
                rows.append({"chip": chip.name, "value_of": f"what-if {key}", "value": factor,
                             "assumed": "a what-if factor applied to the catalog value, not a real part"})
        for key, text in (extra or {}).items():
            rows.append({"chip": "", "value_of": key, "value": "", "assumed": text})
        labels = sorted(self.fidelity) or ["(none declared)"]
        lines = [f"- **{f}**: {_FIDELITY_HELP.get(f, '')}" for f in labels]
        self.add_text("## Fidelity and assumptions\n\nNumbers in this report were obtained at these "
                      "fidelity levels:\n\n" + "\n".join(lines) + "\n\nValues below are **assumed**, not "
                      "published; results that depend on them inherit the assumption.")
        name = "assumptions"
        while name in self.tables:
            name += "_"
        self.add_table(name, rows, "assumed values used in this report")

    def _note_fidelity(self, fidelity: str | None) -> None:
        if fidelity:
            self.fidelity.add(str(fidelity))

    # -- output ---------------------------------------------------------------------------------

    def render(self) -> str:
        """The whole page as one HTML string (plotly.js inlined once, if any figure is present)."""
        parts = []
        for i, b in enumerate(self.blocks):
            badge = f'<span class="fid">{html.escape(b.fidelity)}</span>' if b.fidelity else ""
            cap = f'<p class="cap">{badge}{html.escape(b.caption)}</p>' if (b.caption or badge) else ""
            parts.append(f'<section class="{b.kind}" id="b{i}">{b.html}{cap}</section>')
        has_fig = any(b.kind == "figure" for b in self.blocks)
        js = ""
        if has_fig:
            from plotly.offline import get_plotlyjs

            js = f'<script type="text/javascript">{get_plotlyjs()}</script>'
        fid = ", ".join(sorted(self.fidelity)) or "not declared"
        return _PAGE.format(title=html.escape(self.title), plotlyjs=js, fidelity=html.escape(fid),
                            body="\n".join(parts))

    def write(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write `out_dir/index.html` and one CSV per table atomically; returns the index path.

        Raises UserError when `out_dir` exists and is not a directory."""
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out} exists and is not a directory")
        page = self.render()  # render first: a failing figure must not touch the disk
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        try:
            for name, rows in self.tables.items():
                write_csv(tmp / f"{name}.csv", rows)
            write_text(tmp / "index.html", page)
            for f in tmp.iterdir():  # temp files are private (0600); a report is meant to be shared
                f.chmod(0o644)
            tmp.chmod(0o755)
            if not out.exists():
                os.replace(tmp, out)  # one rename: the directory appears complete
                return out / "index.html"
            for f in sorted(tmp.iterdir(), key=lambda p: p.name == "index.html"):  # index last
                os.replace(f, out / f.name)
            return out / "index.html"
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(tmp)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, float):
        if v != v:
            return "–"
        if v == 0 or 1e-3 <= abs(v) < 1e6:
            return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return f"{v:.3e}"
    return str(v)


def _cls(v: Any) -> str:
    """Numbers right-aligned on one line; text left-aligned and wrapping (reasons can be long)."""
    return "n" if isinstance(v, int | float) and not isinstance(v, bool) else "t"


def _table_html(name: str, rows: list[dict[str, Any]]) -> str:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f'<td class="{_cls(r.get(c))}">{html.escape(_fmt(r.get(c)))}</td>'
                                    for c in cols) + "</tr>" for r in rows)
    link = f'<a class="csv" href="{html.escape(name)}.csv">{html.escape(name)}.csv</a>'
    return f'<div class="tbl"><table data-name="{html.escape(name)}"><thead><tr>{head}</tr></thead>' \
           f"<tbody>{body}</tbody></table></div>{link}"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1280px;
       padding: 1.5rem 2rem; color: #1f2328; line-height: 1.45; }}
h1 {{ border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }}
.meta {{ color: #57606a; font-size: .9rem; }}
section {{ margin: 1.2rem 0; }}
section.figure {{ border: 1px solid #d0d7de; border-radius: 6px; padding: .4rem; }}
.cap {{ color: #57606a; font-size: .9rem; margin: .3rem .4rem; }}
.fid {{ background: #ddf4ff; color: #0969da; border-radius: 1rem; padding: 0 .5rem; margin-right: .5rem;
        font-size: .8rem; }}
.tbl {{ max-height: 28rem; overflow: auto; border: 1px solid #d0d7de; border-radius: 6px; }}
table {{ border-collapse: collapse; font-size: .85rem; width: 100%; }}
th, td {{ padding: .25rem .6rem; border-bottom: 1px solid #eaeef2; vertical-align: top; }}
td.n {{ text-align: right; white-space: nowrap; }}
td.t {{ text-align: left; min-width: 4rem; max-width: 40rem; }}
th {{ background: #f6f8fa; position: sticky; top: 0; text-align: left; white-space: nowrap; }}
a.csv {{ font-size: .8rem; }}
code {{ background: #f6f8fa; padding: 0 .25rem; border-radius: 3px; }}
</style>{plotlyjs}</head>
<body><h1>{title}</h1>
<p class="meta">accelsim report &middot; fidelity: {fidelity} &middot; assumed values are listed under
"Fidelity and assumptions".</p>
{body}
</body></html>
"""
