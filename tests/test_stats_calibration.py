"""Calibration of every test in ``codi_probe.stats``: under the null its rejection rate is at most the
nominal level (exactly computed where the test is exact, else within Monte-Carlo error), including
small n and rare discordance; under a known alternative its power matches the power calculation.

The exact unconditional Tango test and its TOST (``paired_binary_evidence`` away from 0) have their exact
sizes computed over the nuisance in ``tests/test_paired_binary.py``. Each one-sided test decides at
``ALPHA`` = 0.025. Monte-Carlo bounds allow 3 standard errors of the
simulated rate (a false failure rate of about 0.1% per check)."""

import numpy as np
import pytest
from scipy import stats as sps

from codi_probe import paired_binary as pb
from codi_probe import stats
from codi_probe.hypothesis import ALPHA, Hypothesis, Outcome, Prediction, adjust_family, decide


def mc_bound(rate: float, reps: int) -> float:
    return rate + 3 * np.sqrt(rate * (1 - rate) / reps)


@pytest.mark.parametrize("n,theta0", [(24, 0.8), (50, 0.95), (100, 0.3), (500, 0.1)])
def test_binomial_size_is_exact_and_at_most_alpha(n, theta0):
    """Exact: sum the null pmf over the outcomes the test rejects."""
    k = np.arange(n + 1)
    for direction, alt in (("greater", "greater"), ("less", "less")):
        pred = Prediction("rate", direction, theta0)
        reject = np.array([stats.proportion_evidence(int(j), n, pred).p_support < ALPHA for j in k])
        assert sps.binom.pmf(k[reject], n, theta0).sum() <= ALPHA + 1e-12


def test_binomial_power_matches_the_exact_calculation():
    n, theta0, theta1 = 100, 0.3, 0.45
    pred = Prediction("rate", "greater", theta0)
    crit = min(j for j in range(n + 1) if stats.proportion_evidence(j, n, pred).p_support < ALPHA)
    exact_power = sps.binom.sf(crit - 1, n, theta1)
    rng = np.random.default_rng(0)
    sims = rng.binomial(n, theta1, size=4000)
    rejects = {j: stats.proportion_evidence(int(j), n, pred).p_support < ALPHA for j in np.unique(sims)}
    simulated = np.mean([rejects[j] for j in sims])
    assert abs(simulated - exact_power) < 3 * np.sqrt(exact_power * (1 - exact_power) / 4000)
    assert 0.6 < exact_power < 0.9  # the normal-approximation power is 0.75


@pytest.mark.parametrize("n", [24, 50, 100])
def test_mcnemar_size_with_rare_discordance(n):
    """Exact McNemar (threshold 0) over a grid of discordance rates, down to rare discordance."""
    g, l, logc = pb._cells(n)
    for q in (0.005, 0.02, 0.1, 0.3):
        p = np.exp(logc + g * np.log(q) + l * np.log(q) + (n - g - l) * np.log(1 - 2 * q))
        reject = np.array([sps.binomtest(int(a), int(a + b), 0.5, alternative="greater").pvalue < ALPHA
                           if a + b else False for a, b in zip(g, l)])
        assert p[reject].sum() <= ALPHA + 1e-12


def null_samples(kind: str, reps: int, n: int, rng) -> tuple[np.ndarray, float]:
    if kind == "normal":
        return rng.normal(0.3, 0.1, (reps, n)), 0.3
    if kind == "beta":  # skewed and bounded, like attention mass
        return rng.beta(0.5, 3.0, (reps, n)), 0.5 / 3.5
    return rng.binomial(7, 0.2, (reps, n)) / 7.0, 0.2  # per-problem rates over 7 methods


@pytest.mark.parametrize("kind", ["normal", "beta", "rate"])
def test_bca_mean_size_at_the_minimum_n(kind):
    """The expanded BCa bound (the one mean_evidence decides with) excludes the true mean at most
    ALPHA of the time per side at n = 50, the minimum n of a significance claim."""
    reps, n = 2000, 50
    x, mu = null_samples(kind, reps, n, np.random.default_rng(7))
    boot = stats._Bootstrap((x,), np.mean, vectorized=True, seed=1, resamples=999)
    low = np.mean(boot.bound(ALPHA, "greater") > mu)
    high = np.mean(boot.bound(ALPHA, "less") < mu)
    assert low <= mc_bound(ALPHA, reps) and high <= mc_bound(ALPHA, reps)
    assert low + high <= mc_bound(2 * ALPHA, reps)


def test_bca_mean_power_matches_the_t_test_calculation():
    """Normal data, effect 0.5 sd at n = 50: power as calculated for the one-sided t-test (statsmodels)."""
    from statsmodels.stats.power import TTestPower

    reps, n = 1000, 50
    x = np.random.default_rng(8).normal(0.5, 1.0, (reps, n))
    boot = stats._Bootstrap((x,), np.mean, vectorized=True, seed=2, resamples=999)
    power = np.mean(boot.bound(ALPHA, "greater") > 0.0)
    calc = TTestPower().power(effect_size=0.5, nobs=n, alpha=ALPHA, alternative="larger")
    assert abs(power - calc) < 3 * np.sqrt(calc * (1 - calc) / reps) + 0.02


def test_the_decision_is_the_bound():
    """mean_evidence's p_support < ALPHA is the same event as the bound the simulations calibrate."""
    rng = np.random.default_rng(9)
    for _ in range(5):
        x = rng.normal(0.3, 0.1, 50)
        ev = stats.mean_evidence(x, Prediction("m", "greater", 0.3))
        assert (ev.p_support < ALPHA) == (ev.lo > 0.3)


def test_permutation_spearman_size():
    reps, rng = 400, np.random.default_rng(10)
    pred = Prediction("assoc", "greater", 0.0)
    hits = sum(stats.permutation_spearman(rng.normal(size=(50, 7)), rng.normal(size=(50, 7)), pred,
                                         permutations=200, seed=i).p_support < ALPHA for i in range(reps))
    assert hits / reps <= mc_bound(ALPHA, reps)


def test_cochran_and_page_size_with_problem_heterogeneity():
    """Binary outcomes with per-problem ability and no condition effect (the null of both tests)."""
    reps, rng = 1000, np.random.default_rng(11)
    cochran = page = 0
    for _ in range(reps):
        ability = rng.uniform(0.1, 0.9, size=(60, 1))
        m = (rng.uniform(size=(60, 7)) < ability).astype(float)
        cochran += stats.cochran_q(m) < 2 * ALPHA
        page += stats.page_trend(m) < ALPHA
    assert cochran / reps <= mc_bound(2 * ALPHA, reps) and page / reps <= mc_bound(ALPHA, reps)


@pytest.mark.parametrize("correction", ["holm", "fdr_bh"])
def test_family_adjustment_controls_false_support(correction, monkeypatch):
    """Six family members all at their null (uniform p-values): the family-wise rate of any false
    "supported" is at most ALPHA (Holm; BH controls it too under the global null). statsmodels' Holm
    calls gc.collect() on every call, which inside a large pytest process dominates; it is stubbed here."""
    import gc

    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    reps, rng = 2000, np.random.default_rng(12)
    hyp = Hypothesis(Prediction("x", "greater", 0.0))
    any_supported = 0
    for _ in range(reps):
        members = {str(k): Outcome(float(p), float(1 - p), 100, raw=(float(p), float(1 - p)))
                   for k, p in enumerate(rng.uniform(size=6))}
        adjusted = adjust_family(members, correction)
        any_supported += any(decide(o, family_size=6).verdict == "supported" for o in adjusted.values())
    assert any_supported / reps <= mc_bound(ALPHA, reps)
    assert hyp.correction == "holm"


def test_permutation_spearman_power_matches_the_normal_calculation():
    """Under the null a per-problem Spearman over k = 7 positions has variance 1/(k-1), so the mean of n
    has power 1 - Phi(z_(1-alpha) - mu * sqrt(n * (k-1))) against a true mean mu (mu measured here on
    20,000 simulated problems)."""
    rng = np.random.default_rng(13)
    k, n, reps, scale = 7, 50, 300, 6.0

    def draw(m):
        x = rng.normal(size=(m, k))
        return x, x + rng.normal(scale=scale, size=(m, k))

    mu = stats.within_problem_rhos(*draw(20000)).mean()
    calc = 1 - sps.norm.cdf(sps.norm.ppf(1 - ALPHA) - mu * np.sqrt(n * (k - 1)))
    pred = Prediction("assoc", "greater", 0.0)
    power = np.mean([stats.permutation_spearman(*draw(n), pred, permutations=300, seed=i).p_support < ALPHA
                     for i in range(reps)])
    assert 0.2 < calc < 0.8
    assert abs(power - calc) < 3 * np.sqrt(calc * (1 - calc) / reps) + 0.03
