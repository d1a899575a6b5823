"""The report's tables as plain strings (rendered by ``html.py`` and ``markdown.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..plugin.randomization import NOT_SPECIFIC
from ..plugin.records import brief
from .fmt import compact_json, interval, num, plain

LIST_LIMIT = 8


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""


def _flat(value: Any, prefix: str = "") -> list[list[str]]:
    """``[key, value]`` rows of a nested mapping, dotted keys, long lists shortened."""
    if isinstance(value, dict) and value:
        return [row for k, v in value.items() for row in _flat(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list) and value and all(not isinstance(v, (dict, list)) for v in value):
        shown = ", ".join(num(v) for v in value[:LIST_LIMIT])
        more = f", ... ({len(value)} in all)" if len(value) > LIST_LIMIT else ""
        return [[prefix, shown + more]]
    if isinstance(value, (dict, list)):
        return [[prefix, compact_json(value)]]
    return [[prefix, num(value)]]


def fingerprint_tables(report: dict[str, Any]) -> list[Table]:
    """Model fingerprint, data fingerprint and environment as key/value tables."""
    model = report.get("model")
    return [Table("Model fingerprint", ["key", "value"], _flat(model) if model else [],
                  "" if model else "no model was loaded in this run"),
            Table("Data fingerprint", ["key", "value"], _flat(report.get("data") or {})),
            Table("Environment", ["key", "value"], _flat(report.get("environment") or {}))]


def summary_table(report: dict[str, Any]) -> Table:
    summary = report.get("summary", {})
    rows = [["created", report.get("created", "")], ["status", str(report.get("status"))],
            ["exit status", num(report.get("exitstatus"))], ["duration", f"{num(report.get('duration_s'))} s"],
            ["tests", num(summary.get("tests"))], ["claims", num(summary.get("claims"))]]
    rows += [[f"{name}", ", ".join(f"{k} {v}" for k, v in summary.get(name, {}).items() if v)]
             for name in ("outcomes", "kinds", "verdicts")]
    rows.append(["check failures", num(summary.get("check_failures"))])
    mt = report.get("multiple_testing") or {}
    rows.append(["q-values", f"{mt.get('method', '')} over {mt.get('family', '')} (m = {mt.get('m')})"])
    return Table("Summary", ["", ""], rows)


CLAIM_HEADER = ["claim", "kind", "verdict", "expected", "outcome", "statistic", "value", "CI", "p", "q", "n",
                "min n", "threshold", "why"]


def _randomized(claim: dict[str, Any]) -> str:
    """The twin's verdict of ``--codi-randomization-check``, and ``not specific to training`` when both are
    supported ("" for a claim without a twin)."""
    twin = claim.get("randomized") or {}
    text = twin.get("verdict") or twin.get("outcome") or ""
    return f"{text}: {NOT_SPECIFIC}" if claim.get("not_specific_to_training") else text


def claims_table(report: dict[str, Any]) -> Table:
    """One row per claim: verdict, expectation, outcome and the primary statistic with CI, p and q; with
    the model-randomization check, the verdict on the randomized twin beside the verdict."""
    checked = report.get("randomization") is not None
    header = CLAIM_HEADER[:3] + ["randomized"] + CLAIM_HEADER[3:] if checked else CLAIM_HEADER
    rows = [[c["id"], c["kind"], c.get("verdict") or "none", *([_randomized(c)] if checked else []),
             c.get("expected") or "", c.get("outcome", ""),
             c.get("statistic") or "", num(c.get("value")), interval(c.get("ci")), num(c.get("p_value"), 3),
             num(c.get("q_value"), 3), num(c.get("n")), num(c.get("min_n")), plain(c.get("threshold")),
             c.get("verdict_reason") or ""]
            for c in report.get("claims", [])]
    note = ("p: of the null that the claim's prediction fails, at its threshold (family-adjusted); "
            "q: Benjamini-Hochberg over the claims with a p-value; min n: the claim's declared minimum.")
    if checked:
        note += (" randomized: the verdict on the weight-randomized twin (model-randomization check); "
                 f"'{NOT_SPECIFIC}': supported on both.")
    return Table("Claims", header, rows, note)


def _matched(reported: dict[str, Any], details: dict[str, Any]) -> str | None:
    """``key: reported → measured`` for a reported mapping whose keys a numeric details mapping shares."""
    for value in details.values():
        if isinstance(value, dict) and set(reported) <= set(value) and reported:
            return ", ".join(f"{k}: {num(v, 3)} → {num(value[k], 3)}" for k, v in reported.items())
    return None


def reported_table(report: dict[str, Any]) -> Table:
    """The seeds' reported numbers beside what this run measured."""
    rows = []
    for c in report.get("claims", []):
        if c.get("reported") is None:
            continue
        reported = c["reported"]
        side = _matched(reported, c.get("details") or {}) if isinstance(reported, dict) else None
        rows.append([c["id"], plain(reported), brief(c), side or "", c.get("source") or ""])
    return Table("Reported vs measured", ["claim", "reported", "measured", "reported → measured", "source"], rows,
                 "reported: the number the source gives; reported → measured: per key, where the claim's details "
                 "carry the same keys.")
