"""Problem records, provenance-logged selection, stratification and fingerprints."""

from collections import Counter

import pytest

from codi_probe.data.loaders import load_gsm8k, load_pairs
from codi_probe.data.pairs import shipped_pairs_path
from codi_probe.data.problemset import PairSet, Problem, ProblemSet
from codi_probe.data.selection import select, steps_stratum, stratify
from codi_probe.data.templates import ao_synthetic_problems, cyw_template_problems

GSM8K_TEST_FINGERPRINT = "96f3ad6d396afd654e37a6ad668042f0651f51b13d99fabd8575a8392e6a53e9"


@pytest.fixture(scope="module")
def gsm8k():
    return load_gsm8k("test")


def test_fingerprint_is_pinned_and_sensitive(gsm8k):
    assert gsm8k.fingerprint() == GSM8K_TEST_FINGERPRINT
    problems = list(gsm8k)
    changed = [Problem(p.id, p.question, p.answer + (i == 5), p.steps) for i, p in enumerate(problems)]
    assert ProblemSet(changed).fingerprint() != GSM8K_TEST_FINGERPRINT
    assert ProblemSet(problems[::-1]).fingerprint() != GSM8K_TEST_FINGERPRINT
    assert ProblemSet(problems, name="other", filters=[{"x": 1}]).fingerprint() == GSM8K_TEST_FINGERPRINT


def test_problem_equality_ignores_meta_and_is_hashable():
    a = Problem("a", "q", 1.0, meta={"x": 1})
    b = Problem("a", "q", 1.0, meta={"x": 2})
    assert a == b and len({a, b}) == 1
    assert a != Problem("a", "q", 2.0)


def test_select_by_steps_logs_before_and_after(gsm8k):
    chosen = select(gsm8k, steps=[2, 3])
    assert len(chosen) == 357 + 364 and all(p.steps in (2, 3) for p in chosen)
    assert chosen.filters == [{"filter": "steps", "values": [2, 3], "before": 1319, "after": 721}]
    assert gsm8k.filters == []  # the original is untouched
    assert len(select(gsm8k, steps=range(5, 9))) == 138 + 57 + 21 + 9


def test_select_chains_filters(gsm8k):
    cyw = cyw_template_problems()
    chosen = select(cyw, operation="sub", template=[0, 3])
    assert len(chosen) == 100 and {(p.operation, p.template) for p in chosen} == {("sub", 0), ("sub", 3)}
    logged = [(f["filter"], f["before"], f["after"]) for f in chosen.filters]
    assert logged == [("operation", 1000, 500), ("template", 500, 100)]
    empty = select(gsm8k, family="cyw")
    assert len(empty) == 0 and empty.filters[-1]["after"] == 0


def test_select_family_and_operation_on_mixed_sets():
    mixed = ProblemSet([*cyw_template_problems(prompts_per_template=2), *ao_synthetic_problems(9)])
    assert Counter(p.family for p in select(mixed, family="ao")) == {"ao": 9}
    assert len(select(mixed, operation="add")) == 20 + 3
    assert len(select(mixed, family=("ao", "cyw"), operation="mul")) == 3


def test_select_and_stratify_pairs_by_clean_side():
    pairs = load_pairs(shipped_pairs_path())
    two_step = select(pairs, steps=2)
    assert isinstance(two_step, PairSet) and len(two_step) == 100
    assert all(p.clean.steps == 2 for p in two_step)
    assert two_step.problems("corrupted")[0].id.endswith("/corrupted")
    with pytest.raises(ValueError, match="variant"):
        two_step.problems("other")


def test_stratify_caps_and_logs(gsm8k):
    sample = stratify(gsm8k, 10, seed=3)
    counts = Counter(steps_stratum(p.steps) for p in sample)
    assert counts == {"0": 10, "1": 10, "2": 10, "3": 10, "4": 10, "5+": 10}
    assert sample.filters[-1]["counts"] == dict(counts)
    assert sample.filters[-1]["before"] == 1319 and sample.filters[-1]["after"] == 60
    assert [p.id for p in sample] == sorted((p.id for p in sample), key=lambda i: int(i.rsplit("_", 1)[1]))
    assert [p.id for p in stratify(gsm8k, 10, seed=3)] == [p.id for p in sample]
    assert [p.id for p in stratify(gsm8k, 10, seed=4)] != [p.id for p in sample]


def test_stratify_keeps_small_strata_whole(gsm8k):
    sample = stratify(gsm8k, 50)
    assert Counter(steps_stratum(p.steps) for p in sample)["0"] == 18


@pytest.mark.parametrize(("steps", "label"), [(None, "none"), (0, "0"), (4, "4"), (5, "5+"), (8, "5+")])
def test_steps_stratum(steps, label):
    assert steps_stratum(steps) == label


def test_collection_is_a_sequence(gsm8k):
    assert gsm8k[0].id == "gsm8k_test_0" and gsm8k[-1].id == "gsm8k_test_1318"
    assert [p.id for p in gsm8k[:2]] == ["gsm8k_test_0", "gsm8k_test_1"]
    assert "n=1319" in repr(gsm8k)
