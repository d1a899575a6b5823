"""A Markdown page with the figures as PNG files in a folder beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .plots import Panel
from .tables import Table


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table_md(table: Table) -> str:
    """A pipe table under a level-3 heading, its note in italics."""
    lines = [f"### {table.title}", ""]
    if table.note:
        lines += [f"_{_escape(table.note)}_", ""]
    if not table.rows:
        return "\n".join(lines + ["(empty)", ""])
    header = [h or " " for h in table.header]
    lines += ["| " + " | ".join(_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_escape(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines + [""])


def image_dir(out: Path) -> Path:
    """The folder beside ``out`` that holds its figures: ``<stem>_files``."""
    return out.with_name(f"{out.stem}_files")


def panel_md(panel: Panel, folder: str) -> str:
    lines = [f"### {panel.title}", ""]
    if panel.note:
        lines += [f"> **Note:** {_escape(panel.note)}", ""]
    if panel.png is not None:
        lines += [f"![{_escape(panel.title)}]({folder}/{panel.slug}.png)", ""]
    return "\n".join(lines + [f"_{_escape(panel.caption)}_", ""])


def render_markdown(report: dict[str, Any], run: Table, tables: list[Table], panels: list[Panel],
                    fingerprints: list[Table], folder: str) -> str:
    """The page; figures are linked as ``folder/<slug>.png``."""
    model = (report.get("model") or {}).get("name", "no model")
    warnings = [f"- {_escape(w)}" for w in report.get("warnings", [])] or ["- none"]
    parts = [f"# codi-probe report: {model} ({report.get('created', '')})", "", "## Run", "", table_md(run),
             "## Verdicts", "", *(table_md(t) for t in tables), "## Plots", "",
             *(panel_md(p, folder) for p in panels), "## Fingerprints", "", *(table_md(t) for t in fingerprints),
             "## Warnings", "", *warnings, ""]
    return "\n".join(parts)
