"""Problem-level statistics: agreement with SciPy/statsmodels, the evidence each test gives at a claim's
threshold, and the defects the statistical review found (each test here fails with its defect put back)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from scipy.stats import spearmanr

from codi_probe import stats
from codi_probe.hypothesis import ALPHA, Hypothesis, Prediction, combine, decide


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=40))
def test_bootstrap_mean_brackets_the_mean(xs):
    est = stats.bootstrap_mean(xs)
    assert est.lo <= np.mean(xs) + 1e-9 and est.hi >= np.mean(xs) - 1e-9 and est.n == len(xs)


def test_bootstrap_is_bca_as_documented():
    """The review found percentile intervals under a docstring that said BCa: on skewed data the two
    differ, and the reported interval must be scipy's BCa at the expanded level."""
    rng = np.random.default_rng(0)
    x = rng.exponential(size=60)
    est = stats.bootstrap_mean(x, seed=3)
    level = 2 * stats.expanded_level(ALPHA, len(x)) - 1
    bca = sps.bootstrap((x,), np.mean, method="BCa", confidence_level=level, n_resamples=stats.DEFAULT_RESAMPLES,
                        rng=np.random.default_rng(3)).confidence_interval
    pct = sps.bootstrap((x,), np.mean, method="percentile", confidence_level=level,
                        n_resamples=stats.DEFAULT_RESAMPLES, rng=np.random.default_rng(3)).confidence_interval
    assert (est.lo, est.hi) == pytest.approx((bca.low, bca.high), abs=1e-9)
    assert abs(est.lo - pct.low) > 1e-6
    assert stats.mean_evidence(x, Prediction("m", "greater", 0.0)).method.startswith("BCa")


@pytest.mark.parametrize("threshold", [0.9, 1.0, 1.1, 1.2])
def test_mean_p_value_inverts_the_interval(threshold):
    """p_support < ALPHA exactly when the 95% interval lies beyond the threshold: the verdict and the
    interval in the report agree."""
    x = np.random.default_rng(1).normal(1.0, 0.4, size=80)
    ev = stats.mean_evidence(x, Prediction("m", "greater", threshold))
    assert (ev.p_support < ALPHA) == (ev.lo > threshold)
    assert (ev.p_refute < ALPHA) == (ev.hi < threshold)


def test_p_values_test_the_claims_threshold_not_zero():
    """ACC-03-style: a 20 pp claim with a 25 pp observed gain is not supported by p < 0.05 against 0."""
    before = np.array([True] * 40 + [False] * 60)
    after = before.copy()
    after[40:65] = True  # gained 25 of 100
    vs_zero = stats.paired_binary_evidence(before, after, Prediction("gain", "greater", 0.0))
    vs_20 = stats.paired_binary_evidence(before, after, Prediction("gain", "greater", 0.20))
    assert vs_zero.p_support < 1e-6
    assert vs_20.p_support > ALPHA  # 25 pp with n = 100 does not show > 20 pp
    assert vs_20.lo < 0.20 < vs_20.value


def test_no_discordant_pair_never_proves_equivalence():
    """The acceptance case: 24 problems, none discordant, must not prove +-3pp (the old t-test TOST gave p = 0)."""
    same = np.array([True] * 20 + [False] * 4)
    ev = stats.paired_binary_evidence(same, same, Prediction("change", "equivalent", 0.03))
    assert ev.p_support > ALPHA and ev.lo < -0.03 and ev.hi > 0.03
    hyp = Hypothesis(Prediction("change", "equivalent", 0.03), min_n=1)
    assert decide(combine(hyp, [ev], 24)).verdict == "inconclusive"
    one = same.copy()
    one[0] = False  # one discordant pair: no cliff from p = 0 to p = 0.61
    ev1 = stats.paired_binary_evidence(same, one, Prediction("change", "equivalent", 0.03))
    assert abs(ev1.p_support - ev.p_support) < 0.5


def test_paired_accuracy_change_at_zero_is_exact_mcnemar():
    before = [True] * 30 + [False] * 10
    after = [False] * 20 + [True] * 10 + [False] * 10
    ev = stats.paired_binary_evidence(before, after, Prediction("change", "less", 0.0))
    assert ev.value == pytest.approx(-0.5)
    assert ev.p_support == pytest.approx(sps.binomtest(0, 20, 0.5, alternative="less").pvalue)
    assert stats.mcnemar_exact(before, before) == 1.0


def test_proportion_is_exact_binomial_with_its_own_interval():
    ev = stats.proportion_evidence(45, 50, Prediction("rate", "greater", 0.8))
    assert ev.p_support == pytest.approx(sps.binomtest(45, 50, 0.8, alternative="greater").pvalue)
    ci = sps.binomtest(45, 50).proportion_ci(0.95, method="exact")
    assert (ev.lo, ev.hi) == pytest.approx((ci.low, ci.high))
    assert stats.proportion_evidence(0, 30, Prediction("rate", "less", 0.2)).p_support < ALPHA
    with pytest.raises(ValueError):
        stats.proportion(0, 0)


def test_data_without_spread_use_the_sign_test_not_p_zero():
    ev = stats.mean_evidence(np.zeros(24), Prediction("kl", "less", 0.01))
    assert ev.p_support == pytest.approx(0.5 ** 24) and ev.p_refute == 1.0
    ev5 = stats.mean_evidence(np.zeros(3), Prediction("kl", "less", 0.01))
    assert ev5.p_support == pytest.approx(0.125) and ev5.p_support > ALPHA


def test_rows_evidence_bootstraps_whole_problems():
    rng = np.random.default_rng(4)
    rows = rng.binomial(1, [0.1] * 5 + [0.6, 0.1], size=(150, 7)).astype(float)
    ev = stats.rows_evidence(rows, lambda m: m[..., 5] - np.delete(m, 5, -1).max(-1),
                             Prediction("gap", "greater", 0.05))
    assert ev.value == pytest.approx(rows[:, 5].mean() - np.delete(rows, 5, 1).mean(0).max())
    assert ev.p_support < ALPHA and ev.lo > 0.05


def test_within_problem_spearman_matches_scipy_and_detects_signal():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 7))
    y = x + rng.normal(scale=0.5, size=x.shape)
    rhos = stats.within_problem_rhos(x, y)
    assert rhos == pytest.approx([spearmanr(a, b).statistic for a, b in zip(x, y)])
    ev = stats.permutation_spearman(x, y, Prediction("assoc", "greater", 0.0), permutations=2000)
    assert ev.p_support < 0.01 and ev.lo > 0.5
    null = stats.permutation_spearman(x, rng.normal(size=x.shape), Prediction("assoc", "greater", 0.0),
                                      permutations=2000)
    assert null.p_support > 0.01 and null.lo < 0 < null.hi
    with pytest.raises(ValueError):
        stats.permutation_spearman(x, y, Prediction("assoc", "greater", 0.2))


def test_between_position_effect_is_not_a_within_problem_correlation():
    """F-06: a position effect shared by every problem makes the pooled r large; shuffling positions
    within problems is the right null, and constant rows carry no within-problem information."""
    rng = np.random.default_rng(2)
    level = np.arange(7, dtype=float)
    x = level + rng.normal(scale=0.1, size=(30, 7))
    y = rng.normal(size=(30, 7))
    pooled = np.corrcoef(np.tile(level, 30), (y + level).ravel())[0, 1]
    assert pooled > 0.5
    assert abs(stats.within_problem_rhos(x, y).mean()) < 0.2
    assert len(stats.within_problem_rhos(np.ones((5, 7)), y[:5])) == 0


def test_holm_cochran_and_page():
    assert stats.holm([0.01, 0.02, 0.5]) == pytest.approx([0.03, 0.04, 0.5])
    assert stats.cochran_q(np.ones((10, 3))) == 1.0
    rising = (np.arange(7)[None, :] >= np.random.default_rng(5).integers(0, 7, size=(60, 1))).astype(float)
    assert stats.page_trend(rising) < 1e-6 and stats.page_trend(rising[:, ::-1]) > 0.5
