"""Clean/corrupted pair generator: acceptance, re-derivation, determinism, stratification."""

from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from codi_probe.data.arith import evaluate_annotation, safe_eval
from codi_probe.data.loaders import load_gsm8k, load_pairs
from codi_probe.data.pairs import (
    SHIPPED_PAIR_PARAMS,
    PairRejected,
    generate_pairs,
    pair_for,
    pairs_json,
    question_numbers,
    rerun_chain,
    shipped_pairs_path,
)
from codi_probe.data.problemset import Problem, ProblemSet
from codi_probe.data.selection import steps_stratum, stratify


@pytest.fixture(scope="module")
def test_set():
    return load_gsm8k("test")


@pytest.fixture(scope="module")
def all_pairs(test_set):
    return generate_pairs(test_set, seed=SHIPPED_PAIR_PARAMS["seed"], delta=SHIPPED_PAIR_PARAMS["delta"])


@pytest.fixture(scope="module")
def regenerated(test_set):
    return generate_pairs(test_set, **SHIPPED_PAIR_PARAMS)


@pytest.fixture(scope="module")
def shipped():
    return load_pairs(shipped_pairs_path())


def problem(question, annotations, answer):
    return Problem("p", question, answer, steps=len(annotations), meta={"annotations": annotations})


def test_shipped_file_equals_regeneration(regenerated):
    assert shipped_pairs_path().read_text(encoding="utf-8") == pairs_json(regenerated)


def test_acceptance_at_least_300_verified_pairs(shipped, all_pairs):
    assert len(shipped) >= 300
    assert len(all_pairs) >= len(shipped)
    assert len({p.pair_id for p in shipped}) == len(shipped)


def test_every_shipped_pair_rederives_from_its_own_annotations(shipped):
    for pair in shipped:
        for side in (pair.clean, pair.corrupted):
            steps = [evaluate_annotation(a) for a in side.meta["annotations"]]
            assert all(step.consistent for step in steps), pair.pair_id
            assert float(steps[-1].stated) == side.answer, pair.pair_id
            assert side.steps == len(steps)
        exact = safe_eval(pair.corrupted.meta["answer_exact"])
        assert float(exact) == pair.corrupted.answer
        assert pair.corrupted.meta["answer_is_integer"] == (exact.denominator == 1)
        assert pair.corrupted.answer != pair.clean.answer and pair.corrupted.answer >= 0


def test_every_shipped_pair_is_the_clean_chain_rerun_with_the_changed_number(shipped):
    for pair in shipped:
        old_text, new_text = pair.changed_number.split(" -> ")
        old, new = (Fraction(t.replace(",", "")) for t in (old_text, new_text))
        assert new - old == SHIPPED_PAIR_PARAMS["delta"]
        assert rerun_chain(pair.clean.meta["annotations"], old, new) == pair.corrupted.meta["annotations"]
        (spot,) = [n for n in question_numbers(pair.clean.question) if n.text == old_text]
        rebuilt = pair.clean.question[: spot.start] + new_text + pair.clean.question[spot.end :]
        assert rebuilt == pair.corrupted.question


def test_clean_side_matches_gsm8k_gold(shipped, test_set):
    by_id = {p.id: p for p in test_set}
    for pair in shipped:
        source = by_id[pair.pair_id]
        assert pair.clean.question == source.question
        assert (pair.clean.answer, pair.clean.steps) == (source.answer, source.steps)


def test_stratified_by_steps(shipped, all_pairs):
    available = Counter(steps_stratum(p.clean.steps) for p in all_pairs)
    kept = Counter(steps_stratum(p.clean.steps) for p in shipped)
    cap = SHIPPED_PAIR_PARAMS["per_stratum"]
    assert kept == {k: min(n, cap) for k, n in available.items()}
    assert set(kept) == {"1", "2", "3", "4", "5+"}


def test_provenance_accounts_for_every_problem(test_set, regenerated):
    pairs = regenerated
    generated, stratified = pairs.filters
    assert generated["before"] == len(test_set)
    assert generated["after"] + sum(generated["rejected"].values()) == len(test_set)
    assert generated["source_fingerprint"] == test_set.fingerprint()
    assert stratified["filter"] == "stratify" and stratified["after"] == len(pairs)
    assert sum(stratified["counts"].values()) == len(pairs)


def test_deterministic_by_seed(test_set):
    subset = ProblemSet(test_set[:300], name="head")
    first, again = pairs_json(generate_pairs(subset, seed=5)), pairs_json(generate_pairs(subset, seed=5))
    assert first == again
    assert pairs_json(generate_pairs(subset, seed=6)) != first


def test_stratify_is_seeded(all_pairs):
    a, b, c = (stratify(all_pairs, 20, seed=s) for s in (1, 1, 2))
    assert [p.pair_id for p in a] == [p.pair_id for p in b] != [p.pair_id for p in c]
    assert max(Counter(steps_stratum(p.clean.steps) for p in a).values()) == 20


def test_known_pair():
    pair = pair_for(problem("Janet's ducks lay 16 eggs per day. She eats 3 and bakes with 4. She sells each for $5.",
                            ["16-3-4=9", "9*5=45"], 45.0), np.random.default_rng(0))
    assert pair.changed_number in {"16 -> 17", "3 -> 4", "4 -> 5", "5 -> 6"}
    expected = {"16 -> 17": 50.0, "3 -> 4": 40.0, "4 -> 5": 40.0, "5 -> 6": 54.0}
    assert pair.corrupted.answer == expected[pair.changed_number]


def test_rerun_chain_propagates_changed_results():
    chain = ["16-3-4=9", "9*2=18", "18+9=27", "100-18=82"]
    assert rerun_chain(chain, Fraction(16), Fraction(17)) == ["17-3-4=10", "10*2=20", "20+10=30", "100-20=80"]


def test_rerun_chain_writes_non_integers_and_negatives_readably():
    assert rerun_chain(["12/4=3", "3*6=18"], Fraction(4), Fraction(5)) == ["12/5=2.4", "2.4*6=14.4"]
    assert rerun_chain(["10/4=2.5", "2.5*3=7.5"], Fraction(4), Fraction(3)) == ["10/3=10/3", "(10/3)*3=10"]
    assert rerun_chain(["5-4=1", "8/1=8"], Fraction(4), Fraction(6)) == ["5-6=-1", "8/(-1)=-8"]
    assert rerun_chain(["9-4=5", "5*2=10"], Fraction(4), Fraction(1)) == ["9-1=8", "8*2=16"]


def test_rerun_chain_division_by_zero():
    with pytest.raises(ZeroDivisionError):
        rerun_chain(["6-5=1", "7/1=7"], Fraction(5), Fraction(6))


@pytest.mark.parametrize(
    ("question", "annotations", "answer", "reason"),
    [
        ("She has 5 pens.", [], 5.0, "no_annotations"),
        ("She has 5 pens and 2 cups.", ["5*2=11"], 11.0, "clean_chain_inexact"),
        ("She has 5 pens and 2 cups.", ["5*2=10"], 12.0, "clean_chain_misses_gold"),
        ("A man is 5.5 feet tall.", ["5.5*2=11"], 11.0, "no_changeable_number"),
        ("He has 7 cats and 7 dogs.", ["7+7=14"], 14.0, "ambiguous_number"),
        ("He buys 2 boxes and eats half a box.", ["2/2=1"], 1.0, "ambiguous_number"),
        ("He has 3 cats and three dogs.", ["3+3=6"], 6.0, "ambiguous_number"),
        ("He has 30 apples and gives away 30.", ["30-30=0"], 0.0, "ambiguous_number"),
        ("He has 10 pens and 5 cups.", ["10/5=2", "2*5=10"], 10.0, "ambiguous_number"),
        ("Tom has 5 marbles and loses 3. He gives half away.", ["5-3=2", "2/2=1"], 1.0, "ambiguous_result"),
        ("She owns 4 bags with no coins.", ["4*0=0"], 0.0, "answer_unchanged"),
        ("He had 6 apples and lost 5.5.", ["6-5.5=0.5"], 0.5, "answer_negative"),
        ("He had 6 apples and lost 6.5.", ["6.5-6=0.5", "1/(6.5-6-0.5)=2"], 2.0, "clean_annotation_unparsable"),
    ],
)
def test_rejections(question, annotations, answer, reason):
    delta = -1 if reason == "answer_negative" else 1
    for seed in range(3):  # whichever number is tried first
        with pytest.raises(PairRejected, match=f"^{reason}$"):
            pair_for(problem(question, annotations, answer), np.random.default_rng(seed), delta)


def test_division_by_zero_and_non_positive_numbers_are_rejected():
    with pytest.raises(PairRejected, match="^division_by_zero$"):
        pair_for(problem("He had 6 apples and lost 5.0.", ["6-5.0=1", "7/1=7"], 7.0), np.random.default_rng(0), -1)
    with pytest.raises(PairRejected, match="^changed_number_not_positive$"):
        pair_for(problem("He had 1.5 and 3 pies.", ["1.5*3=4.5"], 4.5), np.random.default_rng(0), -3)


def test_negative_answers_can_be_allowed():
    pair = pair_for(problem("He had 6 apples and lost 5.5.", ["6-5.5=0.5"], 0.5), np.random.default_rng(0), -1,
                    allow_negative=True)
    assert (pair.changed_number, pair.corrupted.answer) == ("6 -> 5", -0.5)


def test_comma_numbers_keep_their_style():
    pair = pair_for(problem("A car costs $12,000 and we pay 3 of them.", ["12000*3=36000"], 36000.0),
                    np.random.default_rng(1))
    if pair.changed_number.startswith("12,000"):
        assert pair.changed_number == "12,000 -> 12,001" and "$12,001 " in pair.corrupted.question
    else:
        assert pair.corrupted.answer == 48000.0
