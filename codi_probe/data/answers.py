"""Answer extraction and comparison, as the official CODI evaluation (``OFF:test.py``) does them.

Conventions: answers are ``float``; "no answer" is ``None``. The official code uses ``inf`` for a
missing prediction or an unparsable gold, so there ``inf == inf`` would count as correct; here
``answers_match`` treats ``None`` (and any non-finite value) as wrong, always.
"""

from __future__ import annotations

import math
import re

NUMBER_RE = re.compile(r"-?\d+\.?\d*")
"""The official prediction regex (applied after removing every comma)."""

GOLD_MARKER = "####"


def extract_answer(text: str) -> float | None:
    """Last number in ``text`` after removing commas (official ``extract_answer_number``); None if none."""
    matches = NUMBER_RE.findall(text.replace(",", ""))
    if not matches:
        return None
    return float(matches[-1])


def parse_gold(solution: str) -> float | None:
    """Gold answer of a GSM8K solution: text after the last ``####``, commas removed, ``float``.

    Returns None where there is no marker or the text is not a number (official code: ``inf``).
    """
    if GOLD_MARKER not in solution:
        return None
    tail = solution.rsplit(GOLD_MARKER, 1)[1].strip().replace(",", "")
    try:
        value = float(tail)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def answers_match(pred: float | None, gold: float | None) -> bool:
    """Official scoring: ``pred == gold`` as floats; None or non-finite on either side never matches."""
    if pred is None or gold is None:
        return False
    pred, gold = float(pred), float(gold)
    return math.isfinite(pred) and math.isfinite(gold) and pred == gold
