"""Problem-level statistics, from SciPy / statsmodels: each test checks one prediction against the
claim's own threshold and returns :class:`~codi_probe.hypothesis.Evidence` for the shared verdict rule.

The unit is always the problem: every function takes one value (or one row of per-position values)
per problem, never pooled problem×token rows (F-05, F-06).

Which test for which statistic:

- a share of problems (``k`` of ``n``): the exact binomial test at the threshold, with the
  Clopper-Pearson interval (its inversion, so interval and verdict agree): :func:`proportion_evidence`;
- a paired accuracy change (one binary outcome per problem, twice): exact McNemar (binomial on the
  discordant problems) when the threshold is 0, else the exact unconditional Tango score test, with
  the exact Tango interval (:mod:`codi_probe.paired_binary`): :func:`paired_binary_evidence`;
- the mean of a continuous per-problem value, or any statistic of paired per-problem rows: the BCa
  bootstrap (``scipy.stats.bootstrap(method="BCa")``) at the *expanded* level (Hesterberg 2015: the
  normal quantile replaced by ``t_(n-1) · sqrt(n/(n-1))``, which corrects the bootstrap's known
  narrowness at small n; plain BCa rejects 5.6-6% at a nominal 5% for n = 50-100 in the calibration
  simulations, the expanded one 5.1-5.4%). The p-value against the threshold inverts the interval
  by bisection on the level over one fixed bootstrap distribution: :func:`mean_evidence`,
  :func:`bootstrap_evidence`;
- an association within problems: a permutation test that shuffles positions within each problem
  (ATT-02): :func:`permutation_spearman`.

``tests/test_stats_calibration.py`` simulates every test under its null (rejection rate at most the
nominal level, within Monte-Carlo error) and under a known alternative (power as calculated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats

from .hypothesis import ALPHA, Evidence, Prediction

DEFAULT_RESAMPLES = 2000
LEVEL = 1 - 2 * ALPHA  # the two-sided level of every reported interval (0.95)
_BISECTIONS = 18  # p-values by interval inversion, to 2^-18 ≈ 4e-6


@dataclass(frozen=True)
class Estimate:
    """A descriptive statistic with its interval (tables and plots; verdicts use :class:`Evidence`)."""

    value: float
    lo: float
    hi: float
    n: int
    level: float = LEVEL

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def from_one_sided(prediction: Prediction, value: float, lo: float, hi: float, n: int,
             p_at: Callable[[float, str], float], method: str, level: float = LEVEL) -> Evidence:
    """Evidence for ``prediction`` from a one-sided test ``p_at(theta0, alternative)``: ``greater``
    tests ``H0: θ ≤ theta0``, ``less`` tests ``H0: θ ≥ theta0``.

    ``greater`` / ``less`` predictions: ``p_support`` is the test away from the threshold in the
    predicted direction and ``p_refute`` the opposite one. ``equivalent`` (margin ``m``):
    ``p_support`` is the TOST p (the larger of ``θ > −m`` and ``θ < m``); ``p_refute`` rejects
    "within the margin" when either ``θ < −m`` or ``θ > m`` (Bonferroni over the two)."""
    t = float(prediction.threshold)
    if prediction.direction == "greater":
        ps, pr = p_at(t, "greater"), p_at(t, "less")
    elif prediction.direction == "less":
        ps, pr = p_at(t, "less"), p_at(t, "greater")
    else:
        ps = max(p_at(-t, "greater"), p_at(t, "less"))
        pr = min(1.0, 2 * min(p_at(-t, "less"), p_at(t, "greater")))
    return Evidence(prediction.statistic, float(value), float(lo), float(hi), int(n), float(ps), float(pr),
                    method, level)


# ---- shares of problems ---------------------------------------------------------------------------

def _binom_p(k: int, n: int, theta0: float, alternative: str) -> float:
    if theta0 <= 0.0:
        return (0.0 if k > 0 else 1.0) if alternative == "greater" else 1.0
    if theta0 >= 1.0:
        return (0.0 if k < n else 1.0) if alternative == "less" else 1.0
    return float(stats.binomtest(int(k), int(n), theta0, alternative=alternative).pvalue)


def proportion(k: int, n: int, *, level: float = LEVEL) -> Estimate:
    """A share of problems with its exact (Clopper-Pearson) interval: ``binomtest(...).proportion_ci``."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return Estimate(k / n, float(ci.low), float(ci.high), int(n), level)


def proportion_evidence(k: int, n: int, prediction: Prediction) -> Evidence:
    """``k`` of ``n`` problems against the prediction's threshold: the exact binomial test."""
    est = proportion(k, n)
    return from_one_sided(prediction, est.value, est.lo, est.hi, n, lambda t, alt: _binom_p(k, n, t, alt),
                    "exact binomial test, Clopper-Pearson interval")


# ---- paired binary outcomes -----------------------------------------------------------------------

def mcnemar_exact(before: Sequence[bool], after: Sequence[bool], alternative: str = "two-sided") -> float:
    """Exact McNemar p-value of "no change": the binomial test of the gained against the lost problems."""
    from .paired_binary import paired_counts

    _, gained, lost = paired_counts(before, after)
    if lost + gained == 0:
        return 1.0
    return float(stats.binomtest(gained, lost + gained, 0.5, alternative=alternative).pvalue)


def paired_binary_evidence(before: Sequence[bool], after: Sequence[bool], prediction: Prediction) -> Evidence:
    """The accuracy change ``mean(after) − mean(before)`` over problems (a fraction: −0.2 = a 20 pp
    drop). Exact McNemar at threshold 0; elsewhere the exact unconditional Tango score test."""
    from . import paired_binary as pb

    n, g, l = pb.paired_counts(before, after)
    diff = pb.paired_binary_difference(before, after, level=LEVEL)

    def p_at(t: float, alternative: str) -> float:
        if t == 0.0:
            return mcnemar_exact(before, after, alternative)
        return pb.one_sided_p(g, l, n, t, alternative)

    return from_one_sided(prediction, diff.value, diff.lo, diff.hi, n, p_at,
                    "exact McNemar (threshold 0) / exact unconditional Tango score test, exact Tango interval")


# ---- continuous per-problem values: the BCa bootstrap -------------------------------------------

def expanded_level(alpha: float, n: int) -> float:
    """The one-sided bootstrap level used for a one-sided test at ``alpha`` with ``n`` problems: the
    normal quantile of the level is ``t_(n-1)(1 − alpha) · sqrt(n / (n − 1))`` (expanded interval)."""
    z = stats.t.ppf(1.0 - alpha, max(n - 1, 1)) * np.sqrt(n / max(n - 1, 1))
    return float(np.clip(stats.norm.cdf(z), 1e-12, 1 - 1e-12))


class _Bootstrap:
    """One BCa bootstrap distribution of a statistic, and its one-sided bounds at any level (the
    bounds reuse the distribution: ``scipy.stats.bootstrap(n_resamples=0, bootstrap_result=...)``)."""

    def __init__(self, samples: tuple[np.ndarray, ...], statistic: Callable, *, vectorized: bool, seed: int,
                 resamples: int):
        """``samples``: arrays with problems along the last axis (leading axes: independent data sets,
        for the calibration simulations; then ``statistic`` must be vectorized)."""
        self.samples, self.statistic, self.vectorized = samples, statistic, vectorized
        self.n = samples[0].shape[-1]
        self.method = "BCa"
        self.base = stats.bootstrap(samples, statistic, n_resamples=resamples, vectorized=vectorized,
                                    paired=len(samples) > 1, method="percentile", confidence_level=LEVEL,
                                    axis=-1, rng=_rng(seed))
        self.lo, self.hi = self.bound(ALPHA, "greater"), self.bound(ALPHA, "less")  # the reported 95% interval
        if not (np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi))):
            self.method = "percentile"  # BCa's acceleration is undefined (a jackknife without spread)
            self.lo, self.hi = self.bound(ALPHA, "greater"), self.bound(ALPHA, "less")

    def bound(self, alpha: float, alternative: str):
        """The one-sided ``1 − alpha`` bound (expanded): lower for ``greater``, upper for ``less``."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.bootstrap(self.samples, self.statistic, n_resamples=0, bootstrap_result=self.base,
                                  vectorized=self.vectorized, paired=len(self.samples) > 1, method=self.method,
                                  confidence_level=expanded_level(alpha, self.n), alternative=alternative, axis=-1)
        ci = res.confidence_interval
        out = ci.low if alternative == "greater" else ci.high
        return float(out) if np.ndim(out) == 0 else np.asarray(out)

    def p(self, theta0: float, alternative: str) -> float:
        """The smallest one-sided level at which the bound excludes ``theta0`` (bisection on alpha)."""
        excludes = ((lambda a: self.bound(a, "greater") > theta0) if alternative == "greater"
                    else (lambda a: self.bound(a, "less") < theta0))
        lo, hi = 0.0, 1.0
        if not excludes(1.0 - 1e-9):
            return 1.0
        for _ in range(_BISECTIONS):
            mid = (lo + hi) / 2
            if excludes(mid):
                hi = mid
            else:
                lo = mid
        return hi


def _no_spread(x: np.ndarray) -> bool:
    """Every problem has the same value (to round-off): a bootstrap has nothing to resample."""
    return x.size < 2 or bool(np.ptp(x) <= 1e-12 * max(1.0, abs(float(x.flat[0]))))


def _sign_evidence(prediction: Prediction, value: float, n: int) -> Evidence:
    """Evidence when all ``n`` problems give ``value``: the exact sign test (binomial on the signs of
    ``value − theta0``), so p is ``0.5^n`` on the value's side and 1 on the other, never 0."""

    def p_at(theta0: float, alternative: str) -> float:
        if value == theta0:
            return 1.0
        side = "greater" if value > theta0 else "less"
        return float(stats.binomtest(n if side == "greater" else 0, n, 0.5, alternative=alternative).pvalue)

    return from_one_sided(prediction, value, value, value, n, p_at, "exact sign test (no spread across problems)")


def bootstrap_evidence(samples: Sequence[np.ndarray], statistic: Callable, prediction: Prediction, *,
                       vectorized: bool = False, seed: int = 0, resamples: int = DEFAULT_RESAMPLES) -> Evidence:
    """Any statistic of per-problem rows (``samples``: arrays paired along axis 0) against the
    threshold: the expanded BCa bootstrap over problems."""
    samples = tuple(np.asarray(s, dtype=float) for s in samples)
    n = len(samples[0])
    if n < 2:
        raise ValueError("a bootstrap needs at least 2 problems")
    value = float(statistic(*samples, axis=-1) if vectorized else statistic(*samples))
    boot = _Bootstrap(samples, statistic, vectorized=vectorized, seed=seed, resamples=resamples)
    lo, hi = boot.lo, boot.hi
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{prediction.statistic}: the BCa bootstrap is degenerate for these data")
    return from_one_sided(prediction, value, lo, hi, n, boot.p, f"{boot.method} bootstrap over problems "
                          "(expanded level)")


def rows_evidence(rows: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], prediction: Prediction, *,
                  seed: int = 0, resamples: int = DEFAULT_RESAMPLES) -> Evidence:
    """A function ``fn`` of the column means of per-problem rows ``rows[n, k]`` (e.g. position 5's
    failure rate minus the largest other one) against the threshold, bootstrapping problems (whole
    rows). ``fn`` maps means ``[..., k]`` to values ``[...]``. Rows that are all equal carry no
    spread: the value then has the sign test's p-value."""
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2 or rows.shape[0] < 2:
        raise ValueError(f"rows must be [n >= 2, k], got shape {rows.shape}")
    n = rows.shape[0]
    if np.all(rows == rows[:1]):
        return _sign_evidence(prediction, float(fn(rows[0])), n)

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        return fn(rows[np.asarray(idx).astype(int)].mean(axis=-2))

    return bootstrap_evidence((np.arange(n),), statistic, prediction, vectorized=True, seed=seed,
                              resamples=resamples)


def mean_evidence(values: Sequence[float], prediction: Prediction, *, seed: int = 0,
                  resamples: int = DEFAULT_RESAMPLES) -> Evidence:
    """The mean of one value per problem against the threshold (expanded BCa bootstrap). Data
    without spread (every problem the same value) fall back to the exact sign test."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError("a mean test needs at least 2 problems")
    if _no_spread(x):
        return _sign_evidence(prediction, float(x.mean()), x.size)
    return bootstrap_evidence((x,), np.mean, prediction, vectorized=True, seed=seed, resamples=resamples)


def bootstrap_mean(values: Sequence[float], *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES) -> Estimate:
    """Mean over problems with its expanded BCa 95% interval (the interval :func:`mean_evidence` reports)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no problems to average")
    if _no_spread(x):
        return Estimate(float(x.mean()), float(x.mean()), float(x.mean()), int(x.size))
    boot = _Bootstrap((x,), np.mean, vectorized=True, seed=seed, resamples=resamples)
    return Estimate(float(x.mean()), boot.lo, boot.hi, int(x.size))


# ---- within-problem association -------------------------------------------------------------------

def within_problem_rhos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The Spearman correlation between ``x[i, :]`` and ``y[i, :]`` (positions) for each problem ``i``;
    problems where either row is constant carry no within-problem information and are dropped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = (x.std(1) > 0) & (y.std(1) > 0)
    return _rhos(stats.rankdata(x[keep], axis=1), stats.rankdata(y[keep], axis=1))


def permutation_spearman(x: np.ndarray, y: np.ndarray, prediction: Prediction, *, permutations: int = 5000,
                         seed: int = 0) -> Evidence:
    """Mean within-problem Spearman against 0 by permutation: positions are shuffled within each
    problem independently (scipy's ``permutation_test`` permutes one axis jointly, so the per-problem
    shuffle is done here). Only a threshold of 0 (no association) can be tested this way."""
    if prediction.direction == "equivalent" or prediction.threshold != 0:
        raise ValueError("a permutation test of association tests a threshold of 0 in one direction")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = (x.std(1) > 0) & (y.std(1) > 0)
    rx, ry = stats.rankdata(x[keep], axis=1), stats.rankdata(y[keep], axis=1)
    n = rx.shape[0]
    if n < 2:
        return Evidence(prediction.statistic, float("nan"), float("nan"), float("nan"), n, 1.0, 1.0,
                        "within-problem permutation test (too few problems with spread)")
    rhos = _rhos(rx, ry)
    observed = float(rhos.mean())
    shuffled = _rng(seed).permuted(np.broadcast_to(ry, (permutations, *ry.shape)).copy(), axis=-1)
    null = _rhos(rx[None], shuffled).mean(-1)

    def p_at(t: float, alternative: str) -> float:
        hits = np.sum(null >= observed - 1e-12) if alternative == "greater" else np.sum(null <= observed + 1e-12)
        return float((hits + 1) / (permutations + 1))

    ci = bootstrap_mean(rhos, seed=seed)
    return from_one_sided(prediction, observed, ci.lo, ci.hi, n, p_at, "within-problem permutation test")


def _rhos(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Pearson correlation of ranks along the last axis (= Spearman per problem)."""
    a = rx - rx.mean(-1, keepdims=True)
    b = ry - ry.mean(-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


# ---- several related outcomes ---------------------------------------------------------------------

def cochran_q(matrix: np.ndarray) -> float:
    """Cochran's Q p-value for k related binary outcomes (rows = problems, columns = conditions)."""
    from statsmodels.stats.contingency_tables import cochrans_q

    m = np.asarray(matrix, dtype=int)
    if np.all(m == m[:, :1]):
        return 1.0
    return float(cochrans_q(m).pvalue)


def _page_rows(matrix: np.ndarray) -> np.ndarray:
    """The rows with spread: a constant row carries no ranking information."""
    m = np.asarray(matrix, dtype=float)
    return m[m.std(1) > 0]


def page_trend(matrix: np.ndarray) -> float:
    """Page's L test p-value that the columns (conditions in their predicted order) increase within
    problems (``scipy.stats.page_trend_test``, asymptotic: binary outcomes tie). Rows without spread
    are dropped; 1.0 when fewer than 2 are left."""
    m = _page_rows(matrix)
    if m.shape[0] < 2:
        return 1.0
    return float(stats.page_trend_test(m, method="asymptotic").pvalue)


def page_evidence(matrix: np.ndarray, prediction: Prediction) -> Evidence:
    """A trend over the columns against 0 (``prediction``: ``greater`` = increasing): Page's L is the
    value (no interval), the p-values come from the columns in their order and reversed."""
    m = np.asarray(matrix, dtype=float)
    rows = _page_rows(m)
    value = float(stats.page_trend_test(rows, method="asymptotic").statistic) if len(rows) > 1 else float("nan")
    return from_one_sided(prediction, value, float("nan"), float("nan"), m.shape[0],
                          lambda t, alt: page_trend(m if alt == "greater" else m[:, ::-1]),
                          "Page's L trend test (asymptotic)")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests``, via the cached
    :func:`~codi_probe.hypothesis.adjusted_p_values`)."""
    from .hypothesis import adjusted_p_values

    return list(adjusted_p_values(tuple(float(p) for p in p_values), "holm"))
