"""Arguments and entry points of the ``report`` and ``compare`` subcommands (errors are
:class:`ReportError`, a ``ValueError``: the CLI prints one line and exits 2)."""

from __future__ import annotations

import argparse

from .render import FORMATS


def add_report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("report", help="a codi-probe JSON report, e.g. reports/latest.json")
    p.add_argument("--out", help="output file (default: the report's path with .html or .md)")
    p.add_argument("--format", choices=FORMATS, help="html (self-contained) or md (figures in <stem>_files/); "
                                                     "default: from --out's suffix, else html")


def run_report(args: argparse.Namespace) -> int:
    from .render import write_report

    print(write_report(args.report, args.out, args.format))
    return 0


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("old", help="the earlier report (JSON)")
    p.add_argument("new", help="the later report (JSON)")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="absolute widening of OLD's CI before a statistic counts as moved (default 0)")
    p.add_argument("--all", action="store_true", help="list every matched claim, not only the changed ones")


def run_compare(args: argparse.Namespace) -> int:
    """Print the regression table; 1 on a verdict flip, else 0."""
    from .compare import compare_reports, format_comparison

    cmp = compare_reports(args.old, args.new, args.tolerance)
    print(format_comparison(cmp, show_all=args.all))
    return cmp.exit_code
