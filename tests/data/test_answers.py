"""Official answer extraction / scoring (codi-spec 3.5, claims.md 2.5)."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codi_probe.data.answers import answers_match, extract_answer, parse_gold


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is: 18", 18.0),
        ("The answer is: 1,080", 1080.0),
        ("It costs $1,234,567 in total", 1234567.0),
        ("The answer is: -5", -5.0),
        ("The answer is: 3.25", 3.25),
        ("The answer is: 7.", 7.0),
        ("first 2, then 3, finally 41", 41.0),
        ("from 5-3", -3.0),  # official regex quirk: the '-' binds to the last number
        ("The answer is: 12 apples.", 12.0),
    ],
)
def test_extract_answer_takes_last_number(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text", ["", "no number here", "The answer is: many", ",,,", "-"])
def test_extract_answer_without_number_is_none(text):
    assert extract_answer(text) is None


@settings(database=None)
@given(st.integers(min_value=-10**12, max_value=10**12))
def test_extract_answer_reads_comma_grouped_integers(n):
    assert extract_answer(f"The answer is: {n:,}") == float(n)


@pytest.mark.parametrize(
    ("solution", "expected"),
    [
        ("9 * 2 = <<9*2=18>>18\n#### 18", 18.0),
        ("...\n#### 1,080", 1080.0),
        ("...\n#### -3", -3.0),
        ("no marker 18", None),
        ("#### eighteen", None),
        ("#### inf", None),
    ],
)
def test_parse_gold(solution, expected):
    assert parse_gold(solution) == expected


@pytest.mark.parametrize(
    ("pred", "gold", "expected"),
    [
        (18.0, 18.0, True),
        (18, 18.0, True),
        (18.0, 18.5, False),
        (0.1 + 0.2, 0.3, False),  # float equality, as the official scorer
        (None, 18.0, False),
        (18.0, None, False),
        (None, None, False),  # official code: inf == inf would count as correct
        (math.inf, math.inf, False),
        (math.nan, math.nan, False),
    ],
)
def test_answers_match(pred, gold, expected):
    assert answers_match(pred, gold) is expected


def test_extract_then_match_roundtrip():
    assert answers_match(extract_answer("The answer is: 1,080"), parse_gold("#### 1,080"))
    assert not answers_match(extract_answer("I do not know"), parse_gold("#### 7"))
