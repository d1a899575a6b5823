"""Render a codi-probe JSON report as HTML or Markdown with plots (``codi-probe report``), and compare
two reports (``codi-probe compare``). Plotting needs the optional ``plot`` extra (matplotlib)."""

from .compare import compare_reports
from .load import ReportError, load_report

__all__ = ["ReportError", "compare_reports", "load_report"]
