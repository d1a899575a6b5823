"""Tests of codi_probe.extremes: claims about the largest/smallest position from pairwise paired tests."""

import numpy as np
import pytest

from codi_probe import extremes, stats
from codi_probe.calibration import catalogue_module
from codi_probe.hypothesis import ALPHA, Prediction, adjust_family, combine, decide


def rates(means, n: int = 100, seed: int = 0) -> np.ndarray:
    """Per-problem failure rates averaged over 7 methods (values k/7), independent columns."""
    return np.random.default_rng(seed).binomial(7, means, (n, len(means))) / 7


def test_imp01_supports_a_clearly_dominant_position_and_only_it():
    imp = catalogue_module("test_importance")
    r = rates([0.15, 0.18, 0.16, 0.12, 0.18, 0.45, 0.15])
    outcomes = {f"P{k}": combine(imp.IMP01, imp.importance_evidence(r, k, seed=0), len(r)) for k in range(7)}
    family = adjust_family(outcomes, "holm")
    verdicts = {p: decide(o, family_size=7).verdict for p, o in family.items()}
    assert verdicts["P5"] == "supported"
    assert all(v != "supported" for p, v in verdicts.items() if p != "P5")


def test_imp01_is_not_supported_when_the_gap_is_below_the_margin():
    imp = catalogue_module("test_importance")
    r = rates([0.15, 0.15, 0.15, 0.15, 0.15, 0.17, 0.15], n=300)
    ev = imp.importance_evidence(r, 5, seed=0)
    assert combine(imp.IMP01, ev, len(r)).p_support >= ALPHA


def test_every_pair_is_the_intersection_union_of_the_pair_tests():
    r = rates([0.1, 0.2, 0.5], n=120, seed=1)
    pred = Prediction("gap", "greater", 0.05)
    ev = extremes.every_pair_evidence(r, 2, pred)
    pairs = [stats.mean_evidence(r[:, 2] - r[:, j], pred) for j in (0, 1)]
    assert ev.p_support == pytest.approx(max(e.p_support for e in pairs))
    assert ev.p_refute == pytest.approx(min(1.0, 2 * min(e.p_refute for e in pairs)))
    assert ev.lo == pytest.approx(min(e.lo for e in pairs))
    assert (ev.lo > pred.threshold) == (ev.p_support < ALPHA)  # the IUT bound agrees with the verdict
    assert ev.value == pytest.approx(r[:, 2].mean() - r[:, 1].mean())


def test_some_pair_is_the_holm_union_of_the_pair_tests():
    r = rates([0.1, 0.2, 0.5], n=120, seed=2)
    pred = Prediction("2x", "greater", 0.0)
    ev = extremes.some_pair_evidence(r, 2, pred, scale=2.0)
    pairs = [stats.mean_evidence(r[:, 2] - 2 * r[:, j], pred) for j in (0, 1)]
    assert ev.p_support == pytest.approx(min(1.0, 2 * min(e.p_support for e in pairs)))
    assert ev.p_refute == pytest.approx(max(e.p_refute for e in pairs))
    assert ev.value == pytest.approx(r[:, 2].mean() - 2 * r[:, 0].mean())


def test_binary_pairs_use_the_exact_paired_test():
    rng = np.random.default_rng(3)
    rows = (rng.random((80, 3)) < [0.1, 0.1, 0.6]).astype(float)
    ev = extremes.every_pair_evidence(rows, 2, Prediction("first", "greater", 0.0))
    assert "Tango" in ev.method and ev.p_support < ALPHA


def test_spread_is_supported_only_when_some_pair_differs_by_the_margin():
    rng = np.random.default_rng(4)
    pred = Prediction("spread", "greater", 0.3)
    apart = (rng.random((100, 3)) < [0.1, 0.5, 0.9]).astype(float)
    assert extremes.spread_evidence(apart, pred).p_support < ALPHA
    alike = (rng.random((100, 3)) < 0.5).astype(float)
    ev = extremes.spread_evidence(alike, pred)
    assert ev.p_support >= ALPHA and ev.p_refute < ALPHA


def test_only_greater_predictions_are_accepted():
    with pytest.raises(ValueError, match="must be 'greater'"):
        extremes.every_pair_evidence(rates([0.1, 0.2]), 1, Prediction("gap", "less", 0.0))


def test_a_pair_that_cannot_decide_makes_the_join_decide_nothing_with_its_reason():
    """A pair with fewer than 2 problems left (non-finite values excluded) gives undecided joined evidence,
    never a crash, and its reason and exclusions reach the joined evidence; a NaN bound is never dropped."""
    pred = Prediction("gap", "greater", 0.0)
    good = stats.mean_evidence(np.linspace(1, 2, 20), pred)
    bad = stats.mean_evidence(np.array([1.0, np.nan, np.nan]), pred)
    for join in (extremes.all_of, extremes.any_of):
        ev = join([good, bad], pred)
        assert (ev.p_support, ev.p_refute) == (1.0, 1.0) and ev.excluded == 2 and ev.reason
    undecided = stats.mean_evidence(np.ones(10), pred)  # no spread: decides nothing, bounds NaN
    assert np.isnan(extremes.all_of([good, undecided], pred).lo)


def test_a_scaled_binary_pair_holds_its_level_at_the_null_boundary():
    """PATCH-02's "moved > 10 x the random control" on binary outcomes: at P(a) = 10 P(b) the exact bound
    construction is supported at most 2.5% + 3 SE of the time (the mean of a - 10 b was at 27%), and a
    clear effect is supported; the interval excludes the threshold exactly when the verdict says so."""
    from codi_probe.extremes import pair_evidence

    rng, reps, n, hits = np.random.default_rng(3), 400, 100, 0
    pred = Prediction("a - 10 b", "greater", 0.0)
    for _ in range(reps):
        a, b = rng.uniform(size=n) < 0.3, rng.uniform(size=n) < 0.03
        ev = pair_evidence(a, b, pred, scale=10)
        hits += ev.p_support < 0.025
        assert (ev.p_support < 0.025) == (ev.lo > 0.0) and (ev.p_refute < 0.025) == (ev.hi < 0.0)
    assert hits / reps <= 0.025 + 3 * np.sqrt(0.025 * 0.975 / reps)
    strong = pair_evidence(rng.uniform(size=n) < 0.7, rng.uniform(size=n) < 0.01, pred, scale=10)
    assert strong.p_support < 0.025 and "Clopper-Pearson" in strong.method
    weak = pair_evidence(np.ones(n), np.r_[np.ones(20), np.zeros(n - 20)], pred, scale=10)  # 1.0 vs 10 x 0.2
    assert weak.p_refute < 0.025
