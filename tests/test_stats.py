"""Problem-level statistics: agreement with SciPy/statsmodels and verdict logic."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from codi_probe import stats


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=40))
def test_bootstrap_mean_brackets_the_mean(xs):
    est = stats.bootstrap_mean(xs)
    assert est.lo <= np.mean(xs) + 1e-9 and est.hi >= np.mean(xs) - 1e-9 and est.n == len(xs)


def test_within_problem_spearman_matches_scipy_and_detects_signal():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 7))
    y = x + rng.normal(scale=0.5, size=x.shape)
    est = stats.within_problem_spearman(x, y, permutations=2000)
    assert est.value == pytest.approx(np.mean([spearmanr(a, b).statistic for a, b in zip(x, y)]))
    assert est.p_value < 0.01 and est.lo > 0.5
    null = stats.within_problem_spearman(x, rng.normal(size=x.shape), permutations=2000)
    assert null.p_value > 0.01 and null.lo < 0 < null.hi


def test_between_position_effect_is_not_a_within_problem_correlation():
    """F-06: a position effect shared by every problem makes the pooled r large; shuffling positions
    within problems is the right null, and constant rows carry no within-problem information."""
    rng = np.random.default_rng(2)
    level = np.arange(7, dtype=float)
    x = level + rng.normal(scale=0.1, size=(30, 7))
    y = rng.normal(size=(30, 7))
    pooled = np.corrcoef(np.tile(level, 30), (y + level).ravel())[0, 1]
    assert pooled > 0.5
    est = stats.within_problem_spearman(x, y)
    assert abs(est.value) < 0.2
    assert stats.within_problem_spearman(np.ones((5, 7)), y[:5]).n == 0


def test_mcnemar_and_proportion():
    before = [True] * 30 + [False] * 10
    after = [False] * 20 + [True] * 10 + [False] * 10
    est = stats.mcnemar_exact(before, after)
    assert est.value == pytest.approx(-0.5) and est.p_value < 1e-5
    assert stats.mcnemar_exact(before, before).p_value == 1.0
    p = stats.proportion(5, 10)
    assert p.lo < 0.5 < p.hi
    with pytest.raises(ValueError):
        stats.proportion(0, 0)


def test_holm_tost_and_verdict():
    assert stats.holm([0.01, 0.02, 0.5]) == pytest.approx([0.03, 0.04, 0.5])
    rng = np.random.default_rng(3)
    a = rng.normal(size=200)
    assert stats.tost_paired(a, a + 0.001, 0.2) < 0.05
    assert stats.tost_paired(a, a + 1.0, 0.2) > 0.5
    e = stats.Estimate(0.5, 0.3, 0.7, 50)
    assert stats.verdict(e, 0.2) == "supported" and stats.verdict(e, 0.8) == "refuted"
    assert stats.verdict(e, 0.5) == "inconclusive" and stats.verdict(e, 0.8, alternative="less") == "supported"
    assert stats.verdict(stats.Estimate(0.5, 0.3, 0.7, 5), 0.2) == "inconclusive"
    assert stats.cochran_q(np.ones((10, 3))) == 1.0


def test_floor_effect_makes_no_change_claims_inconclusive():
    assert stats.at_floor([False] * 100) and stats.at_floor([True] * (stats.MIN_PROBLEMS - 1))
    assert not stats.at_floor([True] * stats.MIN_PROBLEMS)
