"""Turn one raw record (GSM8K, GSM8K-Aug, GS problem or pair row) into a ``Problem``.

Recognised problem shapes (``question`` is always required):
- GSM8K: ``answer`` is the worked solution ending in ``#### N``;
- GSM8K-Aug: ``cot`` holds the space-separated annotations, ``answer`` the bare number;
- generated pair rows: ``annotations`` is a list of ``expr=result`` strings;
- GS / pair rows: ``answer`` is a number, numeric string or null, with optional ``full_solution`` /
  ``full_answer``, ``reasoning_steps``, ``variant``, ``pair_id``, ``gsm8k_id``.
"""

from __future__ import annotations

import math
from typing import Any

from .answers import GOLD_MARKER, parse_gold
from .arith import find_annotations, safe_eval
from .problemset import Problem

SOLUTION_KEYS = ("full_solution", "full_answer", "solution")


class RecordError(ValueError):
    """A record lacks a field or has a field of the wrong type (the loader adds file and line)."""


def parse_number(value: Any, field_name: str = "answer") -> float | None:
    """A JSON answer value as float: numbers, numeric strings (commas allowed) or null -> None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise RecordError(f"{field_name!r} is a boolean, expected a number")
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip().replace(",", ""))
        except ValueError:
            raise RecordError(f"{field_name!r} is not a number: {value[:40]!r}") from None
        return number if math.isfinite(number) else None
    raise RecordError(f"{field_name!r} has type {type(value).__name__}, expected a number")


def _stated(annotation: str) -> float:
    result = annotation.rsplit("=", 1)[1]
    try:
        return float(result)
    except ValueError:
        return float(safe_eval(result))


def stated_results(annotations: list[str]) -> tuple[float, ...]:
    """Written results of ``expr=result`` annotations as floats (empty if any is not a number)."""
    try:
        return tuple(_stated(a) for a in annotations)
    except (IndexError, ValueError, ZeroDivisionError):
        return ()


def problem_from_record(record: Any, default_id: str, family: str | None = None) -> Problem:
    """Build a Problem from a dict of one of the recognised shapes; raises ``RecordError``."""
    if not isinstance(record, dict):
        raise RecordError(f"record is a {type(record).__name__}, expected a JSON object")
    question = record.get("question")
    if not isinstance(question, str):
        keys = ", ".join(sorted(map(str, record))[:8])
        raise RecordError(f"record has no string 'question' (keys: {keys}); unknown schema")
    raw = record.get("answer")
    solution: str | None = None
    if isinstance(raw, str) and GOLD_MARKER in raw:
        solution, answer = raw, parse_gold(raw)
    else:
        answer = parse_number(raw)
        solution = next((record[k] for k in SOLUTION_KEYS if isinstance(record.get(k), str)), None)
    if isinstance(record.get("cot"), str):
        annotations = [a[2:-2] if a.startswith("<<") else a for a in record["cot"].split()]
    elif isinstance(record.get("annotations"), list):
        annotations = [str(a) for a in record["annotations"]]
    elif solution is not None:
        annotations = find_annotations(solution)
    else:
        annotations = []
    steps = record.get("reasoning_steps")
    if steps is None and (solution is not None or "cot" in record or "annotations" in record):
        steps = len(annotations)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)):
        raise RecordError(f"'reasoning_steps' is {steps!r}, expected an integer")
    ident = record.get("id") or record.get("gsm8k_id") or default_id
    if "variant" in record and "pair_id" in record:
        ident = f"{record['pair_id']}/{record['variant']}"
    meta = {k: v for k, v in record.items() if k not in ("question", "answer", "cot")}
    if annotations:
        meta["annotations"] = annotations
    if solution is not None:
        meta.setdefault("solution", solution)
    return Problem(
        id=str(ident),
        question=question,
        answer=answer,
        steps=steps,
        family=record.get("family", family),
        operation=record.get("operation"),
        intermediates=stated_results(annotations),
        meta=meta,
    )
