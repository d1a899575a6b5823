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
    p.add_argument("old", help="the earlier report (JSON): the baseline")
    p.add_argument("new", help="the later report (JSON)")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="absolute widening of OLD's CI before a statistic counts as moved (default 0; "
                        "pytest: --codi-tolerance)")
    p.add_argument("--rel-tolerance", type=float, default=0.0,
                   help="relative widening: rel x |OLD's value|; the larger of the two applies (default 0)")
    p.add_argument("--claim-tolerance", action="append", default=[], metavar="'PATTERN abs=X rel=Y'",
                   help="a tolerance for the claims whose id matches PATTERN (repeatable; first match wins)")
    p.add_argument("--fail-on", default="flip,moved",
                   help="what exits 1: flip, moved, flip,moved (default) or none (pytest: --codi-fail-on)")
    p.add_argument("--force", action="store_true",
                   help="compare even when OLD is partial or the runs differ in model, problems, seed, dtype, "
                        "version or schema (refused by default, exit 2)")
    p.add_argument("--all", action="store_true", help="list every matched claim, not only the changed ones")


def run_compare(args: argparse.Namespace) -> int:
    """Print the regression table; 1 when a claim regressed under the rule, else 0 (2: refused or bad input)."""
    from ..regression import Rule, Tolerance, parse_claim_tolerance, parse_fail_on
    from .compare import compare_reports, format_comparison

    if args.tolerance < 0 or args.rel_tolerance < 0:
        raise ValueError(f"--tolerance and --rel-tolerance must be >= 0, got {args.tolerance}, {args.rel_tolerance}")
    try:
        fail_on = parse_fail_on(args.fail_on)
    except ValueError as exc:
        raise ValueError(f"--fail-on {args.fail_on!r}: {exc}") from None
    rule = Rule(fail_on, Tolerance(args.tolerance, args.rel_tolerance),
                tuple(parse_claim_tolerance(line) for line in args.claim_tolerance))
    cmp = compare_reports(args.old, args.new, rule=rule, force=args.force)
    print(format_comparison(cmp, show_all=args.all))
    return cmp.exit_code
