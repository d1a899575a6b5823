"""``codi-probe report``: a report file to an HTML page or a Markdown page with figures beside it."""

from __future__ import annotations

from pathlib import Path

from .load import ReportError, load_report
from .write import write_atomic

INSTALL_HINT = 'the report command needs matplotlib: pip install "codi-probe[plot]"'
FORMATS = ("html", "md")


def require_matplotlib() -> None:
    """Raise a one-line :class:`ReportError` with the install command when matplotlib is absent."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ReportError(INSTALL_HINT) from None


def output_path(report_path: Path, out: str | None, fmt: str | None) -> tuple[Path, str]:
    """The output file and format: ``--format``, else the suffix of ``--out``, else html beside the report."""
    if fmt is None:
        fmt = "md" if out is not None and Path(out).suffix.lower() in (".md", ".markdown") else "html"
    if fmt not in FORMATS:
        raise ReportError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return (Path(out) if out is not None else report_path.with_suffix(f".{fmt}")), fmt


def write_report(report_path: str | Path, out: str | None = None, fmt: str | None = None) -> Path:
    """Render the report at ``report_path``; returns the page written (atomically)."""
    require_matplotlib()
    report_path = Path(report_path)
    out_path, fmt = output_path(report_path, out, fmt)
    report = load_report(report_path)
    try:  # fail before the slow part
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"{out_path}: cannot write: {exc.strerror or exc}") from None
    from .plots import build_panels
    from .tables import claims_table, fingerprint_tables, reported_table, summary_table

    panels = build_panels(report)
    parts = (summary_table(report), [claims_table(report), reported_table(report)], panels,
             fingerprint_tables(report))
    if fmt == "html":
        from .html import render_html

        write_atomic(out_path, render_html(report, *parts))
        return out_path
    from .markdown import image_dir, render_markdown

    folder = image_dir(out_path)
    for panel in panels:
        if panel.png is not None:
            write_atomic(folder / f"{panel.slug}.png", panel.png)
    write_atomic(out_path, render_markdown(report, *parts, folder=folder.name))
    return out_path
