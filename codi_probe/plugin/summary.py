"""The end-of-run terminal summary: the baseline, one line per claim (wrapped to the terminal), the status."""

from __future__ import annotations

import textwrap
from typing import Any

from .expectations import expectations_label
from .randomization import NOT_SPECIFIC, twin_note
from .records import brief

MIN_WIDTH = 80  # wrap at the terminal's width, never narrower than this


def claim_line(claim: dict[str, Any], width: int) -> str:
    """``IMP-01[P5]  refuted  acc_drop=0.031 CI95[0.01, 0.052] p=0.003 q=0.012 n=100/100  passed``; an
    inconclusive or invalid verdict adds its reason in brackets; with ``--codi-randomization-check``, the
    twin's verdict and, when both are supported, ``[not specific to training]``."""
    numbers = brief(claim)
    if claim.get("q_value") is not None:
        numbers += f" q={claim['q_value']:.4g}"
    line = f"{claim['id']:<{width}}  {claim.get('verdict') or '-':<12}  {numbers}  {claim['outcome']}"
    if claim.get("verdict") in ("inconclusive", "invalid") and claim.get("verdict_reason"):
        line += f" [{claim['verdict_reason']}]"
    if claim.get("expected") not in (None, "record"):
        line += f" (expected {claim['expected']})"
    return line + twin_note(claim)


def status_text(report: dict[str, Any]) -> str:
    """``status complete``; a ``-k``/``-m``/``--lf``/test-id run says ``subset (-k '...'), complete``
    instead: its claims are not the catalogue, and it is no baseline."""
    from ..regression import baseline_problems

    selection = (report.get("environment") or {}).get("selection") or {}
    if not selection.get("subset"):
        return f"status {report['status']}"
    how = next((p for p in baseline_problems({**report, "status": "complete"}) if p.startswith("it ran")), "")
    return f"{how.removeprefix('it ran a ')}, {report['status']}"


def baseline_lines(report: dict[str, Any]) -> list[str]:
    """The baseline the claims were compared with (``--codi-compare latest`` names the file it resolved
    to) and a change of weights (a retrained checkpoint)."""
    baseline = report.get("baseline")
    if not baseline:
        return []
    chosen = (report.get("options") or {}).get("compare")
    via = f" (--codi-compare {chosen})" if chosen else ""
    lines = [f"codi-probe baseline: {baseline['path']}{via}"]
    if baseline.get("weights_changed"):
        lines.append(f"codi-probe baseline: {baseline['weights_changed']} (another checkpoint of the same model)")
    return lines


def summary_lines(report: dict[str, Any], width: int = MIN_WIDTH) -> list[str]:
    """The claim table wrapped at ``width`` columns (at least :data:`MIN_WIDTH`; a continuation is indented
    under the verdict), then the counts and the status."""
    claims = report["claims"]
    id_width = max((len(c["id"]) for c in claims), default=0)
    width = max(width, MIN_WIDTH)
    indent = " " * (id_width + 2)
    lines = baseline_lines(report)
    for claim in claims:
        lines += textwrap.wrap(claim_line(claim, id_width), width, subsequent_indent=indent,
                               break_on_hyphens=False) or [""]
    randomization = report.get("randomization")
    if randomization:
        lines.append(f"randomization check: {len(randomization['not_specific_to_training'])} of "
                     f"{randomization['claims']} claims run on the randomized twin are supported on both: "
                     f"{NOT_SPECIFIC}")
    verdicts = ", ".join(f"{n} {v}" for v, n in report["summary"]["verdicts"].items() if n)
    lines.append(f"{len(claims)} claims ({verdicts or 'none recorded'}); "
                 f"expectations: {expectations_label(report['expectations'])}; {status_text(report)}")
    return lines
