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


def test_mean_test_is_the_studentized_bootstrap():
    """mean_evidence's p-value is the larger of the bootstrap-t tail computed by hand here (same resample
    indices) and Student's t, and on skewed data its interval differs from BCa's (the test it replaced)."""
    x = np.random.default_rng(0).exponential(size=60)
    n, b, theta = len(x), stats.DEFAULT_RESAMPLES, 1.1
    idx = np.random.default_rng(3).integers(0, n, (b, n))
    xb = x[idx]
    t_star = (xb.mean(1) - x.mean()) / (xb.std(1, ddof=1) / np.sqrt(n))
    t_obs = (x.mean() - theta) / (x.std(ddof=1) / np.sqrt(n))
    ev = stats.mean_evidence(x, Prediction("m", "less", theta), seed=3)
    boot_less, boot_greater = (1 + np.sum(t_star <= t_obs)) / (b + 1), (1 + np.sum(t_star >= t_obs)) / (b + 1)
    assert ev.p_support == pytest.approx(max(boot_less, sps.t.cdf(t_obs, n - 1)))
    assert ev.p_refute == pytest.approx(max(boot_greater, sps.t.sf(t_obs, n - 1)))
    assert ev.p_support == pytest.approx(boot_less)  # right skew: the bootstrap tail is the larger here
    assert ev.method.startswith("studentized bootstrap")
    est = stats.bootstrap_mean(x, seed=3)
    assert (est.lo, est.hi) == (ev.lo, ev.hi)
    level = 2 * stats.expanded_level(ALPHA, n) - 1
    bca = sps.bootstrap((x,), np.mean, method="BCa", confidence_level=level, n_resamples=b,
                        rng=np.random.default_rng(3)).confidence_interval
    assert abs(est.hi - bca.high) > 1e-3


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


def test_paired_accuracy_change_at_zero_is_tango_and_its_interval():
    """One test decides at every threshold, 0 included, and its inversion is the interval shown."""
    from codi_probe import paired_binary as pb

    before = [True] * 30 + [False] * 10
    after = [False] * 20 + [True] * 10 + [False] * 10
    ev = stats.paired_binary_evidence(before, after, Prediction("change", "less", 0.0))
    assert ev.value == pytest.approx(-0.5)
    assert ev.p_support == pytest.approx(pb.one_sided_p(0, 20, 40, 0.0, "less"))
    assert stats.mcnemar_exact(before, before) == 1.0


def test_mcnemar_tango_disagreement_is_gone():
    """The defect: 5 of 50 pairs discordant, all one way: exact McNemar decided (p = 0.031, inconclusive)
    while Tango's interval (lower bound +0.016) excluded 0. Now the verdict and the interval agree, here
    and on every outcome at n = 50 with up to 12 discordant pairs."""
    before = np.array([False] * 5 + [True] * 45)
    after = np.ones(50, dtype=bool)
    ev = stats.paired_binary_evidence(before, after, Prediction("change", "greater", 0.0))
    assert ev.p_support < ALPHA and ev.lo > 0  # Tango decides: supported, and the interval excludes 0
    for g in range(13):
        for lost in range(13 - g):
            b = np.array([False] * g + [True] * lost + [True] * (50 - g - lost))
            a = np.array([True] * g + [False] * lost + [True] * (50 - g - lost))
            e = stats.paired_binary_evidence(b, a, Prediction("change", "greater", 0.0))
            assert (e.p_support < ALPHA) == (e.lo > 0.0), (g, lost)
            assert (e.p_refute < ALPHA) == (e.hi < 0.0), (g, lost)


def test_proportion_is_exact_binomial_with_its_own_interval():
    ev = stats.proportion_evidence(45, 50, Prediction("rate", "greater", 0.8))
    assert ev.p_support == pytest.approx(sps.binomtest(45, 50, 0.8, alternative="greater").pvalue)
    ci = sps.binomtest(45, 50).proportion_ci(0.95, method="exact")
    assert (ev.lo, ev.hi) == pytest.approx((ci.low, ci.high))
    assert stats.proportion_evidence(0, 30, Prediction("rate", "less", 0.2)).p_support < ALPHA


def test_no_problems_decide_inconclusive_not_raise():
    """n = 0 raised ("a proportion needs n > 0") in every function, n < 2 in the mean tests: now
    evidence that decides nothing, with the reason."""
    pred = Prediction("rate", "greater", 0.5)
    assert np.isnan(stats.proportion(0, 0).value)
    for ev in (stats.proportion_evidence(0, 0, pred), stats.mean_evidence([], pred), stats.mean_evidence([0.7], pred),
               stats.rows_evidence(np.zeros((0, 3)), lambda m: m[..., 0], pred),
               stats.paired_binary_evidence([], [], pred)):
        assert ev.p_support == ev.p_refute == 1.0 and ev.reason
    hyp = Hypothesis(Prediction("rate", "greater", 0.5), min_n=1)
    verdict = decide(combine(hyp, [stats.mean_evidence([0.7], pred)], 1))
    assert verdict.verdict == "inconclusive" and "at least 2" in verdict.reason


def test_data_without_spread_decide_nothing():
    """The sign-test fallback tested the median: 50 values of 0.3000001 were "supported" against
    "> 0.3" with p = 9e-16, and 24 zeros from a rare binary outcome supported "mean < 0.1"."""
    ev = stats.mean_evidence(np.full(50, 0.3000001), Prediction("m", "greater", 0.3))
    assert ev.p_support == 1.0 and "no spread" in ev.reason
    ev0 = stats.mean_evidence(np.zeros(24), Prediction("kl", "less", 0.1))
    assert ev0.p_support == 1.0 and ev0.value == 0.0
    hyp = Hypothesis(Prediction("kl", "less", 0.1), min_n=1)
    verdict = decide(combine(hyp, [ev0], 24))
    assert verdict.verdict == "inconclusive" and "no spread" in verdict.reason


def test_a_statistic_that_never_varies_gets_no_tiny_p_value():
    """Rows differ but the statistic is constant (a clamp): the bootstrap gave p = 2^-18."""
    rows = np.random.default_rng(6).normal(size=(60, 3))
    ev = stats.rows_evidence(rows, lambda m: np.clip(m[..., 0], 5.0, None), Prediction("s", "greater", 4.0))
    assert ev.p_support == 1.0 and "does not vary" in ev.reason
    x = np.random.default_rng(7).normal(size=60)
    evb = stats.bootstrap_evidence((x,), lambda a, axis=-1: np.clip(np.mean(a, axis=axis), 5.0, None),
                                   Prediction("s", "greater", 4.0), vectorized=True)
    assert evb.p_support == 1.0 and "never varies" in evb.reason


def test_non_finite_values_are_excluded_and_counted():
    """One NaN or inf made mean_evidence/rows_evidence raise "BCa bootstrap is degenerate": now the
    problem is excluded, counted, noted, and the minimum n is checked on the problems left."""
    rng = np.random.default_rng(8)
    x = rng.normal(1.0, 0.3, 50)
    pred = Prediction("m", "greater", 0.0)
    for bad in (np.nan, np.inf):
        y = x.copy()
        y[3] = bad
        ev = stats.mean_evidence(y, pred)
        clean = stats.mean_evidence(np.delete(x, 3), pred)
        assert ev.excluded == 1 and ev.n == 49 and "excluded" in ev.reason
        assert ev.p_support == clean.p_support and ev.ci == clean.ci
        evr = stats.rows_evidence(np.stack([y, x], 1), lambda m: m[..., 0] - m[..., 1] + 1, pred)
        assert evr.excluded == 1 and evr.n == 49
        evb = stats.bootstrap_evidence((y, x), lambda a, b, axis=-1: np.mean(a - b + 1, axis=axis), pred,
                                       vectorized=True)
        assert evb.excluded == 1 and evb.n == 49
    out = combine(Hypothesis(pred, min_n=50), [ev], 50)
    assert out.verdict == "inconclusive" and "after excluding 1" in out.reason
    verdict = decide(combine(Hypothesis(pred, min_n=49), [ev], 50))
    assert verdict.verdict == "supported" and "excluded" in verdict.reason


def test_permutation_spearman_counts_a_nan_row_instead_of_dropping_it_silently():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(40, 7))
    y = x + rng.normal(scale=0.5, size=x.shape)
    x[0, 2] = np.nan
    ev = stats.permutation_spearman(x, y, Prediction("assoc", "greater", 0.0), permutations=500)
    assert ev.excluded == 1 and ev.n == 39 and "excluded" in ev.reason
    nan_only = np.full((3, 7), np.nan)
    ev2 = stats.permutation_spearman(nan_only, nan_only, Prediction("assoc", "greater", 0.0))
    assert ev2.p_support == 1.0 and ev2.excluded == 3


def test_zero_gap_does_not_raise():
    """LAY-01-style: clean and corrupted never differ, so the recovery ratio divides by 0."""
    rows = np.concatenate([np.random.default_rng(10).normal(size=(60, 4)), np.zeros((60, 1))], 1)
    ev = stats.rows_evidence(rows, lambda m: (m[..., :-1] / m[..., -1:]).max(-1), Prediction("gap", "greater", 0.1))
    assert ev.p_support == ev.p_refute == 1.0 and "not finite" in ev.reason
    assert decide(combine(Hypothesis(Prediction("gap", "greater", 0.1)), [ev], 60)).verdict == "inconclusive"


def test_bca_p_value_agrees_with_its_bound_under_strong_skew():
    """The defect: the bisection's first probe at alpha = 1 - 1e-9 made BCa's denominator
    1 - a(z0 + z) negative once the acceleration exceeded about 0.14, so p_support was 1.0 while the
    reported 95% bound excluded the threshold (lognormal(-1, 2), n = 100)."""
    for seed in range(6):
        x = np.random.default_rng(seed).lognormal(-1, 2, 100)
        probe = stats.bootstrap_evidence((x,), np.mean, Prediction("m", "greater", 0.0), vectorized=True)
        threshold = probe.lo - 1e-3 * abs(probe.lo)
        ev = stats.bootstrap_evidence((x,), np.mean, Prediction("m", "greater", threshold), vectorized=True)
        assert ev.lo > threshold and ev.p_support < ALPHA, seed
        evm = stats.mean_evidence(x, Prediction("m", "greater", threshold))
        assert (evm.p_support < ALPHA) == (evm.lo > threshold)


def test_power_is_recorded_and_reaches_the_report():
    x = np.random.default_rng(11).normal(0.5, 1.0, 50)
    ev = stats.mean_evidence(x, Prediction("m", "greater", 0.0))
    assert 0.8 < ev.power < 0.99 and ev.effect == pytest.approx(0.5 * np.std(x, ddof=1))
    declared = stats.mean_evidence(x, Prediction("m", "greater", 0.0, effect=0.1))
    assert declared.effect == 0.1 and declared.power < ev.power
    assert {"power", "effect", "reason", "excluded"} <= set(ev.to_dict())
    share = stats.proportion_evidence(30, 50, Prediction("rate", "greater", 0.5))
    k = np.arange(51)
    reject = sps.binom.sf(k - 1, 50, 0.5) < ALPHA
    assert share.power == pytest.approx(sps.binom.pmf(k[reject], 50, 0.65).sum())
    with pytest.raises(ValueError):
        Prediction("m", "greater", 0.0, effect=-1.0)


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


def test_a_statistic_far_beyond_every_resample_gets_a_p_value_a_large_family_can_use():
    """Studentized p-values were floored at 1/(resamples + 1) = 1/2001, so IMP-01 (6 pairs x 2 predictions x
    7 positions, Holm at each level) could never be refuted on the default model however far a gap lay
    from its margin. Beyond every resample the tail is the resamples' normal tail, never below Student's t."""
    from scipy import stats as sps

    x = np.random.default_rng(11).normal(-0.3, 0.1, 100)
    ev = stats.mean_evidence(x, Prediction("gap", "greater", 0.05))
    t = (x.mean() - 0.05) / (x.std(ddof=1) / np.sqrt(len(x)))
    assert ev.p_refute < 1 / 2001 / 84 and ev.p_refute >= sps.t.cdf(t, len(x) - 1) * (1 - 1e-9)  # jackknife SE: round-off
    near = stats.mean_evidence(np.random.default_rng(12).normal(0.0, 1.0, 100), Prediction("m", "greater", 0.0))
    assert near.p_support >= 1 / 2001  # within the resamples' range: the Monte-Carlo p-value, as before


# ---- the declared support of a mean (issue 28: heavy right tails, bounded statistics) ------------------

def test_a_one_sided_support_makes_the_open_side_impossible_and_says_why():
    """A KL's support (0, inf): "mean < t" is never supported, whatever the data (no test from the data
    alone holds its level there), the upper bound is open and the reason names the share alternative; the
    closed side decides as before. The mirror support (-inf, 0) closes "greater"."""
    x = np.random.default_rng(0).lognormal(-3, 1, 200)  # far below 1: the undeclared test supports "< 1"
    less = Prediction("mean KL", "less", 1.0)
    assert stats.mean_evidence(x, less).p_support < 1e-6
    ev = stats.mean_evidence(x, less, support=(0, np.inf))
    assert ev.p_support == 1.0 and ev.hi == np.inf and "share of problems" in ev.reason
    assert decide(combine(Hypothesis(less), [ev], 200)).verdict == "inconclusive"
    greater = stats.mean_evidence(x, Prediction("mean KL", "greater", 0.01), support=(0, np.inf))
    assert greater.p_support < ALPHA and greater.p_refute == 1.0 and greater.lo > 0.01
    mirror = stats.mean_evidence(-x, Prediction("m", "greater", -1.0), support=(-np.inf, 0))
    assert mirror.p_support == 1.0 and mirror.lo == -np.inf


def test_a_bounded_support_changes_nothing_for_data_inside_it():
    x = np.random.default_rng(1).beta(0.5, 5, 80)
    pred = Prediction("mean attention", "less", 0.3)
    a, b = stats.mean_evidence(x, pred), stats.mean_evidence(x, pred, support=(0, 1))
    assert (a.p_support, a.p_refute, a.lo, a.hi) == (b.p_support, b.p_refute, b.lo, b.hi) and b.reason is None


def test_values_outside_the_declared_support_decide_nothing_with_the_reason():
    ev = stats.mean_evidence([0.1, 0.2, 1.5, 0.3], Prediction("mean attention", "less", 0.9), support=(0, 1))
    assert ev.p_support == ev.p_refute == 1.0 and "outside the declared support [0, 1]" in ev.reason
    with pytest.raises(ValueError, match="support"):
        stats.mean_evidence([0.1, 0.2], Prediction("m", "less", 0.9), support=(1, 0))


def test_float32_round_off_at_the_support_s_end_is_inside_it():
    """fp32 attention weights or cosines may exceed 1 by ~1e-7: still inside (0, 1) / (-1, 1)."""
    x = np.float32(1.0) + np.float32(1.2e-7) * np.arange(10, dtype=np.float32) * 0.1
    ev = stats.mean_evidence(np.concatenate([x, np.linspace(0.5, 0.9, 30)]), Prediction("cos", "greater", 0.5),
                             support=(-1, 1))
    assert ev.reason is None and ev.p_support < ALPHA


# ---- found by mutation testing (docs/mutation.md): edges of the verdict path no other test reached --------

@pytest.mark.parametrize("k", [0, 1, 3])
def test_a_share_against_the_bounds_0_and_1_is_exact(k):
    """A threshold of 0 or 1 has no binomial test: "greater than 0" is shown by one hit and "less than 1"
    by one miss, with certainty; the opposite directions can never be shown."""
    n = 3
    above0 = stats.proportion_evidence(k, n, Prediction("s", "greater", 0.0))
    assert (above0.p_support, above0.p_refute) == ((0.0, 1.0) if k > 0 else (1.0, 1.0))
    below0 = stats.proportion_evidence(k, n, Prediction("s", "less", 0.0))
    assert (below0.p_support, below0.p_refute) == ((1.0, 0.0) if k > 0 else (1.0, 1.0))
    below1 = stats.proportion_evidence(k, n, Prediction("s", "less", 1.0))
    assert (below1.p_support, below1.p_refute) == ((0.0, 1.0) if k < n else (1.0, 1.0))
    above1 = stats.proportion_evidence(k, n, Prediction("s", "greater", 1.0))
    assert (above1.p_support, above1.p_refute) == ((1.0, 0.0) if k < n else (1.0, 1.0))


def test_proportion_interval_follows_its_level_and_no_problems_decide_nothing():
    e90, e95 = stats.proportion(7, 20, level=0.9), stats.proportion(7, 20)
    ci = sps.binomtest(7, 20).proportion_ci(confidence_level=0.9, method="exact")
    assert (e90.value, e90.lo, e90.hi, e90.n, e90.level) == (0.35, pytest.approx(ci.low), pytest.approx(ci.high), 20, 0.9)
    assert e95.lo < e90.lo and e95.hi > e90.hi
    empty = stats.proportion(0, 0, level=0.9)
    assert np.isnan(empty.value) and (empty.lo, empty.hi, empty.n, empty.level) == (0.0, 1.0, 0, 0.9)
    one = stats.proportion_evidence(1, 1, Prediction("s", "greater", 0.5))
    assert one.n == 1 and one.reason is None  # one problem is counted, not "no problems"
    none = stats.proportion_evidence(0, 0, Prediction("s", "greater", 0.5))
    assert (none.n, none.p_support, none.p_refute, none.level) == (0, 1.0, 1.0, 0.95)
    assert np.isnan(none.lo) and np.isnan(none.hi) and none.reason == "no problems to count"


def test_share_power_is_the_exact_binomial_power_at_the_declared_effect():
    def exact_power(n, theta0, theta1):  # the smallest rejecting count, found one count at a time
        k = next(k for k in range(n + 1) if sps.binom.sf(k - 1, n, theta0) < ALPHA)
        return sps.binom.sf(k - 1, n, theta1)

    ev = stats.proportion_evidence(30, 60, Prediction("s", "greater", 0.4, effect=0.2))
    assert ev.effect == 0.2 and ev.power == pytest.approx(exact_power(60, 0.4, 0.6))
    default = stats.proportion_evidence(30, 60, Prediction("s", "greater", 0.4))
    assert default.effect == stats.DEFAULT_SHARE_EFFECT
    assert default.power == pytest.approx(exact_power(60, 0.4, 0.4 + stats.DEFAULT_SHARE_EFFECT))
    less = stats.proportion_evidence(5, 60, Prediction("s", "less", 0.3, effect=0.2))
    assert less.power == pytest.approx(exact_power(60, 0.7, 0.9))  # "less than 0.3" mirrors "more than 0.7"
    at0 = stats.proportion_evidence(5, 40, Prediction("s", "greater", 0.0, effect=0.05))
    assert at0.power == pytest.approx(1 - 0.95 ** 40)  # rejects on any hit
    at1 = stats.proportion_evidence(5, 40, Prediction("s", "less", 1.0, effect=0.05))
    assert at1.power == pytest.approx(1 - 0.95 ** 40)  # rejects on any miss
    assert np.isnan(stats.proportion_evidence(5, 40, Prediction("s", "equivalent", 0.1)).power)


def test_mcnemar_exact_is_statsmodels_exact_mcnemar():
    from statsmodels.stats.contingency_tables import mcnemar

    before = np.array([1] * 30 + [0] * 12 + [1] * 4 + [0] * 10, dtype=bool)
    after = np.array([1] * 30 + [1] * 12 + [0] * 4 + [0] * 10, dtype=bool)
    ref = mcnemar([[30, 4], [12, 10]], exact=True).pvalue
    assert stats.mcnemar_exact(before, after) == pytest.approx(ref)
    assert stats.mcnemar_exact(before, after, "greater") == pytest.approx(sps.binomtest(12, 16, 0.5, "greater").pvalue)
    assert stats.mcnemar_exact(before, before) == 1.0
    assert stats.mcnemar_exact([True, False], [False, True]) == pytest.approx(1.0)  # 1 gained, 1 lost


def test_cochran_q_and_page_trend_are_the_libraries():
    from statsmodels.stats.contingency_tables import cochrans_q

    rng = np.random.default_rng(3)
    m = (rng.random((40, 4)) < np.array([0.2, 0.4, 0.5, 0.7])).astype(int)
    assert stats.cochran_q(m) == pytest.approx(cochrans_q(m).pvalue)
    assert stats.cochran_q(np.ones((5, 3), dtype=int)) == 1.0
    spread = m[m.std(1) > 0].astype(float)
    assert stats.page_trend(m) == pytest.approx(sps.page_trend_test(spread, method="asymptotic").pvalue)
    two = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]])  # two rows with spread: tested, not 1.0
    assert stats.page_trend(two) == pytest.approx(sps.page_trend_test(two, method="asymptotic").pvalue)
    assert stats.page_trend(two) < 1.0
    assert stats.page_trend(two[:1]) == 1.0  # one row: nothing to test


def test_permutation_spearman_drops_rows_without_spread_and_counts_non_finite_ones():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    y = x + rng.normal(scale=0.5, size=(30, 5))
    x[0] = 1.0  # x without spread: no within-problem information
    y[1] = 2.0  # y without spread
    x[2, 3] = np.nan  # non-finite: excluded and counted
    ev = stats.permutation_spearman(x, y, Prediction("rho", "greater", 0.0), permutations=500)
    keep = np.ones(30, dtype=bool)
    keep[:3] = False
    rhos = [sps.spearmanr(a, b)[0] for a, b in zip(x[keep], y[keep])]
    assert (ev.n, ev.excluded) == (27, 1) and ev.value == pytest.approx(np.mean(rhos))
    assert ev.p_support < ALPHA and ev.reason == "1 problem(s) with a non-finite value excluded"
    assert stats.within_problem_rhos(x[3:], y[3:]) == pytest.approx(rhos)
    assert stats.within_problem_rhos(x[:2], y[:2]).size == 0


def test_bootstrap_mean_edges_and_its_interval_is_mean_evidences():
    nan = float("nan")
    for values, expect in (([], (nan, nan, nan, 0)), ([3.0], (3.0, nan, nan, 1)), ([2.0, 2.0, nan], (2.0, 2.0, 2.0, 2))):
        e = stats.bootstrap_mean(values)
        assert np.allclose([e.value, e.lo, e.hi, e.n], expect, equal_nan=True), values
    two = stats.bootstrap_mean([1.0, 3.0])  # two problems with spread are bootstrapped, not a point
    assert two.n == 2 and two.lo < 2.0 < two.hi
    x = np.random.default_rng(5).exponential(size=(6, 7))  # any shape: one value per problem
    e, ev = stats.bootstrap_mean(x, seed=2), stats.mean_evidence(x.reshape(-1), Prediction("m", "greater", 0.5), seed=2)
    assert (e.value, e.lo, e.hi, e.n) == (pytest.approx(x.mean()), pytest.approx(ev.lo), pytest.approx(ev.hi), 42)


def test_the_studentized_resamples_are_centred_on_the_declared_centre():
    """``centre`` (a bias-corrected estimator's plug-in parameter, e.g. PROBE-03's deflated cosine) is what the
    resampled statistics are centred on: T* = (fn(mean*) − centre(mean)) / se*, so moving the centre by d moves
    every T* by −d / se*; the observed value, its standard error and the statistic stay fn's."""
    rows = np.random.default_rng(3).normal(size=(40, 1))
    fn = (lambda m: m[..., 0])
    plain = stats._Studentized(rows, fn, seed=0, resamples=200)
    moved = stats._Studentized(rows, fn, seed=0, resamples=200, centre=lambda m: m[..., 0] + 0.1)
    assert (moved.value, moved.se) == (plain.value, plain.se)
    shift = plain.t_asc - moved.t_asc  # order statistics of T* each moved by 0.1 / se* of some resample
    assert np.all(shift > 0) and np.median(shift) == pytest.approx(0.1 / plain.se, rel=0.2)


def test_the_tail_beyond_every_resample_is_the_normal_tail_of_the_resampled_t():
    boot = stats._Studentized(np.random.default_rng(1).normal(size=(40, 1)), lambda m: m[..., 0], seed=0, resamples=300)
    t = boot.t_asc[np.isfinite(boot.t_asc)]
    z = (9.0 - t.mean()) / t.std()
    assert boot._beyond_every_resample(9.0, "greater") == pytest.approx(sps.norm.sf(z), rel=1e-9, abs=0)
    assert boot._beyond_every_resample(-9.0, "less") == pytest.approx(sps.norm.cdf((-9.0 - t.mean()) / t.std()),
                                                                     rel=1e-9, abs=0)
    assert boot._beyond_every_resample(float("inf"), "greater") == 1.0
    boot.t_asc = np.array([0.5])  # one finite resample: no spread, no tail
    assert boot._beyond_every_resample(9.0, "greater") == 1.0


def test_bootstrap_evidence_that_cannot_decide_says_why_and_keeps_its_counts():
    pred = Prediction("r", "greater", 0.0)
    one = stats.bootstrap_evidence([np.array([1.0, np.nan])], np.mean, pred)
    assert (one.statistic, one.n, one.excluded, one.p_support, one.p_refute) == ("r", 1, 1, 1.0, 1.0)
    assert one.reason == "1 problem(s) with finite values: a bootstrap needs at least 2"
    x = np.array([1.0, 2.0, 3.0, np.inf])
    bad = stats.bootstrap_evidence([x], lambda s: np.log(-s.mean()), pred)
    assert (bad.n, bad.excluded, bad.p_support) == (3, 1, 1.0) and np.isnan(bad.value)
    assert bad.reason == "the statistic is not finite for these data"


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_the_studentized_bound_is_the_order_statistic_its_p_value_allows(alternative):
    """The one-sided bound sits at the largest count of resamples beyond it that keeps (1 + count) / (R + 1)
    below alpha (the outer of it and Student's t bound): here 3 of 199 at alpha = 0.025."""
    rows = np.random.default_rng(4).lognormal(sigma=1.2, size=(30, 1))
    b = stats._Studentized(rows, lambda m: m[..., 0], seed=0, resamples=199)
    count = max(h for h in range(199) if (1 + h) / 200 < 0.025)
    q = sps.t.ppf(0.975, 29)
    if alternative == "greater":
        expect = min(b.value - b.se * b.t_desc[count], b.value - b.se * q)
    else:
        expect = max(b.value - b.se * b.t_asc[count], b.value + b.se * q)
    assert count == 3 and b.bound(0.025, alternative) == pytest.approx(expect)
    assert b.bound(0.001, alternative) == (-np.inf if alternative == "greater" else np.inf)  # below 1/(R+1)


def test_page_evidence_is_pages_l_on_the_rows_with_spread_forwards_and_reversed():
    """The value is Page's L of the rows with spread (SciPy), the support p the trend in the predicted order
    and the refutation p the reversed order; n counts every problem; there is no interval."""
    rng = np.random.default_rng(7)
    m = (rng.random((30, 4)) < np.array([0.2, 0.35, 0.5, 0.7])).astype(int)
    spread = m[m.std(1) > 0].astype(float)
    assert 2 < len(spread) < 30  # some constant rows are dropped
    fwd = sps.page_trend_test(spread, method="asymptotic")
    rev = sps.page_trend_test(spread[:, ::-1], method="asymptotic")
    up = stats.page_evidence(m.tolist(), Prediction("trend", "greater", 0.0))
    assert (up.statistic, up.n, up.method) == ("trend", 30, "Page's L trend test (asymptotic)")
    assert up.value == pytest.approx(fwd.statistic) and np.isnan(up.lo) and np.isnan(up.hi)
    assert (up.p_support, up.p_refute) == (pytest.approx(fwd.pvalue), pytest.approx(rev.pvalue))
    assert up.p_support < ALPHA < up.p_refute
    down = stats.page_evidence(m, Prediction("trend", "less", 0.0))
    assert (down.p_support, down.p_refute) == (pytest.approx(rev.pvalue), pytest.approx(fwd.pvalue))
    two = np.array([[0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])  # two rows with spread: L is defined
    ev2 = stats.page_evidence(two, Prediction("trend", "greater", 0.0))
    assert ev2.value == pytest.approx(sps.page_trend_test(two[:2], method="asymptotic").statistic) and ev2.n == 3
    one = stats.page_evidence(two[1:], Prediction("trend", "greater", 0.0))  # one row with spread: nothing to test
    assert np.isnan(one.value) and (one.n, one.p_support, one.p_refute) == (2, 1.0, 1.0)


def _tost_power(margin: float, se: float) -> float:
    """Power of the TOST at a true difference of 0 with a normal estimate of standard error ``se``: the
    estimate lies within ``±(margin − z·se)`` (both one-sided tests reject)."""
    edge = margin - sps.norm.isf(ALPHA) * se
    return max(0.0, sps.norm.cdf(edge, scale=se) - sps.norm.cdf(-edge, scale=se))


@pytest.mark.parametrize("direction", ["greater", "less"])
def test_normal_power_is_statsmodels_one_sided_normal_power(direction):
    from statsmodels.stats.power import normal_power

    pred = Prediction("m", direction, 0.3)
    for se, effect in ((0.05, 0.1), (0.2, 0.1), (0.01, 0.5)):
        ref = normal_power(effect, 1, ALPHA, alternative="larger", sigma=se)
        assert stats._power_normal(pred, se, effect) == pytest.approx(ref, rel=1e-9), (se, effect)
    for se in (0.0, -1.0, float("nan"), float("inf")):  # no standard error: no power
        assert np.isnan(stats._power_normal(pred, se, 0.1)), se


def test_normal_power_of_an_equivalence_is_the_tost_power_at_no_difference():
    eq = Prediction("m", "equivalent", 0.1)
    for se in (0.01, 0.03, 0.05, 0.2):
        assert stats._power_normal(eq, se, 1.0) == pytest.approx(_tost_power(0.1, se), rel=1e-9, abs=1e-15), se
    assert stats._power_normal(eq, 0.2, 1.0) == 0.0  # the margin is inside z·se: never shown


def test_paired_power_inverts_connors_sample_size():
    """Connor (1987): n = (z_a·sqrt(psi) + z_b·sqrt(psi − d²))² / d² problems give power 1 − b at a
    difference d with discordance psi; the power at that n is 1 − b again."""
    z_a = sps.norm.isf(ALPHA)
    for psi, d, power in ((0.3, 0.1, 0.8), (0.2, 0.15, 0.9), (0.5, 0.05, 0.6)):
        n = (z_a * np.sqrt(psi) + sps.norm.ppf(power) * np.sqrt(psi - d ** 2)) ** 2 / d ** 2
        for direction in ("greater", "less"):
            assert stats.paired_power(n, psi, Prediction("c", direction, 0.0), d) == pytest.approx(power), (psi, d)
    # a discordance below the effect is impossible (|difference| <= discordance): it is taken as the effect
    n = (z_a * np.sqrt(0.1) + sps.norm.ppf(0.7) * np.sqrt(0.1 - 0.01)) ** 2 / 0.01
    assert stats.paired_power(n, 0.0, Prediction("c", "greater", 0.0), 0.1) == pytest.approx(0.7)


def test_paired_power_of_an_equivalence_is_the_tost_power_at_the_discordance():
    eq = Prediction("c", "equivalent", 0.05)
    for n, psi in ((400, 0.1), (100, 0.02), (50, 0.3)):
        assert stats.paired_power(n, psi, eq, 0.1) == pytest.approx(_tost_power(0.05, np.sqrt(psi / n)), abs=1e-12)
    assert stats.paired_power(20, 0.0, eq, 0.1) == pytest.approx(1.0)  # no discordant pair: no spread at all


def test_the_reported_power_of_each_test_is_at_its_own_standard_error():
    rng = np.random.default_rng(12)
    x = rng.normal(size=(25, 6))
    y = x + rng.normal(size=(25, 6))
    rho = stats.permutation_spearman(x, y, Prediction("r", "greater", 0.0), permutations=200)
    se = 1 / np.sqrt(25 * 5)  # a Spearman over 6 positions has variance 1/5 under the null
    assert (rho.effect, rho.power) == (0.2, pytest.approx(sps.norm.sf(sps.norm.isf(ALPHA) - 0.2 / se)))
    before = np.array([True] * 30 + [False] * 30)
    after = np.array([True] * 20 + [False] * 10 + [True] * 25 + [False] * 5)
    ev = stats.paired_binary_evidence(before, after, Prediction("c", "greater", 0.0))
    psi, z_a = 35 / 60, sps.norm.isf(ALPHA)  # 25 gained and 10 lost of 60: Connor's power at 10 pp
    connor = sps.norm.cdf((0.1 * np.sqrt(60) - z_a * np.sqrt(psi)) / np.sqrt(psi - 0.01))
    assert (ev.effect, ev.power) == (0.1, pytest.approx(connor))
    z = rng.lognormal(size=40)
    boot = stats.bootstrap_evidence((z,), np.mean, Prediction("m", "greater", 1.0), vectorized=True, resamples=500)
    spread = sps.bootstrap((z,), np.mean, n_resamples=500, method="percentile", rng=np.random.default_rng(0)
                           ).bootstrap_distribution
    assert boot.effect == pytest.approx(0.5 * np.std(spread) * np.sqrt(40))
    assert boot.power == pytest.approx(sps.norm.sf(sps.norm.isf(ALPHA) - 0.5 * np.sqrt(40)))


def _normal_p_at(estimate: float, se: float):
    """A one-sided z test of a normal estimate: ``greater`` tests H0: θ <= θ0, ``less`` H0: θ >= θ0."""
    return lambda t, alt: sps.norm.sf((estimate - t) / se) if alt == "greater" else sps.norm.cdf((estimate - t) / se)


def test_one_sided_evidence_supports_and_refutes_by_the_two_one_sided_tests():
    up = stats.from_one_sided(Prediction("m", "greater", 0.1), 0.2, 0.1, 0.3, 40, _normal_p_at(0.2, 0.05), "z")
    assert (up.p_support, up.p_refute) == (pytest.approx(sps.norm.sf(2.0)), pytest.approx(sps.norm.cdf(2.0)))
    down = stats.from_one_sided(Prediction("m", "less", 0.1), 0.2, 0.1, 0.3, 40, _normal_p_at(0.2, 0.05), "z", 0.9)
    assert (down.p_support, down.p_refute) == (pytest.approx(sps.norm.cdf(2.0)), pytest.approx(sps.norm.sf(2.0)))
    assert (down.statistic, down.value, down.lo, down.hi, down.n, down.method, down.level) == (
        "m", 0.2, 0.1, 0.3, 40, "z", 0.9)
    assert up.level == stats.LEVEL == 0.95


@pytest.mark.parametrize("estimate", [0.0, 0.06, 0.2, -0.2])
def test_equivalence_evidence_is_the_tost_and_the_bonferroni_of_its_two_outside_tests(estimate):
    """Margin 0.1, se 0.05: support is the worse of "θ > −0.1" and "θ < 0.1"; refutation the better of
    "θ < −0.1" and "θ > 0.1", doubled (Bonferroni) and capped at 1."""
    p_at = _normal_p_at(estimate, 0.05)
    ev = stats.from_one_sided(Prediction("m", "equivalent", 0.1), estimate, -0.1, 0.1, 40, p_at, "z")
    above_low, below_high = sps.norm.sf((estimate + 0.1) / 0.05), sps.norm.cdf((estimate - 0.1) / 0.05)
    below_low, above_high = sps.norm.cdf((estimate + 0.1) / 0.05), sps.norm.sf((estimate - 0.1) / 0.05)
    assert ev.p_support == pytest.approx(max(above_low, below_high))
    assert ev.p_refute == pytest.approx(min(1.0, 2 * min(below_low, above_high)))


def test_evidence_that_cannot_decide_has_no_interval_and_says_so():
    pred = Prediction("rate", "greater", 0.5)
    for ev, reason in ((stats.proportion_evidence(0, 0, pred), "no problems to count"),
                       (stats.paired_binary_evidence([], [], pred), "no problems to compare")):
        assert (ev.statistic, ev.n, ev.excluded, ev.p_support, ev.p_refute, ev.level) == ("rate", 0, 0, 1.0, 1.0, 0.95)
        assert (ev.method, ev.reason) == ("none (the test cannot decide)", reason)
        assert np.isnan(ev.value) and np.isnan(ev.lo) and np.isnan(ev.hi)


_STUDENTIZED = "studentized bootstrap (bootstrap-t, jackknife SE) over problems"
_UNDECIDED = "none (the test cannot decide)"


def _fields(ev):
    return ev.statistic, ev.n, ev.excluded, ev.p_support, ev.p_refute, ev.method, ev.reason


def test_each_undecided_branch_of_the_mean_tests_names_its_reason_and_keeps_its_counts():
    """Every way the studentized tests cannot decide: both p-values 1, the reason the report shows, the
    problems kept (n) and excluded as non-finite, and the value where one is defined."""
    pred = Prediction("m", "greater", 0.5)
    nan = float("nan")
    one = stats.mean_evidence([0.7, nan], pred)
    assert _fields(one) == ("m", 1, 1, 1.0, 1.0, _UNDECIDED,
                            "1 problem(s) with finite values: a test needs at least 2 (1 excluded as non-finite)")
    assert stats.mean_evidence([0.7], pred).reason == "1 problem(s) with finite values: a test needs at least 2"
    flat = stats.mean_evidence([2.0, 2.0, 2.0, nan], pred)
    assert _fields(flat) == ("m", 3, 1, 1.0, 1.0, _UNDECIDED, "no spread across problems: the test cannot "
                             "decide; 1 problem(s) with a non-finite value excluded") and flat.value == 2.0
    assert stats.mean_evidence([2.0, 2.0], pred).reason == "no spread across problems: the test cannot decide"
    ratio = lambda m: m[..., 0] / m[..., 1]  # noqa: E731
    same = stats.rows_evidence([[1.0, 0.0]] * 4 + [[nan, 1.0]], ratio, pred)
    assert _fields(same) == ("m", 4, 1, 1.0, 1.0, _UNDECIDED, "the statistic is not finite for these data")
    zero = stats.rows_evidence([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [nan, 0.0]], ratio, pred)
    assert _fields(zero) == ("m", 3, 1, 1.0, 1.0, _UNDECIDED,
                             "the statistic is not finite for these data (e.g. a zero denominator)")
    assert zero.value == np.inf
    rows = np.random.default_rng(6).normal(size=(20, 2))
    rows[0, 1] = nan
    clamp = stats.rows_evidence(rows, lambda m: np.clip(m[..., 0], 5.0, None), pred)
    assert _fields(clamp) == ("m", 19, 1, 1.0, 1.0, _UNDECIDED, "the statistic does not vary when a problem is "
                              "left out: the test cannot decide; 1 problem(s) with a non-finite value excluded")
    assert clamp.value == 5.0
    shifted = stats.rows_evidence(rows, lambda m: m[..., 0] + 3.0, pred, support=(-2.0, 2.0))
    value = np.nanmean(rows[1:, 0]) + 3.0
    assert _fields(shifted) == ("m", 19, 1, 1.0, 1.0, _UNDECIDED,
                                f"the statistic {value:.6g} lies outside its declared support [-2, 2]")
    assert shifted.value == pytest.approx(value)
    out = stats.mean_evidence([0.1, 0.2, 1.5, -0.25, nan, nan], pred, support=(0, 1))
    assert _fields(out) == ("m", 4, 2, 1.0, 1.0, _UNDECIDED,
                            "values outside the declared support [0, 1] (from -0.25 to 1.5)")


def test_two_problems_with_spread_are_tested():
    ev = stats.mean_evidence([0.2, 0.4], Prediction("m", "greater", 0.0))
    assert (ev.n, ev.reason, ev.method) == (2, None, _STUDENTIZED) and ev.p_support < 1.0
    assert ev.value == pytest.approx(0.3) and ev.lo < 0.3 < ev.hi
    evr = stats.rows_evidence([[0.2, 1.0], [0.4, 1.0]], lambda m: m[..., 0] * m[..., 1], Prediction("m", "less", 1.0))
    assert (evr.n, evr.reason, evr.method) == (2, None, _STUDENTIZED) and evr.p_support < 1.0


def test_the_note_of_an_open_support_names_the_side_and_follows_the_exclusions():
    x = np.append(np.random.default_rng(0).lognormal(-3, 1, 60), np.nan)
    tail = " a threshold from the data (an unbounded tail; state the claim as a share of problems or a quantile)"
    kl = stats.mean_evidence(x, Prediction("kl", "less", 1.0), support=(0, np.inf))
    assert kl.reason == ("1 problem(s) with a non-finite value excluded; a mean over the support [0, inf] cannot "
                         "be shown below" + tail) and kl.excluded == 1 and kl.n == 60
    neg = stats.mean_evidence(-x[:-1], Prediction("m", "greater", -1.0), support=(-np.inf, 0.5))
    assert neg.reason == "a mean over the support [-inf, 0.5] cannot be shown above" + tail
    assert neg.hi == pytest.approx(stats.mean_evidence(-x[:-1], Prediction("m", "greater", -1.0)).hi)


def test_rows_evidence_takes_any_array_like_and_its_declared_support():
    rows = np.random.default_rng(2).normal(0.5, 0.2, size=(30, 2))
    pred = Prediction("d", "greater", 0.0)
    diff = lambda m: m[..., 0] - m[..., 1] + 0.5  # noqa: E731
    a, b = stats.rows_evidence(rows.tolist(), diff, pred), stats.rows_evidence(rows, diff, pred)
    assert (a.value, a.lo, a.p_support) == (pytest.approx(b.value), pytest.approx(b.lo), pytest.approx(b.p_support))
    assert a.method == _STUDENTIZED and a.reason is None
    assert stats.rows_evidence(rows, diff, pred, support=(0.9, 2.0)).reason.startswith("the statistic ")
    with pytest.raises(ValueError, match=r"^rows must be \[n, k\], got shape \(30,\)$"):
        stats.rows_evidence(rows[:, 0], diff, pred)
    values = np.random.default_rng(3).exponential(size=(5, 8))  # mean_evidence: one value per problem, any shape
    m = stats.mean_evidence(values, Prediction("m", "greater", 0.5))
    flat = stats.mean_evidence(values.reshape(-1), Prediction("m", "greater", 0.5))
    assert (m.n, m.value, m.lo, m.p_support) == (40, pytest.approx(flat.value), pytest.approx(flat.lo),
                                                  pytest.approx(flat.p_support))


def test_the_default_seed_is_0():
    """Reports are reproducible from the documented default seed (0) of every resampling test."""
    rng = np.random.default_rng(4)
    x, y = rng.lognormal(size=30), rng.normal(size=(12, 5))
    z = y + 3 * rng.normal(size=y.shape)  # a weak association: the permutation p is above its floor
    pred = Prediction("m", "greater", 1.0)
    for default, seeded in (
            (stats.mean_evidence(x, pred), stats.mean_evidence(x, pred, seed=0)),
            (stats.rows_evidence(x[:, None], lambda m: m[..., 0], pred),
             stats.rows_evidence(x[:, None], lambda m: m[..., 0], pred, seed=0)),
            (stats.bootstrap_evidence((x,), np.mean, pred, vectorized=True, resamples=300),
             stats.bootstrap_evidence((x,), np.mean, pred, vectorized=True, resamples=300, seed=0)),
            (stats.permutation_spearman(y, z, Prediction("r", "greater", 0.0), permutations=300),
             stats.permutation_spearman(y, z, Prediction("r", "greater", 0.0),
                                        permutations=300, seed=0))):
        assert (default.lo, default.hi, default.p_support) == (
            pytest.approx(seeded.lo, rel=1e-9), pytest.approx(seeded.hi, rel=1e-9), pytest.approx(seeded.p_support))
    b0, b = stats.bootstrap_mean(x), stats.bootstrap_mean(x, seed=0)
    assert (b0.lo, b0.hi) == (pytest.approx(b.lo, rel=1e-9), pytest.approx(b.hi, rel=1e-9))


def test_expanded_level_is_students_quantile_widened_by_sqrt_n_over_n_minus_1():
    for alpha, n in ((0.025, 10), (0.025, 40), (0.1, 5), (0.3, 2)):
        z = sps.t.ppf(1 - alpha, n - 1) * np.sqrt(n / (n - 1))
        assert stats.expanded_level(alpha, n) == pytest.approx(sps.norm.cdf(z), rel=1e-12), (alpha, n)
    assert stats.expanded_level(0.025, 1) == pytest.approx(sps.norm.cdf(sps.t.ppf(0.975, 1)))  # one df at n = 1
    assert stats.expanded_level(1e-30, 10) == 1 - 1e-12 and stats.expanded_level(1 - 1e-30, 10) == 1e-12  # clipped


def _scipy_bca(samples, statistic, alpha, alternative, *, vectorized, resamples=400, method="BCa"):
    """SciPy's one-sided bootstrap bound at the expanded level, from the same random stream (seed 0)."""
    n = len(samples[0])
    res = sps.bootstrap(samples, statistic, n_resamples=resamples, vectorized=vectorized, paired=len(samples) > 1,
                        method=method, confidence_level=stats.expanded_level(alpha, n), alternative=alternative,
                        rng=np.random.default_rng(0))
    return res.confidence_interval.low if alternative == "greater" else res.confidence_interval.high


def test_bootstrap_evidence_is_scipys_expanded_bca_bound_and_its_inversion():
    """The interval is SciPy's BCa at the expanded level (a paired two-sample statistic, not vectorized); the
    p-value is the level at which that bound reaches the threshold; a threshold the 50% bound does not
    exclude gets p = 1."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=40)
    y = 0.6 * x + rng.normal(size=40)
    corr = lambda a, b: np.corrcoef(a, b)[0, 1]  # noqa: E731
    ev = stats.bootstrap_evidence((x, y), corr, Prediction("r", "greater", 0.3), resamples=400)
    assert ev.method == "BCa bootstrap over problems (expanded level)" and ev.reason is None and ev.excluded == 0
    assert ev.value == pytest.approx(corr(x, y))
    assert ev.lo == pytest.approx(_scipy_bca((x, y), corr, ALPHA, "greater", vectorized=False))
    assert ev.hi == pytest.approx(_scipy_bca((x, y), corr, ALPHA, "less", vectorized=False))
    assert 0.0 < ev.p_support < 0.5 and ev.p_refute == 1.0
    at_p = _scipy_bca((x, y), corr, ev.p_support, "greater", vectorized=False)
    assert at_p == pytest.approx(0.3, abs=1e-4)  # the bound at level p sits on the threshold
    down = stats.bootstrap_evidence((x, y), corr, Prediction("r", "less", 0.55), resamples=400)
    assert _scipy_bca((x, y), corr, down.p_support, "less", vectorized=False) == pytest.approx(0.55, abs=1e-4)
    assert down.p_refute == 1.0


def test_bootstrap_evidence_falls_back_to_the_percentile_bound_when_bca_is_undefined():
    """A median with ties: the jackknife has no spread, BCa's acceleration is undefined, the percentile
    bound (SciPy) is reported and named."""
    x = np.array([0.0] * 9 + [1.0] * 12 + [2.0] * 4)
    ev = stats.bootstrap_evidence((x,), np.median, Prediction("med", "greater", -0.5), resamples=400)
    assert ev.method == "percentile bootstrap over problems (expanded level)"
    assert (ev.lo, ev.hi) == (
        pytest.approx(_scipy_bca((x,), np.median, ALPHA, "greater", vectorized=False, method="percentile")),
        pytest.approx(_scipy_bca((x,), np.median, ALPHA, "less", vectorized=False, method="percentile")))
    vec = stats.bootstrap_evidence((x,), np.median, Prediction("med", "greater", -0.5), vectorized=True,
                                   resamples=400)
    assert (vec.value, vec.lo, vec.hi, vec.method) == (1.0, pytest.approx(ev.lo), pytest.approx(ev.hi), ev.method)


def test_bootstrap_evidence_notes_and_counts_its_exclusions_when_it_decides():
    x = np.append(np.random.default_rng(6).normal(1.0, 1.0, 40), [np.nan, np.inf])
    ev = stats.bootstrap_evidence((x.tolist(),), np.mean, Prediction("m", "greater", 0.0), vectorized=True,
                                  resamples=300)
    assert (ev.n, ev.excluded, ev.reason) == (40, 2, "2 problem(s) with a non-finite value excluded")
    assert ev.p_support < ALPHA and ev.value == pytest.approx(np.mean(x[:40]))
    two = stats.bootstrap_evidence((np.array([1.0, 3.0]),), np.mean, Prediction("m", "greater", 0.0), resamples=50)
    assert two.n == 2 and two.reason != "2 problem(s) with finite values: a bootstrap needs at least 2"


def test_the_studentized_p_value_counts_non_finite_resamples_as_extreme_on_both_sides():
    """A statistic not finite on some resamples (log of a mean that can be negative): each such resample
    counts towards both tails; the p-value is (1 + beyond + bad) / (R + 1), or Student's t when larger."""
    x = np.random.default_rng(3).normal(1.0, 1.0, 12)
    fn = lambda m: np.log(m[..., 0])  # noqa: E731
    b = stats._Studentized(x[:, None], fn, seed=0, resamples=399)
    bad = int(np.sum(np.isnan(b.t)))
    assert bad > 0 and b.bad == bad
    for theta0, alt in ((-4.0, "greater"), (-1.0, "less"), (b.value, "greater"), (b.value, "less")):
        t = (b.value - theta0) / b.se
        finite = b.t[~np.isnan(b.t)]
        beyond = np.sum(finite >= t) if alt == "greater" else np.sum(finite <= t)
        student = sps.t.sf(t, 11) if alt == "greater" else sps.t.cdf(t, 11)
        assert b.p(theta0, alt) == pytest.approx(min(1.0, max((1 + beyond + bad) / 400, student))), (theta0, alt)
    c = int(np.ceil(0.1 * 400 - 1)) - 1 - bad  # the bound: the order statistic the p-value allows
    q = sps.t.ppf(0.9, 11)
    assert b.bound(0.1, "greater") == pytest.approx(min(b.value - b.se * np.sort(finite)[::-1][c], b.value - b.se * q))
    assert b.bound(0.1, "less") == pytest.approx(max(b.value - b.se * np.sort(finite)[c], b.value + b.se * q))


def _permutation_null(y_ranks: np.ndarray, x_ranks: np.ndarray, permutations: int, seed: int) -> np.ndarray:
    """The mean within-problem Spearman of each permutation (positions shuffled within each problem, the
    documented stream ``default_rng(seed).permuted``), with SciPy's Spearman per problem."""
    shuffled = np.random.default_rng(seed).permuted(np.broadcast_to(y_ranks, (permutations, *y_ranks.shape)).copy(),
                                                    axis=-1)
    return np.array([np.mean([sps.spearmanr(a, b)[0] for a, b in zip(x_ranks, s)]) for s in shuffled])


def test_the_permutation_p_value_counts_ties_with_the_observed_mean_as_extreme():
    """Three problems over three positions: the per-problem Spearman takes few values, so permutations tie
    with the observed mean; each side's p is (1 + permutations at least as extreme) / (permutations + 1)."""
    x = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0], [1.0, 3.0, 2.0]])
    y = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    ev = stats.permutation_spearman(x, y, Prediction("r", "greater", 0.0), permutations=400, seed=3)
    observed = np.mean([sps.spearmanr(a, b)[0] for a, b in zip(x, y)])
    null = _permutation_null(sps.rankdata(y, axis=1), sps.rankdata(x, axis=1), 400, 3)
    assert np.sum(np.abs(null - observed) < 1e-9) > 0  # ties exist
    assert ev.value == pytest.approx(observed) and ev.method == "within-problem permutation test"
    assert ev.p_support == pytest.approx((1 + np.sum(null >= observed - 1e-9)) / 401)
    assert ev.p_refute == pytest.approx((1 + np.sum(null <= observed + 1e-9)) / 401)
    rhos = stats.within_problem_rhos(x, y)
    ci = stats.bootstrap_mean(rhos, seed=3)
    assert (ev.lo, ev.hi) == (pytest.approx(ci.lo), pytest.approx(ci.hi))
    down = stats.permutation_spearman(x, y, Prediction("r", "less", 0.0), permutations=400, seed=3)
    assert (down.p_support, down.p_refute) == (pytest.approx(ev.p_refute), pytest.approx(ev.p_support))


def test_permutation_spearman_needs_two_problems_and_one_directional_threshold_0():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(2, 6)), rng.normal(size=(2, 6))
    two = stats.permutation_spearman(x, y, Prediction("r", "greater", 0.0), permutations=100)
    assert two.n == 2 and two.reason is None and two.p_support < 1.0
    y2 = y.copy()
    y2[1, 0] = np.nan  # a non-finite value in y excludes only its problem
    one = stats.permutation_spearman(x, y2, Prediction("r", "greater", 0.0), permutations=100)
    assert (one.n, one.excluded, one.p_support, one.p_refute, one.method) == (1, 1, 1.0, 1.0,
                                                                              "within-problem permutation test")
    assert one.reason == "1 problem(s) with finite values and spread: a permutation test needs at least 2"
    with pytest.raises(ValueError, match=r"^a permutation test of association tests a threshold of 0 in one "
                                         r"direction$"):
        stats.permutation_spearman(x, y, Prediction("r", "less", 0.1))


def test_the_jackknife_se_of_a_difference_of_column_means_is_s_over_sqrt_n():
    rows = np.random.default_rng(9).normal(size=(25, 2)) * [1.0, 3.0] + [0.5, 0.0]
    b = stats._Studentized(rows, lambda m: m[..., 0] - m[..., 1], seed=0, resamples=200)
    d = rows[:, 0] - rows[:, 1]
    assert b.se == pytest.approx(d.std(ddof=1) / np.sqrt(25)) and b.value == pytest.approx(d.mean())
    assert len(b.t) == 200 and b.bad == 0
    idx = np.random.default_rng(0).integers(0, 25, (200, 25))  # the resamples, whole problems
    r = d[idx]
    assert b.t == pytest.approx((r.mean(1) - d.mean()) / (r.std(1, ddof=1) / np.sqrt(25)))


def test_a_resample_without_spread_is_zero_at_the_estimate_and_infinite_elsewhere():
    """Three problems: some resamples repeat one problem (se* = 0): T* is 0 when that resample's mean is
    the estimate and ±inf (by the side it lies on) otherwise; none counts as non-finite ("bad")."""
    x = np.array([0.0, 1.0, 2.0])
    b = stats._Studentized(x[:, None], lambda m: m[..., 0], seed=0, resamples=300)
    r = x[np.random.default_rng(0).integers(0, 3, (300, 3))]
    flat = r.std(1) == 0
    v = r[flat, 0]
    expect = np.where(v == 1.0, 0.0, np.where(v > 1.0, np.inf, -np.inf))
    assert flat.sum() > 10 and set(v) == {0.0, 1.0, 2.0}
    assert list(b.t[flat]) == list(expect) and b.bad == 0


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_the_studentized_bound_and_p_value_follow_their_definitions_on_skewed_data(sign):
    """Right- and left-skewed data (so that the bootstrap-t bound, not Student's, is the outer one on one
    side): each bound is the order statistic at the largest count h with (1 + h) / (R + 1) < alpha, and
    each p-value the larger of the bootstrap tail (or, beyond every resample, its normal tail) and Student's."""
    x = sign * np.random.default_rng(4).lognormal(sigma=1.2, size=30)
    b = stats._Studentized(x[:, None], lambda m: m[..., 0], seed=0, resamples=400)
    assert b.bad == 0 and b.se == pytest.approx(x.std(ddof=1) / np.sqrt(30))
    desc, asc = np.sort(b.t)[::-1], np.sort(b.t)
    for alpha in (1.5 / 401, 0.025, 0.1):
        h = max(k for k in range(400) if (1 + k) / 401 < alpha)
        q = sps.t.ppf(1 - alpha, 29)
        assert b.bound(alpha, "greater") == pytest.approx(min(b.value - b.se * desc[h], b.value - b.se * q)), alpha
        assert b.bound(alpha, "less") == pytest.approx(max(b.value - b.se * asc[h], b.value + b.se * q)), alpha
    outer = (b.bound(0.025, "less") > b.value + b.se * sps.t.ppf(0.975, 29) if sign > 0
             else b.bound(0.025, "greater") < b.value - b.se * sps.t.ppf(0.975, 29))
    assert outer  # the bootstrap bound is the outer one on the long-tailed side
    for t in (-40.0, -3.0, -1.0, 0.5, 2.0, 40.0):
        theta0 = b.value - t * b.se
        for alt in ("greater", "less"):
            beyond = np.sum(b.t >= t) if alt == "greater" else np.sum(b.t <= t)
            boot = (1 + beyond) / 401
            if beyond == 0:
                z = (t - b.t.mean()) / b.t.std()
                boot = min(boot, sps.norm.sf(z) if alt == "greater" else sps.norm.cdf(z))
            student = sps.t.sf(t, 29) if alt == "greater" else sps.t.cdf(t, 29)
            assert b.p(theta0, alt) == pytest.approx(min(1.0, max(boot, student)), rel=1e-9, abs=1e-300), (t, alt)


def test_the_support_tolerance_is_a_millionth_of_its_span_or_absolute_when_open():
    pred = Prediction("m", "greater", 0.0)
    base = [1.0, 2.0, 3.0, 4.0]

    def outside(extra, support):
        return "outside the declared support" in (stats.mean_evidence(base + [extra], pred, support=support).reason or "")

    assert not outside(10 + 5e-6, (0, 10)) and outside(10 + 2e-5, (0, 10))  # span 10: 1e-5
    assert not outside(-5e-6, (0, 10)) and outside(-2e-5, (0, 10))
    assert not outside(-5e-7, (0, np.inf)) and outside(-1.5e-6, (0, np.inf))  # open: 1e-6 absolute
    assert outside(-1e-3, (0, np.inf))
    with pytest.raises(ValueError, match=r"^support must be \(low, high\) with low < high, got \(1, 1\)$"):
        stats.mean_evidence(base, pred, support=(1, 1))


def test_small_shares_and_tied_mcnemar_tests_are_the_library_values():
    one = stats.proportion(1, 1)
    ci = sps.binomtest(1, 1).proportion_ci(confidence_level=0.95, method="exact")
    assert (one.value, one.lo, one.hi, one.n) == (1.0, pytest.approx(ci.low), pytest.approx(ci.high), 1)
    ev = stats.proportion_evidence(9, 20, Prediction("s", "greater", 0.3))
    assert ev.method == "exact binomial test, Clopper-Pearson interval"
    tied = ([True, True, False, False, True], [False, False, True, True, True])  # 2 gained, 2 lost
    assert stats.mcnemar_exact(*tied, alternative="greater") == pytest.approx(sps.binomtest(2, 4, 0.5, "greater").pvalue)
    flat = stats.bootstrap_mean(np.full(5, 1e6) + [0.0, 1e-7, 0.0, 0.0, 0.0])  # a spread of round-off: no interval
    assert flat.lo == flat.hi == flat.value == pytest.approx(1e6)
    spread = stats.bootstrap_mean([0.1, 0.2, 0.3, 0.25])
    assert spread.lo < spread.value < spread.hi


def test_a_bootstrap_with_an_infinite_bound_decides_nothing_and_says_so():
    """1/mean: some resamples have mean 0 (1/0 = inf), so the upper bound is infinite while the lower is
    finite; the evidence decides nothing, keeps its value and counts."""
    x = np.array([-2.0, 1.0, 1.0, 1.0, 0.0, 1.0, np.nan])
    inv = lambda a: 1.0 / np.mean(a)  # noqa: E731
    with np.errstate(all="ignore"):
        boot = stats._Bootstrap((x[:6],), inv, vectorized=False, seed=0, resamples=200)
    assert np.isfinite(boot.lo) and boot.hi == np.inf
    ev = stats.bootstrap_evidence((x,), inv, Prediction("inv", "greater", 0.0), resamples=200)
    assert _fields(ev) == ("inv", 6, 1, 1.0, 1.0, _UNDECIDED, "the bootstrap is degenerate for these data")
    assert ev.value == pytest.approx(3.0) and np.isnan(ev.lo) and np.isnan(ev.hi)


def test_the_jackknife_se_of_a_ratio_is_the_leave_one_out_formula():
    rows = np.random.default_rng(10).uniform(1.0, 3.0, size=(20, 2))
    b = stats._Studentized(rows, lambda m: m[..., 0] / m[..., 1], seed=0, resamples=50)
    loo = np.array([rows[np.arange(20) != i, 0].mean() / rows[np.arange(20) != i, 1].mean() for i in range(20)])
    assert b.se == pytest.approx(np.sqrt(19 / 20 * np.sum((loo - loo.mean()) ** 2)))


def test_the_paired_evidence_names_its_test_and_its_declared_effect():
    before = np.array([True] * 30 + [False] * 30)
    after = np.array([True] * 20 + [False] * 10 + [True] * 25 + [False] * 5)
    ev = stats.paired_binary_evidence(before, after, Prediction("c", "greater", 0.0, effect=0.2))
    assert ev.method == "exact unconditional Tango score test, exact Tango interval"
    assert (ev.effect, ev.power) == (0.2, pytest.approx(stats.paired_power(60, 35 / 60, Prediction("c", "greater", 0.0),
                                                                            0.2)))


def test_powers_at_the_edges_two_positions_and_a_share_near_1():
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(12, 2)), rng.normal(size=(12, 2))
    rho = stats.permutation_spearman(x, y, Prediction("r", "greater", 0.0), permutations=100)
    assert rho.power == pytest.approx(sps.norm.sf(sps.norm.isf(ALPHA) - 0.2 * np.sqrt(12)))  # variance 1/(2 - 1)
    share = stats.proportion_evidence(45, 50, Prediction("s", "greater", 0.9))  # 0.9 + 0.15 is capped at 1
    assert share.power == pytest.approx(1.0)  # every problem right: 50 of 50 rejects (0.9^50 < ALPHA)


def test_bootstrap_evidence_keeps_a_non_finite_value_and_names_a_constant_statistic():
    inf = stats.bootstrap_evidence((np.array([1.0, 2.0, 3.0]),), lambda s: np.inf * s.mean(), Prediction("r", "less", 1.0))
    assert inf.value == np.inf and inf.reason == "the statistic is not finite for these data"
    x = np.random.default_rng(7).normal(size=30)
    const = stats.bootstrap_evidence((x,), lambda a, axis=-1: np.clip(np.mean(a, axis=axis), 5.0, None),
                                     Prediction("s", "greater", 4.0), vectorized=True, resamples=100)
    assert const.reason == "the statistic never varies over resamples: the test cannot decide" and const.value == 5.0


def test_paired_evidence_of_unequal_lengths_is_refused_even_when_one_side_is_empty():
    with pytest.raises(ValueError, match="equal-length"):
        stats.paired_binary_evidence([], [True, False], Prediction("c", "greater", 0.0))


def test_rows_evidence_p_factor_multiplies_both_p_values_and_bounds_at_the_matching_level():
    """rows_evidence(p_factor=2) (PROBE-03's guard): both one-sided p-values are exactly doubled (capped at 1),
    the bounds are those at ALPHA / 2 (wider), and a bound excludes the threshold exactly when the doubled p is
    below ALPHA; a factor below 1 is a one-line error."""
    rng = np.random.default_rng(3)
    rows = rng.normal(0.2, 1.0, (60, 2))
    pred = Prediction("ratio", "greater", 0.0)
    fn = lambda m: m[..., 0] + m[..., 1]  # noqa: E731
    one = stats.rows_evidence(rows, fn, pred, resamples=499)
    two = stats.rows_evidence(rows, fn, pred, resamples=499, p_factor=2.0)
    assert two.p_support == pytest.approx(min(1.0, 2 * one.p_support))
    assert two.p_refute == pytest.approx(min(1.0, 2 * one.p_refute))
    assert two.lo < one.lo and two.hi > one.hi and two.value == pytest.approx(one.value)
    for t in np.linspace(one.value - 0.6, one.value + 0.6, 13):
        ev = stats.rows_evidence(rows, fn, Prediction("ratio", "greater", float(t)), resamples=499, p_factor=2.0)
        assert (ev.p_support < ALPHA) == (ev.lo > t), t
    with pytest.raises(ValueError, match="p_factor must be at least 1"):
        stats.rows_evidence(rows, fn, pred, p_factor=0.5)
