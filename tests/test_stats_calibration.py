"""Calibration of every test in ``codi_probe.stats``: under the null its rejection rate is at most the
nominal level (exactly computed where the test is exact, else within Monte-Carlo error), including
small n, rare discordance, skewed, heavy-tailed, tied and zero-inflated (KL-like) data; under a known
alternative its power matches the power calculation.

The exact unconditional Tango test and its TOST (``paired_binary_evidence``) have their exact sizes
computed over the nuisance in ``tests/test_paired_binary.py``. Each one-sided test decides at
``ALPHA`` = 0.025. Monte-Carlo bounds allow 3 standard errors of the simulated rate (a false failure
rate of about 0.1% per check).

The default run is fast (150-300 data sets per cell, 499 resamples). ``CODI_CALIBRATION_FULL=1``
runs 2000 data sets per cell (``CODI_CALIBRATION_REPS`` overrides) at the default resamples;
``python tests/test_stats_calibration.py [function ...]`` prints the table that docs/statistics.md
records."""

import functools
import os

import numpy as np
import pytest
from scipy import stats as sps

from codi_probe import extremes
from codi_probe import paired_binary as pb
from codi_probe import stats
from codi_probe.hypothesis import ALPHA, Hypothesis, Outcome, Prediction, adjust_family, decide

FULL = os.environ.get("CODI_CALIBRATION_FULL") == "1"
REPS = int(os.environ.get("CODI_CALIBRATION_REPS", 2000 if FULL else 200))
RESAMPLES = stats.DEFAULT_RESAMPLES if FULL else 499
SIZES = (24, 50, 100)


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


def _grid_mean() -> float:
    """The mean of beta(2, 5) rounded to the nearest quarter (a tied, discrete shape)."""
    edges, values = [0, 0.125, 0.375, 0.625, 0.875, 1], [0, 0.25, 0.5, 0.75, 1]
    return float(sum(v * np.diff(sps.beta(2, 5).cdf(edges[i:i + 2]))[0] for i, v in enumerate(values)))


def null_samples(kind: str, reps: int, n: int, rng) -> tuple[np.ndarray, float]:
    """``reps`` data sets of ``n`` per-problem values of shape ``kind``, and their true mean."""
    if kind == "normal":
        return rng.normal(0.3, 0.1, (reps, n)), 0.3
    if kind == "beta":  # skewed and bounded, like attention mass
        return rng.beta(0.5, 3.0, (reps, n)), 0.5 / 3.5
    if kind == "rate":  # per-problem rates over 7 methods (tied)
        return rng.binomial(7, 0.2, (reps, n)) / 7.0, 0.2
    if kind == "binary":  # a rare binary outcome (heavily tied, skewed)
        return rng.binomial(1, 0.1, (reps, n)).astype(float), 0.1
    if kind == "grid":  # values on a coarse grid
        return np.round(rng.beta(2, 5, (reps, n)) * 4) / 4, _grid_mean()
    if kind == "lognormal(0,1)":
        return rng.lognormal(0, 1, (reps, n)), float(np.exp(0.5))
    if kind == "lognormal(-1,2)":
        return rng.lognormal(-1, 2, (reps, n)), float(np.exp(1.0))
    if kind == "kl-like":  # half near 0, half lognormal(-1, 1.5): a per-problem KL
        near0 = rng.uniform(0, 1e-4, (reps, n))
        x = np.where(rng.uniform(size=(reps, n)) < 0.5, near0, rng.lognormal(-1, 1.5, (reps, n)))
        return x, 0.5 * 0.5e-4 + 0.5 * float(np.exp(-1 + 1.5 ** 2 / 2))
    if kind == "kl-bounded":  # zero-inflated and bounded: half near 0, half beta(0.2, 0.8) (attention mass)
        x = np.where(rng.uniform(size=(reps, n)) < 0.5, rng.uniform(0, 1e-3, (reps, n)), rng.beta(0.2, 0.8, (reps, n)))
        return x, 0.5 * 5e-4 + 0.5 * 0.2
    if kind == "t3":  # heavy-tailed, symmetric
        return rng.standard_t(3, (reps, n)), 0.0
    if kind == "pareto3":  # heavy right tail (shape 3: finite variance, infinite third moment)
        return rng.pareto(3, (reps, n)) + 1.0, 1.5
    raise ValueError(kind)


MEAN_SHAPES = ("normal", "beta", "rate", "binary", "grid", "kl-bounded", "t3", "lognormal(0,1)", "pareto3", "kl-like",
               "lognormal(-1,2)")

# The support a claim declares for each shape's values (``mean_evidence(..., support=...)``): bounded shapes
# (0, 1), the right-skewed unbounded ones (0, inf), the symmetric ones none. With (0, inf) declared the
# "less" side is impossible (stats._unbounded_side): no mean test from data alone holds its level there
# (without it the studentized test supported "less" 6-18% of the time on lognormal(0, 1), Pareto(3),
# KL-like and lognormal(-1, 2) data: docs/statistics.md), so every cell below is held to the nominal rate.
SUPPORT = {"normal": None, "t3": None, "beta": (0, 1), "rate": (0, 1), "binary": (0, 1), "grid": (0, 1),
           "kl-bounded": (0, 1), "lognormal(0,1)": (0, np.inf), "pareto3": (0, np.inf), "kl-like": (0, np.inf),
           "lognormal(-1,2)": (0, np.inf)}


def false_supported(evidence_of, kind: str, n: int, reps: int, seed: int = 0, declared: bool = True) -> tuple[float, float]:
    """At the null boundary (threshold = the true value), the share of ``reps`` data sets where a
    ``greater`` and a ``less`` prediction are supported: ``evidence_of(x, prediction, seed, support)`` on
    each, with the shape's :data:`SUPPORT` (``declared=False``: none, the tables' "undeclared" rows)."""
    x, mu = null_samples(kind, reps, n, np.random.default_rng(seed))
    support = SUPPORT[kind] if declared else None
    greater = less = 0
    for i, xi in enumerate(x):
        ev = evidence_of(xi, Prediction("m", "greater", mu), i, support)
        greater += ev.p_support < ALPHA
        less += ev.p_refute < ALPHA  # the one-sided "less" test at the same threshold
    return greater / reps, less / reps


def mean_of(x, pred, seed, support=None):
    return stats.mean_evidence(x, pred, seed=seed, resamples=RESAMPLES, support=support)


def paired_difference_of(x, pred, seed, support=None):
    """rows_evidence on a paired difference of two column means: column 0 = x + noise, column 1 = noise.
    The statistic is exactly ``mean(x)``, so its support is ``x``'s."""
    noise = np.random.default_rng(10_000 + seed).normal(0, 0.05, x.size)
    return stats.rows_evidence(np.stack([x + noise, noise], 1), lambda m: m[..., 0] - m[..., 1], pred, seed=seed,
                               resamples=RESAMPLES, support=support)


def ratio_of(x, pred, seed):
    """rows_evidence on a ratio of column means (a smooth statistic; FLOW-04-like): mean(x)/mean(c) with
    c an independent column of mean 1, at the true ratio mean(x)."""
    c = np.random.default_rng(20_000 + seed).gamma(4.0, 0.25, x.size)
    return stats.rows_evidence(np.stack([x, c], 1), lambda m: m[..., 0] / m[..., 1], pred, seed=seed,
                               resamples=RESAMPLES)


EVIDENCE = {"mean_evidence": mean_of, "rows_evidence (paired difference)": paired_difference_of}


@pytest.mark.parametrize("kind", MEAN_SHAPES)
@pytest.mark.parametrize("function", list(EVIDENCE))
def test_mean_tests_false_supported_at_the_null_boundary(function, kind):
    """Both directions, n = 24, 50, 100, each shape with the support a claim declares for it: the
    false-supported rate is at most ALPHA + 3 SE in every cell (skewed, heavy-tailed, tied, bounded
    zero-inflated and unbounded KL-like data included)."""
    if not FULL and function != "mean_evidence" and kind not in ("normal", "kl-like", "t3", "rate", "lognormal(0,1)"):
        pytest.skip("the fast run checks rows_evidence on five shapes; CODI_CALIBRATION_FULL=1 runs all")
    reps = REPS if FULL else (REPS if function == "mean_evidence" else 150)
    for n in SIZES if FULL or function != "mean_evidence" else (24, 100):
        greater, less = false_supported(EVIDENCE[function], kind, n, reps)
        assert greater <= mc_bound(ALPHA, reps), (kind, n, "greater", greater)
        assert less <= mc_bound(ALPHA, reps), (kind, n, "less", less)


def test_rows_evidence_ratio_of_means_is_calibrated():
    """A smooth nonlinear statistic (a ratio of means) through rows_evidence: both directions."""
    reps = REPS if FULL else 200
    for kind in ("normal", "rate", "t3") if not FULL else ("normal", "rate", "t3", "grid", "beta"):
        for n in (50, 100):
            x, mu = null_samples(kind, reps, n, np.random.default_rng(1))
            greater = less = 0
            for i, xi in enumerate(x):
                ev = ratio_of(xi, Prediction("r", "greater", mu), i)
                greater += ev.p_support < ALPHA
                less += ev.p_refute < ALPHA
            assert greater / reps <= mc_bound(ALPHA, reps) and less / reps <= mc_bound(ALPHA, reps), (kind, n)


def spearman_pairs(kind: str, reps: int, n: int, rng, rho: float = 0.5) -> tuple[np.ndarray, np.ndarray, float]:
    """Bivariate normal pairs with correlation ``rho``, transformed per ``kind`` (monotone transforms
    keep the population Spearman correlation ``6/pi · arcsin(rho/2)``; rounding makes ties)."""
    z = rng.normal(size=(reps, n, 2))
    x, y = z[..., 0], rho * z[..., 0] + np.sqrt(1 - rho ** 2) * z[..., 1]
    truth = 6 / np.pi * np.arcsin(rho / 2)
    if kind == "skewed":
        x, y = np.exp(x), np.exp(2 * y)
    elif kind == "heavy-tailed":
        x, y = sps.t(2).ppf(sps.norm.cdf(x)), sps.t(2).ppf(sps.norm.cdf(y))
    elif kind == "tied":  # the population value of rounded data is not the normal one: small jitter keeps it
        x, y = np.round(x, 1), np.round(y, 1)
    elif kind == "zero-inflated":  # half of each variable exactly 0 (a KL that is often 0), the rest lognormal
        x, y = np.where(x > 0, np.exp(x), 0.0), np.where(y > 0, np.exp(y), 0.0)
        big = np.random.default_rng(99).normal(size=(400_000, 2))  # ties change the population value: simulate it
        bx, by = big[:, 0], rho * big[:, 0] + np.sqrt(1 - rho ** 2) * big[:, 1]
        truth = float(_spearman(np.maximum(bx, 0), np.maximum(by, 0)))
    return x, y, truth


def _spearman(a, b, axis=-1):
    ra, rb = sps.rankdata(a, axis=axis), sps.rankdata(b, axis=axis)
    ra, rb = ra - ra.mean(axis, keepdims=True), rb - rb.mean(axis, keepdims=True)
    return (ra * rb).sum(axis) / np.sqrt((ra * ra).sum(axis) * (rb * rb).sum(axis))


@pytest.mark.parametrize("kind", ["normal", "tied", "zero-inflated"] + (["skewed", "heavy-tailed"] if FULL else []))
def test_bootstrap_evidence_spearman_at_the_null_boundary(kind):
    """bootstrap_evidence (BCa, expanded) on the smooth statistic it is used for (a correlation,
    INTERP-02): both directions at the true Spearman correlation. Skewed and heavy-tailed marginals
    are monotone transforms, which leave every Spearman correlation (and so the test) unchanged: the
    full run simulates them, the fast run checks the invariance (next test); tied and zero-inflated data
    differ. The bounds are computed for all data
    sets at once (bootstrap_evidence decides exactly when its bound excludes the threshold:
    tests/test_stats.py::test_bca_p_value_agrees_with_its_bound_under_strong_skew)."""
    reps = REPS if FULL else 200
    for n in (50,) if not FULL else SIZES:
        x, y, truth = spearman_pairs(kind, reps, n, np.random.default_rng(2))
        boot = stats._Bootstrap((x, y), _spearman, vectorized=True, seed=n, resamples=RESAMPLES)
        greater = np.mean(boot.bound(ALPHA, "greater") > truth)
        less = np.mean(boot.bound(ALPHA, "less") < truth)
        assert greater <= mc_bound(ALPHA, reps) and less <= mc_bound(ALPHA, reps), (n, greater, less)


@pytest.mark.parametrize("kind", ["skewed", "heavy-tailed"])
def test_bootstrap_evidence_spearman_is_the_same_test_on_skewed_and_heavy_tailed_marginals(kind):
    """Skewed and heavy-tailed marginals (monotone transforms of the normal ones) give bootstrap_evidence the
    same ranks, so the same evidence as the normal data sets the previous test holds to the bound."""
    fx = np.exp if kind == "skewed" else (lambda v: sps.t(2).ppf(sps.norm.cdf(v)))  # as spearman_pairs does
    fy = (lambda v: np.exp(2 * v)) if kind == "skewed" else fx
    rng = np.random.default_rng(2)
    for _ in range(3):
        x, y, truth = spearman_pairs("normal", 1, 50, rng)
        pred = Prediction("rho", "greater", truth)
        a = stats.bootstrap_evidence((x[0], y[0]), _spearman, pred, vectorized=True, resamples=RESAMPLES)
        b = stats.bootstrap_evidence((fx(x[0]), fy(y[0])), _spearman, pred, vectorized=True, resamples=RESAMPLES)
        assert (a.p_support, a.p_refute) == pytest.approx((b.p_support, b.p_refute), abs=1e-9)
        assert a.lo == pytest.approx(b.lo, abs=1e-12)


def test_a_heavy_right_tail_less_claim_is_never_supported_once_its_support_is_declared():
    """The defect: "mean < true mean" on KL-like data at n = 100 is supported about 8% of the time by the
    studentized mean test and about 11% by the BCa test before it (issue 28), nominal 2.5%. Declaring the
    support (0, inf) (a KL) makes that side impossible (stats._unbounded_side), and both directions stay at
    most ALPHA + 3 SE. With the support ignored (the defect put back) the same data sets fail the bound."""
    reps, n = max(REPS, 300), 100
    x, mu = null_samples("kl-like", reps, n, np.random.default_rng(3))
    pred = Prediction("m", "less", mu)
    undeclared = np.mean([mean_of(xi, pred, i).p_support < ALPHA for i, xi in enumerate(x)])
    declared = [mean_of(xi, pred, i, (0, np.inf)) for i, xi in enumerate(x)]
    assert undeclared > mc_bound(ALPHA, reps)  # the reproduction: the bound is what the support buys
    assert np.mean([ev.p_support < ALPHA for ev in declared]) <= mc_bound(ALPHA, reps)
    assert all(ev.hi == np.inf and "share of problems" in ev.reason for ev in declared)


def test_mean_power_matches_the_t_test_calculation_and_the_recorded_power():
    """Normal data, effect 0.5 sd at n = 50: the studentized test's power is as calculated for the
    one-sided t-test (statsmodels), and so is the power each evidence records (its default effect)."""
    from statsmodels.stats.power import TTestPower

    reps, n = 400, 50
    x = np.random.default_rng(8).normal(0.5, 1.0, (reps, n))
    evs = [stats.mean_evidence(xi, Prediction("m", "greater", 0.0), seed=i, resamples=RESAMPLES)
           for i, xi in enumerate(x)]
    power = np.mean([ev.p_support < ALPHA for ev in evs])
    calc = TTestPower().power(effect_size=0.5, nobs=n, alpha=ALPHA, alternative="larger")
    assert abs(power - calc) < 3 * np.sqrt(calc * (1 - calc) / reps) + 0.02
    recorded = np.median([ev.power for ev in evs])
    assert abs(recorded - calc) < 0.05


def test_the_decision_is_the_bound():
    """mean_evidence's p_support < ALPHA is the same event as the reported bound excluding the threshold."""
    rng = np.random.default_rng(9)
    for _ in range(20):
        x = rng.normal(0.3, 0.1, 50)
        ev = stats.mean_evidence(x, Prediction("m", "greater", 0.3))
        assert (ev.p_support < ALPHA) == (ev.lo > 0.3)
        assert (ev.p_refute < ALPHA) == (ev.hi < 0.3)


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


def table(functions=tuple(EVIDENCE)) -> str:
    """The docs/statistics.md table: false supported at the null boundary, per function, shape and n, with
    each shape's declared support (and, for the shapes with one, without it)."""
    rows = ["| function | shape | support | n | greater | less | bound (ALPHA + 3 SE) |",
            "|---|---|---|---|---|---|---|"]
    for function in functions:
        evidence_of = EVIDENCE[function]
        for kind in MEAN_SHAPES:
            for declared in (True, False) if SUPPORT[kind] is not None else (True,):
                for n in SIZES:
                    g, l = false_supported(evidence_of, kind, n, REPS, declared=declared)
                    rows.append(f"| {function} | {kind} | {SUPPORT[kind] if declared else 'undeclared'} | {n} | "
                                f"{g:.3f} | {l:.3f} | {mc_bound(ALPHA, REPS):.3f} |")
                    print(rows[-1], flush=True)
    return "\n".join(rows)


def _against_the_claim(kind: str, n: int, rng) -> np.ndarray:
    """``n`` per-problem values of mean 0 whose tail points against a "greater" claim (long left tail) or is
    heavy or zero-inflated: ``skewed`` (minus a centred lognormal(0, 1)), ``heavy`` (t, 3 df),
    ``zero-inflated`` (minus centred bounded KL-like values, ``kl-bounded``: the pairs of rates these functions
    test are bounded; an unbounded heavy tail is a claim that must declare its support, :func:`mean_evidence`)."""
    if kind == "skewed":
        return -(rng.lognormal(0, 1, n) - np.exp(0.5))
    if kind == "heavy":
        return rng.standard_t(3, n)
    x, mu = null_samples("kl-bounded", 1, n, rng)
    return -(x[0] - mu)


EXTREMES = {"every_pair": lambda r: extremes.every_pair_evidence(r, 0, Prediction("gap", "greater", 0.0)),
            "some_pair": lambda r: extremes.some_pair_evidence(r, 0, Prediction("gap", "greater", 0.0)),
            "spread": lambda r: extremes.spread_evidence(r, Prediction("spread", "greater", 0.0))}


@pytest.mark.parametrize("kind", ["skewed", "heavy", "zero-inflated"])
@pytest.mark.parametrize("function", list(EXTREMES))
def test_extremes_false_supported_at_the_null_boundary(function, kind, monkeypatch):
    """codi_probe.extremes (pairwise tests of a largest position; each non-binary pair is the mean test of the
    per-problem differences) at the least favourable null, n = 100: column 0 carries the shape (against the
    claim), every other column equals its mean with small normal noise (every pair at its boundary; for the
    intersection-union the pairs' rate is at most one pair's). At most ALPHA + 3 SE."""
    from functools import partial

    monkeypatch.setattr(stats, "mean_evidence", partial(stats.mean_evidence, resamples=RESAMPLES))
    reps, n = (REPS if FULL else 150), 100
    rng = np.random.default_rng(12)
    hits = 0
    for _ in range(reps):
        rows = np.stack([_against_the_claim(kind, n, rng), *rng.normal(0, 0.05, (2, n))], 1)
        hits += EXTREMES[function](rows).p_support < ALPHA
    assert hits / reps <= mc_bound(ALPHA, reps), (function, kind, hits / reps)


CENTROID_SHAPES = ("normal", "right-skewed", "left-skewed", "heavy", "zero-inflated-right", "zero-inflated-left")
# (n, signal): CI tests the hardest place measured (n = 30, the minimum; high signal-to-noise); full mode all.
CENTROID_CASES = ([(n, sig) for n in (30, 50, 100) for sig in ("low", "high")] if FULL else [(30, "high")])


@functools.lru_cache(maxsize=None)
def _shape_sd(kind: str) -> float:
    """The sd of :func:`_against_the_claim`'s ``kind`` (estimated once, from 200 000 draws)."""
    return float(np.std(_against_the_claim(kind, 200_000, np.random.default_rng(0))))


def _centroid_noise(kind: str, n: int, d: int, rng) -> np.ndarray:
    """``[n, d]`` noise of mean 0 and unit sd per dimension: normal, centred lognormal(0, 1) with its long tail to
    the right or left, t (3 df), or centred bounded KL-like values (zero-inflated) with their tail either way."""
    if kind == "normal":
        return rng.standard_normal((n, d))
    base = {"right-skewed": "skewed", "left-skewed": "skewed", "heavy": "heavy"}.get(kind, "zero-inflated")
    x = _against_the_claim(base, n * d, rng).reshape(n, d) / _shape_sd(base)  # "skewed" / "zero-inflated": long LEFT tail
    return -x if kind in ("right-skewed", "zero-inflated-right") else x


@pytest.mark.parametrize("n, signal", CENTROID_CASES)
@pytest.mark.parametrize("kind", CENTROID_SHAPES)
def test_centroid_cosine_false_supported_at_the_null_boundary(kind, n, signal):
    """experiments.probes.centroid_cosine_evidence (PROBE-03's "cosine of two tasks' centroids < 0.3": the
    deflated cosine, studentized bootstrap over problems, p-values doubled) at its null boundary: population
    centroids at cosine exactly 0.3 (D = 8) with mean-0 noise of unit sd per dimension of every shape in
    _centroid_noise (both skew orientations), unit centroid norms ("low") or ``|μ|² = 25 tr Σ / n`` ("high").
    BOTH sides: false supported (p_support) and false refuted (p_refute) at most ALPHA + 3 SE each. Below
    n = 30 the evidence decides nothing (tests/experiments/test_probes.py). Without the doubling (issue 28's
    review) right-skewed noise was falsely supported 5.6% and left-skewed falsely refuted 5.1% at n = 30, high
    signal (1000 data sets; 5.8% / 6.5% at n = 10 / 20); the skewed shapes get 500 data sets here so that
    this fails on it. The plug-in cosine's BCa test (before issue 28) failed on t(3) noise (4.8% at 460)."""
    from codi_probe.experiments.probes import centroid_cosine_evidence

    skewed, lognormal = kind not in ("normal", "heavy"), kind.endswith("-skewed")
    reps, d, t = (REPS if FULL else (500 if lognormal else 200 if skewed else 100)), 8, 0.3
    rng = np.random.default_rng(13)
    norm = 1.0 if signal == "low" else np.sqrt(25 * d / n)
    mu_a, mu_b = norm * np.eye(d)[0], norm * (t * np.eye(d)[0] + np.sqrt(1 - t * t) * np.eye(d)[1])
    pred = Prediction("cosine of the centroids", "less", t)
    supported = refuted = 0
    for r in range(reps):
        ev = centroid_cosine_evidence(mu_a + _centroid_noise(kind, n, d, rng), mu_b + _centroid_noise(kind, n, d, rng),
                                      pred, seed=r, resamples=RESAMPLES if FULL else 199)
        supported, refuted = supported + (ev.p_support < ALPHA), refuted + (ev.p_refute < ALPHA)
    assert supported / reps <= mc_bound(ALPHA, reps), ("false supported", kind, n, signal, supported / reps)
    assert refuted / reps <= mc_bound(ALPHA, reps), ("false refuted", kind, n, signal, refuted / reps)


if __name__ == "__main__":  # CODI_CALIBRATION_FULL=1 python tests/test_stats_calibration.py [function ...]
    import sys

    table(tuple(sys.argv[1:]) or tuple(EVIDENCE))
