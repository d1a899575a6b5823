"""Template families: CYW (claims.md 2.3) and AO (claims.md 2.4) with ground-truth intermediates."""

import re
from collections import Counter

import pytest

from codi_probe.data.templates import (
    AO_ENTITIES,
    CYW_SCENARIOS,
    CYW_SUFFIX,
    ao_synthetic_problems,
    cyw_combos,
    cyw_problem,
    cyw_template_problems,
)

CANONICAL = (
    "A team starts with 3 members. They recruit 5 new members. Then each current member recruits 2 "
    "additional people. How many people are there now on the team? Give the answer only and nothing else."
)


@pytest.fixture(scope="module")
def cyw():
    return cyw_template_problems()


@pytest.fixture(scope="module")
def ao():
    return ao_synthetic_problems()


def numbers(text):
    return [int(n) for n in re.findall(r"\d+", text)]


def test_canonical_cyw_prompt_is_8_16_24():
    problem = cyw_problem(0, "addition", 3, 5, 2)
    assert problem.question == CANONICAL
    assert problem.intermediates == (8.0, 16.0, 24.0)
    assert problem.answer == 24.0  # not 10, as one write-up claims


def test_cyw_sizes_and_layout(cyw):
    assert len(cyw) == 1000 and len({p.id for p in cyw}) == 1000
    assert Counter((p.operation, p.template) for p in cyw) == {(op, t): 50 for op in ("add", "sub") for t in range(10)}
    assert len(CYW_SCENARIOS) == 10 and len({s.entity for s in CYW_SCENARIOS}) == 10


def test_cyw_arithmetic(cyw):
    for p in cyw:
        x, y, z = p.meta["X"], p.meta["Y"], p.meta["Z"]
        assert 1 <= y < x <= 8 and 1 <= z <= 8
        step1 = x + y if p.operation == "add" else x - y
        assert p.intermediates == (step1, step1 * z, step1 + step1 * z)
        assert p.answer == (step1) * (z + 1) and p.steps == 3 and p.family == "cyw"
        assert p.question.endswith(CYW_SUFFIX) and numbers(p.question) == [x, y, z]
        assert ("each current" in p.question) == (p.operation == "add")
        assert ("each remaining" in p.question) == (p.operation == "sub")


def test_cyw_combos_shared_by_templates_and_families(cyw):
    by_key = {}
    for p in cyw:
        by_key.setdefault((p.meta["cyw_family"], p.template), []).append((p.meta["X"], p.meta["Y"], p.meta["Z"]))
    assert len({tuple(v) for v in by_key.values()}) == 1
    assert next(iter(by_key.values())) == cyw_combos(42)[:50]


def test_cyw_combos_are_all_x_greater_y_shuffled_by_seed():
    combos = cyw_combos(42)
    assert len(combos) == len(set(combos)) == 28 * 8
    assert sorted(combos) == sorted((x, y, z) for x in range(1, 9) for y in range(1, x) for z in range(1, 9))
    assert combos == cyw_combos(42) != cyw_combos(43)
    assert combos != sorted(combos)
    assert len(cyw_combos(42, 1, 7)) == 21 * 7


def test_cyw_subtraction_needs_x_greater_than_y():
    with pytest.raises(ValueError, match="X > Y"):
        cyw_problem(0, "subtraction", 3, 3, 2)
    with pytest.raises(ValueError, match="family"):
        cyw_problem(0, "multiplication", 3, 1, 2)


def test_cyw_prompts_are_plural_only_and_fixed_shape(cyw):
    shapes = {re.sub(r"\d+", "N", p.question) for p in cyw}
    assert len(shapes) == 20  # one wording per (template, family): token layout independent of X, Y, Z


def test_ao_sizes_and_balance(ao):
    assert len(ao) == 1200
    assert Counter(p.operation for p in ao) == {"add": 400, "sub": 400, "mul": 400}
    assert Counter(p.meta["split"] for p in ao) == {"train": 1000, "heldout": 200}
    assert all(p.meta["split"] == "heldout" for p in ao[-200:])
    used = set(Counter((p.operation, p.template) for p in ao))
    assert used == {(o, t) for o in ("add", "sub", "mul") for t in range(3)}
    assert {p.meta["entity"] for p in ao} == {e for e, _ in AO_ENTITIES}


def test_ao_arithmetic(ao):
    for p in ao:
        x, y, z = p.meta["X"], p.meta["Y"], p.meta["Z"]
        assert 1 <= x <= 10 and 1 <= y <= 10 and 2 <= z <= 10
        if p.operation == "mul":
            expected = (x * y, x * y + z)
        else:
            assert p.operation == "add" or x > y
            step1 = x + y if p.operation == "add" else x - y
            expected = (step1, step1 * z)
        assert p.intermediates == expected and p.answer == expected[1] and p.steps == 2
        assert numbers(p.question) == [x, y, z] and CYW_SUFFIX not in p.question


def test_ao_is_deterministic_per_problem(ao):
    again = ao_synthetic_problems(30, seed=42)
    assert [p.question for p in again] == [p.question for p in ao[:30]]
    assert [p.question for p in ao_synthetic_problems(30, seed=7)] != [p.question for p in again]
    assert ao.fingerprint() == ao_synthetic_problems().fingerprint()
