"""Clean/corrupted pair generation from GSM8K problems with calculator annotations.

Rule: one integer in the question is changed by ``delta`` (default +1); that value is substituted
wherever it appears as a literal in the annotations, and the chain is re-executed exactly, with every
changed intermediate result ``r -> r'`` substituted for the literal ``r`` in later annotations. A pair
is kept only if the clean chain is exact and ends at the gold answer, the substitution is unambiguous,
and the corrupted answer is finite, different and (by default) not negative. Per problem the number
is chosen by a generator seeded with ``(seed, problem index)``; strata are numbers of steps.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .arith import LITERAL_RE, Annotation, UnsafeExpressionError, evaluate_annotation, format_number, safe_eval
from .loaders import fixtures_dir, load_gsm8k
from .problemset import PairSet, Problem, ProblemPair, ProblemSet
from .selection import stratify

QUESTION_NUMBER_RE = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])\.\d+")
NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
).split()
IMPLICIT_HINTS: dict[int, str] = {
    2: r"half|twice|double|pair|couple|both|second",
    3: r"triple|thrice|third",
    4: r"quarter|fourth",
    7: r"week",
    12: r"dozen|month|year|foot|feet",
    24: r"day|hour",
    30: r"month",
    52: r"week|year",
    60: r"hour|minute",
    100: r"%|percent|cent",
    365: r"year",
    1000: r"thousand|kilo|liter|litre",
}
"""Values a solution may use without writing them as digits in the question (hint words)."""

SHIPPED_PAIRS_FILE = ("pairs", "gsm8k_test_pairs.json")
SHIPPED_PAIR_PARAMS: dict[str, Any] = {"seed": 0, "delta": 1, "per_stratum": 100}
"""Parameters of the shipped ``fixtures/data/pairs/gsm8k_test_pairs.json`` (from GSM8K test)."""


class PairRejected(ValueError):
    """Why one problem gives no verified pair (the reason is a short snake_case label)."""


@dataclass(frozen=True)
class QuestionNumber:
    """A number written in the question: its text, exact value and character span."""

    text: str
    value: Fraction
    start: int
    end: int


def question_numbers(question: str) -> list[QuestionNumber]:
    """All numbers written with digits in a question (thousands commas allowed), in order."""
    return [
        QuestionNumber(m.group(), Fraction(m.group().replace(",", "")), m.start(), m.end())
        for m in QUESTION_NUMBER_RE.finditer(question)
    ]


def _changeable(number: QuestionNumber, question: str) -> bool:
    """An integer not glued to letters, not part of a fraction ``a/b`` or time ``h:mm``."""
    before, after = question[number.start - 1 : number.start], question[number.end : number.end + 2]
    return (
        "." not in number.text
        and before not in ("/", ":")
        and not re.match(r"[A-Za-z]|[/:]\d", after)
    )


def hidden_use(value: Fraction, question: str) -> bool:
    """Whether ``value`` may also enter the solution unwritten (number word or implicit constant)."""
    if value == 1:
        return True
    words = []
    if value.denominator == 1 and 0 <= value <= 20:
        words.append(rf"\b{NUMBER_WORDS[int(value)]}\b")
    if value.denominator == 1 and int(value) in IMPLICIT_HINTS:
        words.append(IMPLICIT_HINTS[int(value)])
    return any(re.search(w, question, re.IGNORECASE) for w in words)


def substitute(expr: str, changes: dict[Fraction, Fraction]) -> str:
    """Replace every literal of ``expr`` whose value is a key of ``changes`` by the new value."""
    def swap(match: re.Match[str]) -> str:
        value = Fraction(match.group())
        return format_number(changes[value]) if value in changes else match.group()

    return LITERAL_RE.sub(swap, expr)


def rerun_chain(annotations: Iterable[str], old: Fraction, new: Fraction) -> list[str]:
    """Re-execute ``expr=result`` steps with ``old -> new`` substituted and changed results propagated.

    Steps whose expression is unchanged keep their text verbatim; changed ones are written
    ``expr=result`` with ``format_number`` (parenthesised where substituted, bare after ``=``).
    Raises ``ZeroDivisionError`` if a step divides by zero.
    """
    changes = {old: new}
    chain = []
    for text in annotations:
        step = evaluate_annotation(text)
        expr = substitute(step.expr, changes)
        if expr == step.expr:
            chain.append(text)
            continue
        value = safe_eval(expr)
        if value != step.stated:
            changes[step.stated] = value
        chain.append(f"{expr}={format_number(value).strip('()')}")
    return chain


def _verified_chain(problem: Problem) -> list[Annotation]:
    annotations = problem.meta.get("annotations") or []
    if not annotations:
        raise PairRejected("no_annotations")
    try:
        chain = [evaluate_annotation(a) for a in annotations]
    except (UnsafeExpressionError, ZeroDivisionError):
        raise PairRejected("clean_annotation_unparsable") from None
    if not all(step.consistent for step in chain):
        raise PairRejected("clean_chain_inexact")
    if problem.answer is None or chain[-1].stated != Fraction(str(problem.answer)):
        raise PairRejected("clean_chain_misses_gold")
    return chain


def _ambiguous(value: Fraction, chain: list[Annotation], question: str, *, as_result: bool) -> bool:
    """Whether a literal equal to ``value`` in the annotations could stand for something else.

    ``value`` is the changed question number (``as_result=False``: written once in the question and
    never a step's result) or a step result that changes (``as_result=True``: never written in the
    question and the result of exactly one step); in both cases it must not be a hidden constant.
    """
    written = sum(n.value == value for n in question_numbers(question))
    results = sum(step.stated == value for step in chain)
    expected = (0, 1) if as_result else (1, 0)
    return (written, results) != expected or hidden_use(value, question)


def _corrupt(problem: Problem, chain: list[Annotation], number: QuestionNumber, delta: int) -> ProblemPair:
    new = number.value + delta
    if new <= 0:
        raise PairRejected("changed_number_not_positive")
    if _ambiguous(number.value, chain, problem.question, as_result=False):
        raise PairRejected("ambiguous_number")
    try:
        annotations = rerun_chain(problem.meta["annotations"], number.value, new)
    except ZeroDivisionError:
        raise PairRejected("division_by_zero") from None
    corrupted_chain = [evaluate_annotation(a) for a in annotations]
    for clean_step, step in zip(chain, corrupted_chain):
        if step.stated != clean_step.stated and _ambiguous(clean_step.stated, chain, problem.question, as_result=True):
            raise PairRejected("ambiguous_result")
    answer = corrupted_chain[-1].stated
    if answer == chain[-1].stated:
        raise PairRejected("answer_unchanged")
    new_text = f"{int(new):,}" if "," in number.text else str(int(new))
    question = problem.question[: number.start] + new_text + problem.question[number.end :]
    changed = f"{number.text} -> {new_text}"
    corrupted = replace(
        problem,
        id=f"{problem.id}/corrupted",
        question=question,
        answer=float(answer),
        intermediates=tuple(float(step.stated) for step in corrupted_chain),
        meta={"annotations": annotations, "answer_exact": format_number(answer).strip("()"),
              "answer_is_integer": answer.denominator == 1, "changed_number": changed},
    )
    clean = replace(problem, id=f"{problem.id}/clean",
                    meta={"annotations": list(problem.meta["annotations"]), "changed_number": changed})
    return ProblemPair(problem.id, clean, corrupted, changed)


def pair_for(problem: Problem, rng: np.random.Generator, delta: int = 1, allow_negative: bool = False) -> ProblemPair:
    """The verified pair for one problem (numbers tried in seeded random order); raises PairRejected."""
    chain = _verified_chain(problem)
    candidates = [n for n in question_numbers(problem.question) if _changeable(n, problem.question)]
    if not candidates:
        raise PairRejected("no_changeable_number")
    reasons = []
    for index in rng.permutation(len(candidates)):
        try:
            pair = _corrupt(problem, chain, candidates[index], delta)
        except PairRejected as exc:
            reasons.append(str(exc))
            continue
        if not allow_negative and pair.corrupted.answer < 0 <= pair.clean.answer:
            reasons.append("answer_negative")
            continue
        return pair
    raise PairRejected(min(reasons))


def generate_pairs(
    problems: ProblemSet | None = None,
    *,
    seed: int = 0,
    delta: int = 1,
    per_stratum: int | None = None,
    allow_negative: bool = False,
) -> PairSet:
    """Verified pairs (GSM8K test by default), optionally at most ``per_stratum`` per steps stratum.

    The provenance log records the source fingerprint, parameters and every rejection reason's count.
    """
    problems = load_gsm8k("test") if problems is None else problems
    pairs, rejected = [], Counter()
    for index, problem in enumerate(problems):
        try:
            pairs.append(pair_for(problem, np.random.default_rng([seed, index]), delta, allow_negative))
        except PairRejected as exc:
            rejected[str(exc)] += 1
    record = {"filter": "generate_pairs", "source": problems.name, "source_fingerprint": problems.fingerprint(),
              "seed": seed, "delta": delta, "allow_negative": allow_negative,
              "rejected": dict(sorted(rejected.items())), "before": len(problems), "after": len(pairs)}
    result = PairSet(pairs, name=f"{problems.name}:pairs", filters=[*problems.filters, record], source=problems.source)
    return result if per_stratum is None else stratify(result, per_stratum, seed=seed)


def pair_rows(pairs: Iterable[ProblemPair]) -> list[dict[str, Any]]:
    """The flat pair schema (claims.md 2.2): one row per variant, plus annotations and changed number."""
    rows = []
    for pair in pairs:
        for variant in ("clean", "corrupted"):
            problem: Problem = getattr(pair, variant)
            answer = problem.answer
            row = {"pair_id": pair.pair_id, "variant": variant, "question": problem.question,
                   "answer": int(answer) if answer is not None and answer.is_integer() else answer,
                   "reasoning_steps": problem.steps, "changed_number": pair.changed_number,
                   "annotations": problem.meta.get("annotations", [])}
            row.update({k: problem.meta[k] for k in ("answer_exact", "answer_is_integer") if k in problem.meta})
            rows.append(row)
    return rows


def pairs_json(pairs: Iterable[ProblemPair]) -> str:
    """Deterministic JSON text of ``pair_rows`` (what the shipped file contains)."""
    return json.dumps(pair_rows(pairs), indent=1, ensure_ascii=False) + "\n"


def shipped_pairs_path() -> Path:
    """Where the shipped pair file lives: ``<fixtures>/data/pairs/gsm8k_test_pairs.json``."""
    return fixtures_dir().joinpath("data", *SHIPPED_PAIRS_FILE)


def write_shipped_pairs(path: str | Path | None = None) -> Path:
    """Regenerate the shipped pair file from GSM8K test with ``SHIPPED_PAIR_PARAMS``."""
    path = Path(path) if path is not None else shipped_pairs_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pairs_json(generate_pairs(load_gsm8k("test"), **SHIPPED_PAIR_PARAMS)), encoding="utf-8")
    return path
