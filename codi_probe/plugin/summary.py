"""The end-of-run terminal summary: one line per claim."""

from __future__ import annotations

from typing import Any

from .expectations import expectations_label
from .records import brief


def claim_line(claim: dict[str, Any], width: int) -> str:
    """``IMP-01[P5]  refuted  acc_drop=0.031 CI95[0.01, 0.052] p=0.003 q=0.012 n=100/100  passed``; an
    inconclusive or invalid verdict adds its reason in brackets."""
    numbers = brief(claim)
    if claim.get("q_value") is not None:
        numbers += f" q={claim['q_value']:.4g}"
    line = f"{claim['id']:<{width}}  {claim.get('verdict') or '-':<12}  {numbers}  {claim['outcome']}"
    if claim.get("verdict") in ("inconclusive", "invalid") and claim.get("verdict_reason"):
        line += f" [{claim['verdict_reason']}]"
    if claim.get("expected") not in (None, "record"):
        line += f" (expected {claim['expected']})"
    return line


def summary_lines(report: dict[str, Any]) -> list[str]:
    claims = report["claims"]
    width = max((len(c["id"]) for c in claims), default=0)
    lines = [claim_line(c, width) for c in claims]
    verdicts = ", ".join(f"{n} {v}" for v, n in report["summary"]["verdicts"].items() if n)
    lines.append(f"{len(claims)} claims ({verdicts or 'none recorded'}); "
                 f"expectations: {expectations_label(report['expectations'])}; status {report['status']}")
    return lines
