"""``codi-probe compare OLD NEW``: verdict flips and statistic deltas under the one regression rule the
plugin's ``--codi-compare`` applies (:mod:`codi_probe.regression`): the same comparability check (refused,
exit 2, unless ``--force``), the same failure rules and tolerances, and exit 1 exactly when the plugin
would fail a claim's test."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..regression import (Rule, Tolerance, baseline_problems, differences, match, problem_set_differences,
                          run_dtype, weights_changed)
from .fmt import value_ci
from .load import ReportError, load_report

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
    rule: Rule
    rows: list[Row] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # the findings that fail under the rule
    reported: list[str] = field(default_factory=list)  # findings the rule's fail_on does not fail
    forced: list[str] = field(default_factory=list)  # what differed when --force compared anyway
    weights: str | None = None  # "weights sha256 a -> b": a retrained (or other) checkpoint of the same model

    @property
    def flips(self) -> list[Row]:
        return [r for r in self.rows if r.change == "FLIP"]

    @property
    def exit_code(self) -> int:
        """1 when any claim regressed under the rule (as its test would fail under the plugin), else 0."""
        return 1 if self.messages else 0


def _row(claim: dict[str, Any], old: dict[str, Any], rule: Rule) -> tuple[Row, list]:
    findings = rule.check(old, claim)
    kinds = {f.kind for f in findings}
    same_stat = old.get("statistic") == claim.get("statistic")
    delta = (claim["value"] - old["value"]) if same_stat and None not in (old.get("value"), claim.get("value")) else None
    change = ("FLIP" if "flip" in kinds else "moved" if "moved" in kinds
              else "" if same_stat else "statistic renamed")
    row = Row(claim["id"], claim.get("kind", ""), old.get("verdict"), claim.get("verdict"),
              claim.get("statistic") or "", value_ci(old), value_ci(claim), delta, change)
    return row, findings


def compare_reports(old_path: str | Path, new_path: str | Path, tolerance: float = 0.0, *,
                    rule: Rule | None = None, force: bool = False) -> Comparison:
    """Match NEW's claims with OLD's and judge them under ``rule`` (default: fail on flips and moves, absolute
    ``tolerance``). Refuses (:class:`ReportError`) a partial OLD or two runs that differ in model,
    problems, seed, dtype, version or schema, unless ``force``."""
    if rule is None:
        if tolerance < 0:
            raise ValueError(f"--tolerance must be >= 0, got {tolerance}")
        rule = Rule(tolerance=Tolerance(tolerance))
    old, new = load_report(old_path), load_report(new_path)
    if rule.dtype is None:
        rule = replace(rule, dtype=run_dtype(new))  # float noise of NEW's dtype
    problems = baseline_problems(old) + differences(old, new) + problem_set_differences(old, new)
    if problems and not force:
        raise ReportError(f"{old_path}: not comparable with {new_path} ({'; '.join(problems)}); "
                          "pass --force to compare anyway")
    rows, failing, reported, added = [], [], [], []
    for claim in new["claims"]:
        matched = match(old["claims"], claim["id"], claim.get("nodeid"))
        if matched is None:
            added.append(claim["id"])
            continue
        row, findings = _row(claim, matched, rule)
        rows.append(row)
        failing += [f.message for f in findings if f.fails]
        reported += [f.message for f in findings if not f.fails]
    removed = sorted({c["id"] for c in old["claims"]} - {c["id"] for c in new["claims"]})
    return Comparison(str(old_path), str(new_path), rule, rows, added, removed, failing, reported, problems,
                      weights_changed(old, new))


def format_table(header: list[str] | tuple[str, ...], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [list(header), *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_comparison(cmp: Comparison, show_all: bool = False) -> str:
    """The regression table (changed claims, or all with ``show_all``) and a summary line."""
    shown = [r for r in cmp.rows if show_all or r.change or (r.delta or 0.0) != 0.0]
    fail_on = ", ".join(sorted(cmp.rule.fail_on)) or "nothing"
    parts = [f"compare {cmp.old} -> {cmp.new} (tolerance {cmp.rule.tolerance.describe()}; fails on {fail_on})"]
    if cmp.weights:
        parts.append(f"{cmp.weights} (another checkpoint of the same model)")
    parts += [f"forced although not comparable: {'; '.join(cmp.forced)}", ""] if cmp.forced else [""]
    parts.append(format_table(HEADER, [r.cells() for r in shown]) if shown else "no claim changed")
    if cmp.added:
        parts += ["", "new claims (not in OLD): " + ", ".join(cmp.added)]
    if cmp.removed:
        parts += ["", "claims missing from NEW: " + ", ".join(cmp.removed)]
    if cmp.messages:
        parts += ["", "regressions (as --codi-compare fails them):", *(f"  {m}" for m in cmp.messages)]
    if cmp.reported:
        parts += ["", "changes the failure rule lets pass:", *(f"  {m}" for m in cmp.reported)]
    moved = sum(r.change == "moved" for r in cmp.rows)
    parts += ["", f"{len(cmp.flips)} verdict flip(s), {moved} moved statistic(s), {len(cmp.rows)} claims compared; "
                  f"exit {cmp.exit_code}"]
    return "\n".join(parts)
