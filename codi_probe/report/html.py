"""A self-contained HTML page: inline CSS, figures as base64 PNG, no scripts and no external URLs."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from ..plugin.randomization import NOT_SPECIFIC
from .plots import Panel
from .tables import Table

VERDICTS = ("supported", "refuted", "inconclusive", "invalid", "none")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 12px; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
td.v-supported { background: #d9f2d9 !important; } td.v-refuted { background: #f8d7d7 !important; }
td.v-inconclusive { background: #fff1c2 !important; } td.v-invalid { background: #e0d4f0 !important; }
td.v-none { color: #888; } td.not-specific { background: #ffd199 !important; font-weight: bold; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; } .note { color: #8a4b00; background: #fff6e5; padding: 4px 8px; display: inline-block; }
.kv td:first-child { font-family: ui-monospace, monospace; white-space: nowrap; }
nav a { margin-right: 1em; }
"""


def _cell(text: str, header: str) -> str:
    """A cell; a verdict (and the randomized twin's verdict) coloured, a claim not specific to training
    marked."""
    cls = ""
    if header == "randomized" and text.endswith(NOT_SPECIFIC):
        cls = ' class="not-specific"'
    elif header in ("verdict", "randomized") and text in VERDICTS:
        cls = f' class="v-{escape(text)}"'
    return f"<td{cls}>{escape(text)}</td>"


def table_html(table: Table) -> str:
    """A table with its title (h3) and note; verdict cells coloured."""
    kv = ' class="kv"' if table.header == ["key", "value"] or table.header == ["", ""] else ""
    head = "" if not any(table.header) else "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.header) + "</tr>"
    body = "".join("<tr>" + "".join(_cell(c, h) for c, h in zip(row, table.header)) + "</tr>" for row in table.rows)
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    content = f"<table{kv}>{head}{body}</table>" if table.rows else "<p>(empty)</p>"
    return f"<h3>{escape(table.title)}</h3>{note}{content}"


def panel_html(panel: Panel) -> str:
    """A figure with its caption, or its title with the visible note."""
    note = f'<p class="note">{escape(panel.note)}</p>' if panel.note else ""
    image = ""
    if panel.png is not None:
        data = base64.b64encode(panel.png).decode("ascii")
        image = f'<img alt="{escape(panel.title)}" src="data:image/png;base64,{data}">'
    return (f'<figure id="plot-{escape(panel.slug)}"><h3>{escape(panel.title)}</h3>{note}{image}'
            f"<figcaption>{escape(panel.caption)}</figcaption></figure>")


def render_html(report: dict[str, Any], run: Table, tables: list[Table], panels: list[Panel],
                fingerprints: list[Table]) -> str:
    """The whole page: run summary, claims tables, plots, fingerprints and warnings."""
    model = (report.get("model") or {}).get("name", "no model")
    title = f"codi-probe report: {model} ({report.get('created', '')})"
    warnings = "".join(f"<li>{escape(w)}</li>" for w in report.get("warnings", [])) or "<li>none</li>"
    sections = [
        f"<h1>{escape(title)}</h1>",
        ('<nav><a href="#run">run</a><a href="#claims">verdicts</a><a href="#plots">plots</a>'
        '<a href="#fingerprints">fingerprints</a><a href="#warnings">warnings</a></nav>'),
        '<h2 id="run">Run</h2>' + table_html(run),
        '<h2 id="claims">Verdicts</h2>' + "".join(table_html(t) for t in tables),
        '<h2 id="plots">Plots</h2>' + "".join(panel_html(p) for p in panels),
        '<h2 id="fingerprints">Fingerprints</h2>' + "".join(table_html(t) for t in fingerprints),
        f'<h2 id="warnings">Warnings</h2><ul>{warnings}</ul>',
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="icon" href="data:,"><title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n'
            + "\n".join(sections) + "\n</body></html>\n")
