"""Audit a clean/corrupted pair file: re-derive every corrupted answer from the clean solution.

Published pair sets carry wrong corrupted answers (e.g. GusSand/CoT_Exploration's
``problem_pairs_gpt4_answers.json``, whose corrupted answers GPT-4 computed). For each pair (either schema
of :func:`codi_probe.data.loaders.load_pairs`):

1. the clean solution's calculator annotations (``<<expr=result>>``; for rows without a solution, the
   GSM8K solution whose question is the same text) must evaluate exactly and end at the clean answer;
2. the two questions must differ in exactly one written number, ``old -> new``;
3. the chain is re-run with ``old -> new``, every changed step result propagated into later steps. A
   literal in an annotation can be ambiguous: a value that is both a question number and an earlier
   step's result (``40%`` and ``80/2=40``), or a question number written twice or used unwritten (a
   number word, "half"). Every reading of every ambiguous literal is tried (at most ``MAX_READINGS``).

Verdicts: ``agree`` (every reading gives the file's corrupted answer: the exact value, as a float, equals the
stated number), ``disagree`` (no reading does),
``unverifiable`` with the reason (no annotations, an inexact or incomplete clean chain, a question diff
that is not one number, the number not in the annotations, readings that disagree among themselves).
Arithmetic is exact (``fractions.Fraction``) through :func:`codi_probe.data.arith.safe_eval`; nothing is
``eval``'d.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any, Iterable, Mapping, Sequence

from .arith import LITERAL_RE, UnsafeExpressionError, evaluate_annotation, format_number, safe_eval
from .pairs import QuestionNumber, hidden_use, question_numbers
from .problemset import PairSet, ProblemPair

STATUSES = ("agree", "disagree", "unverifiable")
MAX_READINGS = 4096


@dataclass(frozen=True)
class PairAudit:
    """One pair's verdict (``status`` one of :data:`STATUSES`, ``reason`` starting with a snake_case label
    when unverifiable). ``derived``: the exact corrupted answers over the readings (formatted, sorted);
    ``stated``: the file's corrupted answer; ``changed``: the question diff ``"old -> new"``."""

    pair_id: str
    status: str
    reason: str
    changed: str = ""
    stated: float | None = None
    derived: tuple[str, ...] = ()
    readings: int = 0
    note: str = ""  # e.g. a changed_number field that disagrees with the question diff

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["derived"] = list(self.derived)
        return out


@dataclass(frozen=True)
class AuditResult:
    """Every pair's audit, in file order."""

    rows: tuple[PairAudit, ...]

    @property
    def counts(self) -> dict[str, int]:
        got = Counter(r.status for r in self.rows)
        return {s: got.get(s, 0) for s in STATUSES}

    @property
    def reasons(self) -> dict[str, int]:
        """Unverifiable pairs by reason label (the text before the first colon)."""
        return dict(Counter(r.reason.split(":")[0] for r in self.rows if r.status == "unverifiable").most_common())

    def status_of(self) -> dict[str, str]:
        return {r.pair_id: r.status for r in self.rows}

    def summary_lines(self, name: str, *, every: bool = False) -> list[str]:
        """The text ``codi-probe pairs audit`` prints: counts, unverifiable reasons, then the disagreeing
        pairs (every pair with ``every``)."""
        c = self.counts
        lines = [f"{name}: {len(self.rows)} pairs: {c['agree']} agree, {c['disagree']} disagree, "
                 f"{c['unverifiable']} unverifiable"]
        if self.reasons:
            lines.append("unverifiable: " + ", ".join(f"{k} {v}" for k, v in self.reasons.items()))
        shown = [r for r in self.rows if every or r.status == "disagree"]
        if shown:
            lines.append("every pair:" if every else "disagree:")
            lines += [f"  {r.pair_id}  {r.status:<12} {r.changed or '-':<18} {r.reason}" + (f" ({r.note})" if r.note else "")
                      for r in shown]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "unverifiable_reasons": self.reasons, "pairs": [r.to_json() for r in self.rows]}


class _Unverifiable(Exception):
    pass


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def solutions_by_question(problems: Iterable[Any]) -> dict[str, list[str]]:
    """``{question text (whitespace collapsed): annotations}`` for problems that have annotations."""
    return {_normal(p.question): list(p.meta["annotations"]) for p in problems if p.meta.get("annotations")}


def audit_pair(pair: ProblemPair, solutions: Mapping[str, list[str]] | None = None) -> PairAudit:
    """Re-derive ``pair``'s corrupted answer; see the module docstring for the rules."""
    try:
        return _audit(pair, solutions or {})
    except _Unverifiable as why:
        reason, changed = why.args
        return PairAudit(pair.pair_id, "unverifiable", reason, changed, pair.corrupted.answer)


def audit_pairs(pairs: Iterable[ProblemPair], solutions: Mapping[str, list[str]] | None = None) -> AuditResult:
    return AuditResult(tuple(audit_pair(p, solutions) for p in pairs))


def keep_agreeing(pairs: PairSet, result: AuditResult) -> PairSet:
    """Only the pairs whose corrupted answer the audit re-derived (logged in ``filters``)."""
    status = result.status_of()
    return pairs.where(lambda p: status.get(p.pair_id) == "agree", "audit_agree", counts=result.counts)


def _audit(pair: ProblemPair, solutions: Mapping[str, list[str]]) -> PairAudit:
    clean, corrupted = pair.clean, pair.corrupted
    changed = ""
    annotations = clean.meta.get("annotations") or solutions.get(_normal(clean.question))
    if not annotations:
        raise _Unverifiable("no_annotations: the clean side has no calculator annotations to re-run", changed)
    try:
        chain = [evaluate_annotation(a) for a in annotations]
    except (UnsafeExpressionError, ZeroDivisionError) as e:
        raise _Unverifiable(f"clean_annotation_unparsable: {e}", changed) from None
    bad = next((str(s) for s in chain if not s.consistent), None)
    if bad:
        raise _Unverifiable(f"clean_chain_inexact: {bad} evaluates to another value", changed)
    if clean.answer is None or chain[-1].stated != Fraction(str(clean.answer)):
        raise _Unverifiable(f"clean_chain_incomplete: the last annotation gives {format_number(chain[-1].stated)}, "
                            f"the clean answer is {clean.answer}", changed)
    old, new = _question_diff(clean.question, corrupted.question)
    changed = f"{old.text} -> {new.text}"
    field = _field_numbers(pair.changed_number)
    note = (f"the file's changed_number says {pair.changed_number!r}; the questions differ in {changed}"
            if field is not None and field != (old.value, new.value) else "")
    if corrupted.answer is None:
        raise _Unverifiable("no_stated_answer: the corrupted side has no answer", changed)
    meanings = _meanings(chain, old.value, clean.question)
    if not any(("question",) in options for step in meanings for options in step):
        raise _Unverifiable(f"number_not_in_annotations: {old.text} is not a literal of any annotation", changed)
    derived, readings = _derive(chain, meanings, old.value, new.value, changed)
    stated = float(corrupted.answer)  # files store floats: the exact value matches when it rounds to the stated float
    matches = {float(d) == stated for d in derived}
    shown = tuple(format_number(d).strip("()") for d in sorted(derived))
    if matches == {True}:
        status, reason = "agree", "re-derived the stated answer"
    elif matches == {False}:
        status, reason = "disagree", f"re-derived {' or '.join(shown)}, the file says {corrupted.answer}"
    else:
        status, reason = "unverifiable", f"ambiguous_readings: readings give {' or '.join(shown)}"
    return PairAudit(pair.pair_id, status, reason, changed, corrupted.answer, shown, readings, note)


def _question_diff(clean: str, corrupted: str) -> tuple[QuestionNumber, QuestionNumber]:
    a, b = question_numbers(clean), question_numbers(corrupted)
    diffs = [(x, y) for x, y in zip(a, b) if x.value != y.value]
    if len(a) != len(b) or len(diffs) != 1:
        raise _Unverifiable(f"question_diff: the questions differ in {len(diffs) if len(a) == len(b) else 'the count of'} "
                            f"numbers, not in exactly one", "")
    x, y = diffs[0]
    if clean[: x.start] + y.text + clean[x.end:] != corrupted:
        raise _Unverifiable("question_diff: the questions differ in more than the changed number", "")
    return x, y


def _field_numbers(text: str) -> tuple[Fraction, Fraction] | None:
    parts = [t.strip().replace(",", "") for t in str(text or "").split("->")]
    try:
        return (Fraction(parts[0]), Fraction(parts[1])) if len(parts) == 2 else None
    except ValueError:
        return None


def _meanings(chain, old: Fraction, question: str) -> list[list[tuple]]:
    """Per step, per literal occurrence, what it may stand for: ``("const",)``, ``("question",)`` (the
    changed number) or ``("result", j)`` (step j < i's result)."""
    written = Counter(n.value for n in question_numbers(question))
    out = []
    for i, step in enumerate(chain):
        per_literal = []
        for m in LITERAL_RE.finditer(step.expr):
            value = Fraction(m.group())
            options: list[tuple] = [("result", j) for j in range(i) if chain[j].stated == value]
            if value == old:
                options.append(("question",))
            loose = written[value] > (1 if value == old else 0) or hidden_use(value, question)
            if not options or loose:
                options.append(("const",))
            per_literal.append(options)
        out.append(per_literal)
    return out


def _derive(chain, meanings, old: Fraction, new: Fraction, changed: str) -> tuple[set[Fraction], int]:
    choices = [opts for step in meanings for opts in step]
    n = 1
    for opts in choices:
        n *= len(opts)
    if n > MAX_READINGS:
        raise _Unverifiable(f"too_many_readings: {n} readings of the ambiguous literals (limit {MAX_READINGS})", changed)
    derived: set[Fraction] = set()
    count = 0
    for combo in itertools.product(*choices):
        picks = iter(combo)
        values: list[Fraction] = []
        try:
            for step, per_literal in zip(chain, meanings):
                subs = [next(picks) for _ in per_literal]
                values.append(safe_eval(_substitute(step.expr, subs, old, new, values)))
        except ZeroDivisionError:
            continue
        derived.add(values[-1])
        count += 1
    if not derived:
        raise _Unverifiable("division_by_zero: every reading divides by zero", changed)
    return derived, count


def _substitute(expr: str, picks: Sequence[tuple], old: Fraction, new: Fraction, values: Sequence[Fraction]) -> str:
    it = iter(picks)

    def swap(m: re.Match[str]) -> str:
        pick = next(it)
        if pick[0] == "question":
            return format_number(new)
        if pick[0] == "result":
            return format_number(values[pick[1]])
        return m.group()

    return LITERAL_RE.sub(swap, expr)


__all__ = ["AuditResult", "MAX_READINGS", "PairAudit", "STATUSES", "audit_pair", "audit_pairs", "keep_agreeing",
           "solutions_by_question"]
