"""``codi-probe compare OLD NEW``: verdict flips and statistic deltas, matched and checked with the
plugin's ``--codi-baseline`` logic (``codi_probe.plugin.baseline``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..plugin.baseline import check_baseline, load_baseline
from ..plugin.records import ClaimRecord
from .fmt import num, value_ci
from .load import load_report

HEADER = ("claim", "kind", "verdict (old -> new)", "statistic", "old [CI]", "new [CI]", "delta", "change")


@dataclass(frozen=True)
class Row:
    """One claim present in both reports."""

    id: str
    kind: str
    old_verdict: str | None
    new_verdict: str | None
    statistic: str
    old: str
    new: str
    delta: float | None
    change: str  # "FLIP", "moved" (outside the old CI widened by the tolerance), "statistic renamed" or ""

    def cells(self) -> list[str]:
        verdicts = f"{self.old_verdict or 'none'} -> {self.new_verdict or 'none'}"
        delta = "" if self.delta is None else f"{self.delta:+.4g}"
        return [self.id, self.kind, verdicts, self.statistic, self.old, self.new, delta, self.change]


@dataclass(frozen=True)
class Comparison:
    old: str
    new: str
    tolerance: float
    rows: list[Row] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # check_baseline's failure lines
    note: str = ""

    @property
    def flips(self) -> list[Row]:
        return [r for r in self.rows if r.change == "FLIP"]

    @property
    def exit_code(self) -> int:
        """1 when any verdict flipped, else 0."""
        return 1 if self.flips else 0


def _row(claim: dict[str, Any], old: dict[str, Any], tolerance: float) -> tuple[Row, list[str]]:
    record = ClaimRecord.from_dict(claim)
    record.baseline = old
    messages = check_baseline(record, tolerance)  # empirical claims only, like --codi-baseline
    flipped = bool(old["verdict"] and record.verdict and old["verdict"] != record.verdict)
    same_stat = old["statistic"] == record.statistic
    delta = (record.value - old["value"]) if same_stat and None not in (old["value"], record.value) else None
    # check_baseline gives at most one flip line and one moved line
    change = ("FLIP" if flipped else "moved" if len(messages) > flipped
              else "" if same_stat else "statistic renamed")
    row = Row(record.id, record.kind, old["verdict"], record.verdict, record.statistic or "", value_ci(old),
              value_ci(claim), delta, change)
    return row, messages


def compare_reports(old_path: str | Path, new_path: str | Path, tolerance: float = 0.0) -> Comparison:
    """Match NEW's claims with OLD's (same id, then same nodeid among duplicates) and compare them."""
    if tolerance < 0:
        raise ValueError(f"--tolerance must be >= 0, got {tolerance}")
    old, new = load_report(old_path), load_report(new_path)
    baseline = load_baseline(str(old_path), tolerance)
    models = [(r.get("model") or {}).get("sha256") for r in (old, new)]
    rows, messages, added = [], [], []
    for claim in new["claims"]:
        matched = baseline.match(ClaimRecord.from_dict(claim), claim["nodeid"])
        if matched is None:
            added.append(claim["id"])
            continue
        row, lines = _row(claim, matched, tolerance)
        rows.append(row)
        messages += lines
    removed = baseline.describe({c["id"] for c in new["claims"]})["missing"]
    note = "" if models[0] == models[1] else "the reports are of different models (weights sha256 differ)"
    return Comparison(str(old_path), str(new_path), tolerance, rows, added, removed, messages, note)


def format_table(header: list[str] | tuple[str, ...], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [list(header), *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_comparison(cmp: Comparison, show_all: bool = False) -> str:
    """The regression table (changed claims, or all with ``show_all``) and a summary line."""
    shown = [r for r in cmp.rows if show_all or r.change or (r.delta or 0.0) != 0.0]
    parts = [f"compare {cmp.old} -> {cmp.new} (tolerance {num(cmp.tolerance)})"]
    parts += [f"note: {cmp.note}", ""] if cmp.note else [""]
    parts.append(format_table(HEADER, [r.cells() for r in shown]) if shown else "no claim changed")
    if cmp.added:
        parts += ["", "new claims (not in OLD): " + ", ".join(cmp.added)]
    if cmp.removed:
        parts += ["", "claims missing from NEW: " + ", ".join(cmp.removed)]
    if cmp.messages:
        parts += ["", "baseline checks (as --codi-baseline would report them):", *(f"  {m}" for m in cmp.messages)]
    moved = sum(r.change == "moved" for r in cmp.rows)
    parts += ["", f"{len(cmp.flips)} verdict flip(s), {moved} moved statistic(s), {len(cmp.rows)} claims compared"]
    return "\n".join(parts)
