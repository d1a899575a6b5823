"""Problem-level statistics, from SciPy / statsmodels: each test checks one prediction against the
claim's own threshold and returns :class:`~codi_probe.hypothesis.Evidence` for the shared verdict rule.

The unit is always the problem: every function takes one value (or one row of per-position values)
per problem, never pooled problem×token rows (F-05, F-06).

Which test for which statistic:

- a share of problems (``k`` of ``n``): the exact binomial test at the threshold, with the
  Clopper-Pearson interval (its inversion, so interval and verdict agree): :func:`proportion_evidence`;
- a paired accuracy change (one binary outcome per problem, twice): the exact unconditional Tango
  score test at every threshold, 0 included, with the exact Tango interval, its inversion
  (:mod:`codi_probe.paired_binary`): :func:`paired_binary_evidence`. (Exact McNemar, the conditional
  test at 0, is kept as :func:`mcnemar_exact` for reference: deciding with it while showing Tango's
  interval let the two disagree.)
- the mean of a continuous per-problem value, or a smooth function of column means of per-problem
  rows: the studentized bootstrap (bootstrap-t, jackknife standard error) over problems, joined with
  Student's t test of the same studentized statistic (the larger p-value: the bootstrap corrects for
  skew, Student's t for heavy tails). Its interval is the exact inversion of that p-value (the outer
  of the two bounds; no bisection): :func:`mean_evidence`, :func:`rows_evidence`. It replaced the BCa bootstrap
  there, which was anti-conservative for "less" claims on right-skewed data. The claim declares the
  support of its values (``support=(lo, hi)``): on a bounded support (attention, rates, differences
  of rates) the test holds its level on skewed, U-shaped and zero-inflated data; on a support open to
  the right (a KL) "mean < t" cannot be shown from data at all (no mean test holds its level on heavy
  right tails: docs/statistics.md), so that side decides nothing and such a claim is a share of
  problems or a quantile;
- any other smooth statistic of paired per-problem samples (e.g. a correlation): the BCa bootstrap
  (``scipy.stats.bootstrap(method="BCa")``) at the *expanded* level (Hesterberg 2015: the normal
  quantile replaced by ``t_(n-1) · sqrt(n/(n-1))``); its p-value inverts the interval by bisection
  over levels in (0, 0.5]: :func:`bootstrap_evidence`;
- an association within problems: a permutation test that shuffles positions within each problem
  (ATT-02): :func:`permutation_spearman`.

Degenerate data (one rule for every function here): a problem with a non-finite value (NaN, ±inf)
is **excluded and counted** (``Evidence.excluded``, with a note in ``Evidence.reason``), and the
claim's minimum n is checked on the problems left (:func:`~codi_probe.hypothesis.combine`). Fewer
than 2 problems left (0 included), a statistic that is not finite (a zero denominator, e.g. a gap
that never differs) or a degenerate bootstrap give evidence that decides nothing (both p-values 1)
with the reason, never an exception. So does a statistic without spread (every problem equal, or a
statistic that does not vary when a problem is left out or resampled): the sign test it once fell
back to tests the median, not the mean (24 problems all 0 from a rare binary outcome of mean 0.1
happen 8% of the time, and "mean < 0.1" got p = 0.5^24), and a resampled statistic that never
varies got p = 2^-18. The studentized p-value goes below ``1 / (resamples + 1)`` only when the
observed statistic lies beyond every resample, by the normal tail of the resamples' own spread (and
never below Student's t).

Power: each deciding function records ``Evidence.power``, the power of its test at the threshold
against ``Evidence.effect`` (the prediction's ``effect``, or a default: half a standard deviation
over problems for means and bootstrap statistics, 15 pp for shares, 10 pp for paired accuracy
changes, 0.2 for a mean within-problem Spearman). Means and bootstraps use the normal approximation
with the estimated standard error, shares the exact binomial, paired changes Connor's normal
formula at the observed discordance (optimistic for the exact tests: docs/statistics.md).

``tests/test_stats_calibration.py`` simulates every test under its null (rejection rate at most the
nominal level, within Monte-Carlo error) on normal, skewed, heavy-tailed, tied and zero-inflated
data, and under a known alternative (power as calculated).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
from scipy import stats

from .hypothesis import ALPHA, Evidence, Prediction

DEFAULT_RESAMPLES = 2000
LEVEL = 1 - 2 * ALPHA  # the two-sided level of every reported interval (0.95)
_BISECTIONS = 18  # BCa p-values by interval inversion, to 2^-19 ≈ 2e-6


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
    """A share of problems with its exact (Clopper-Pearson) interval: ``binomtest(...).proportion_ci``.
    No problems (``n = 0``): the share is NaN and the interval all of [0, 1]."""
    if n <= 0:
        return Estimate(float("nan"), 0.0, 1.0, 0, level)
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="exact")
    return Estimate(k / n, float(ci.low), float(ci.high), int(n), level)


def _binomial_power(n: int, theta0: float, prediction: Prediction, effect: float) -> float:
    """Exact power of the one-sided binomial test at ``ALPHA`` when the true share lies ``effect``
    beyond ``theta0`` (clipped to [0, 1]); ``equivalent`` has no power here (NaN)."""
    if prediction.direction == "equivalent":
        return float("nan")
    k = np.arange(n + 1)
    if prediction.direction == "greater":
        reject = stats.binom.sf(k - 1, n, theta0) < ALPHA if 0 < theta0 < 1 else k > n * theta0
        theta1 = min(1.0, theta0 + effect)
    else:
        reject = stats.binom.cdf(k, n, theta0) < ALPHA if 0 < theta0 < 1 else k < n * theta0
        theta1 = max(0.0, theta0 - effect)
    return float(stats.binom.pmf(k[reject], n, theta1).sum())


DEFAULT_SHARE_EFFECT = 0.15  # a share: the power is at the threshold ± 15 percentage points


def proportion_evidence(k: int, n: int, prediction: Prediction) -> Evidence:
    """``k`` of ``n`` problems against the prediction's threshold: the exact binomial test, with its exact
    power at ``prediction.effect`` (default :data:`DEFAULT_SHARE_EFFECT`). ``n = 0`` gives evidence that
    decides nothing (the claim's minimum n makes it ``inconclusive``)."""
    if n <= 0:
        return _undecided(prediction, 0, "no problems to count")
    est = proportion(k, n)
    ev = from_one_sided(prediction, est.value, est.lo, est.hi, n, lambda t, alt: _binom_p(k, n, t, alt),
                        "exact binomial test, Clopper-Pearson interval")
    effect = float(prediction.effect) if prediction.effect is not None else DEFAULT_SHARE_EFFECT
    return replace(ev, power=_binomial_power(n, float(prediction.threshold), prediction, effect), effect=effect)


# ---- paired binary outcomes -----------------------------------------------------------------------

def mcnemar_exact(before: Sequence[bool], after: Sequence[bool], alternative: str = "two-sided") -> float:
    """Exact McNemar p-value of "no change": the binomial test of the gained against the lost problems
    (a reference; :func:`paired_binary_evidence` decides with the exact Tango test at every threshold)."""
    from .paired_binary import paired_counts

    _, gained, lost = paired_counts(before, after)
    if lost + gained == 0:
        return 1.0
    return float(stats.binomtest(gained, lost + gained, 0.5, alternative=alternative).pvalue)


DEFAULT_PAIRED_EFFECT = 0.10  # a paired accuracy change: the power is at the threshold ± 10 pp


def paired_power(n: int, discordance: float, prediction: Prediction, effect: float) -> float:
    """Normal-approximation power (Connor 1987) of a paired-proportion test at ``ALPHA`` with ``n``
    problems and a discordance rate ``discordance`` (``q01 + q10``), when the true difference lies
    ``effect`` beyond the threshold (``equivalent``: TOST at a true difference of 0). Textbook and
    optimistic for the exact tests at small n (docs/statistics.md)."""
    z = stats.norm.ppf(1 - ALPHA)
    if prediction.direction == "equivalent":
        psi = max(discordance, 1e-12)
        return float(max(0.0, 2 * stats.norm.cdf(prediction.threshold * np.sqrt(n / psi) - z) - 1))
    psi = max(discordance, effect + 1e-12)
    return float(stats.norm.cdf((effect * np.sqrt(n) - z * np.sqrt(psi)) / np.sqrt(psi - effect ** 2)))


def paired_binary_evidence(before: Sequence[bool], after: Sequence[bool], prediction: Prediction) -> Evidence:
    """The accuracy change ``mean(after) − mean(before)`` over problems (a fraction: −0.2 = a 20 pp
    drop): the exact unconditional Tango score test at every threshold, 0 included, and its inversion,
    the exact Tango interval (:mod:`codi_probe.paired_binary`), so the interval excludes the threshold
    exactly when the test rejects. The power is :func:`paired_power` at the observed discordance."""
    from . import paired_binary as pb

    if len(before) == 0 and len(after) == 0:
        return _undecided(prediction, 0, "no problems to compare")
    n, g, l = pb.paired_counts(before, after)
    diff = pb.paired_binary_difference(before, after, level=LEVEL)
    ev = from_one_sided(prediction, diff.value, diff.lo, diff.hi, n,
                        lambda t, alternative: pb.one_sided_p(g, l, n, t, alternative),
                        "exact unconditional Tango score test, exact Tango interval")
    effect = float(prediction.effect) if prediction.effect is not None else DEFAULT_PAIRED_EFFECT
    return replace(ev, power=paired_power(n, (g + l) / n, prediction, effect), effect=effect)


# ---- degenerate data: exclusions, undecidable evidence, the sign-test floor ---------------------

def _undecided(prediction: Prediction, n: int, reason: str, *, value: float = float("nan"), excluded: int = 0,
               method: str = "none (the test cannot decide)") -> Evidence:
    """Evidence that decides nothing (both p-values 1: ``inconclusive`` unless another prediction
    decides), with the ``reason`` the report shows."""
    return Evidence(prediction.statistic, float(value), float("nan"), float("nan"), int(n), 1.0, 1.0, method,
                    LEVEL, reason=reason, excluded=int(excluded))


def _excluded_note(excluded: int) -> str | None:
    return f"{excluded} problem(s) with a non-finite value excluded" if excluded else None


def _no_spread(x: np.ndarray) -> bool:
    """Every problem has the same value (to round-off): a bootstrap has nothing to resample."""
    return x.size < 2 or bool(np.ptp(x) <= 1e-12 * max(1.0, abs(float(x.flat[0]))))


def _no_spread_evidence(prediction: Prediction, value: float, n: int, *, excluded: int = 0,
                        why: str = "no spread across problems") -> Evidence:
    """Evidence when every problem gives the same value (or the statistic never varies): it decides
    nothing. A sign test would test the median, not the mean (24 problems all 0 with a true mean of
    0.1 happen 8% of the time: "mean < 0.1" would be supported at p = 0.5^24), and nothing bounds a
    mean from data without spread."""
    return _undecided(prediction, n, f"{why}: the test cannot decide" + (
        f"; {_excluded_note(excluded)}" if excluded else ""), value=value, excluded=excluded)


def _power_normal(prediction: Prediction, se: float, effect: float, alpha: float = ALPHA) -> float:
    """Normal-approximation power of the one-sided test at ``alpha`` (TOST for ``equivalent``, at a
    true difference of 0) when the estimate has standard error ``se`` and the truth lies ``effect``
    beyond the threshold."""
    z = stats.norm.ppf(1 - alpha)
    if not (np.isfinite(se) and se > 0):
        return float("nan")
    if prediction.direction == "equivalent":
        return float(max(0.0, 2 * stats.norm.cdf(prediction.threshold / se - z) - 1))
    return float(stats.norm.cdf(effect / se - z))


def _with_power(ev: Evidence, prediction: Prediction, se: float, default_effect: float,
                alpha: float = ALPHA) -> Evidence:
    effect = float(prediction.effect) if prediction.effect is not None else float(default_effect)
    return replace(ev, power=_power_normal(prediction, se, effect, alpha), effect=effect)


# ---- continuous per-problem values: the studentized bootstrap -----------------------------------

class _Studentized:
    """The studentized bootstrap (bootstrap-t) of a smooth function ``fn`` of the column means of
    per-problem rows ``rows[n, k]``: ``T* = (fn(mean*) − fn(mean)) / se*`` over resampled problems,
    with ``se`` the jackknife standard error (for the mean, exactly ``s / sqrt(n)``). The p-value at
    ``theta0`` is the bootstrap tail of ``T*`` beyond ``(fn(mean) − theta0) / se`` (plus one; beyond
    every resample, the normal tail of ``T*``: :meth:`_beyond_every_resample`) and the interval bounds are its exact inversion (order statistics
    of ``T*``), so a bound excludes ``theta0`` exactly when that p-value is below the level. A
    resample whose statistic is not finite counts as extreme on both sides (conservative). The test
    is the intersection with Student's t test of the same statistic (:meth:`p`).

    ``centre``: the parameter of the resampled population (the observed problems), which ``T*`` is centred
    on; by default ``fn`` of the observed means. An estimator that is not the plug-in one (e.g. a
    bias-corrected ``fn`` whose correction the resamples' repeated problems do not share) passes the
    plug-in ``centre``, so that ``T*`` mimics ``(estimate − truth) / se``."""

    def __init__(self, rows: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], *, seed: int, resamples: int,
                 centre: Callable[[np.ndarray], np.ndarray] | None = None):
        self.n, k = rows.shape
        self.resamples = resamples
        with np.errstate(all="ignore"):
            self.value = float(fn(rows.mean(0)))
            middle = self.value if centre is None else float(centre(rows.mean(0)))
        self.se = self._jackknife(rows[None], fn)[0]
        idx = _rng(seed).integers(0, self.n, (resamples, self.n))
        chunk = max(1, int(4e6 // max(1, self.n * k)))
        t = []
        for a in range(0, resamples, chunk):
            r = rows[idx[a:a + chunk]]  # [b, n, k]
            with np.errstate(all="ignore"):
                stat = np.asarray(fn(r.mean(1)), dtype=float)
                se = self._jackknife(r, fn)
                t.append(np.where(se > 0, (stat - middle) / se,
                                  np.where(stat == middle, 0.0, np.sign(stat - middle) * np.inf)))
        self.t = np.concatenate(t)
        self.bad = int(np.sum(np.isnan(self.t)))  # counted as extreme on both sides
        good = self.t[~np.isnan(self.t)]
        self.t_desc, self.t_asc = np.sort(good)[::-1], np.sort(good)

    @staticmethod
    def _jackknife(r: np.ndarray, fn: Callable) -> np.ndarray:
        """Jackknife standard errors of ``fn`` of the column means, per leading index of ``r[b, n, k]``."""
        n = r.shape[1]
        with np.errstate(all="ignore"):
            loo = np.asarray(fn((r.sum(1, keepdims=True) - r) / (n - 1)), dtype=float)  # [b, n]
            return np.sqrt((n - 1) / n * ((loo - loo.mean(1, keepdims=True)) ** 2).sum(1))

    def p(self, theta0: float, alternative: str) -> float:
        """The larger of the bootstrap-t p-value and Student's t p-value (``n − 1`` df) of the same
        studentized statistic: the bootstrap corrects for skewness, Student's t for heavy tails (the
        bootstrap-t alone rejected 5% at a nominal 2.5% on t(3) data; docs/statistics.md)."""
        with np.errstate(all="ignore"):
            t = (self.value - theta0) / self.se
        hits = np.sum(self.t_asc >= t) if alternative == "greater" else np.sum(self.t_asc <= t)
        student = stats.t.sf(t, self.n - 1) if alternative == "greater" else stats.t.cdf(t, self.n - 1)
        boot = (1 + hits + self.bad) / (self.resamples + 1)
        if hits == 0 and self.bad == 0:
            boot = min(boot, self._beyond_every_resample(t, alternative))
        return float(min(1.0, max(boot, student)))

    def _beyond_every_resample(self, t: float, alternative: str) -> float:
        """The bootstrap tail beyond ``t`` when no resample reaches it: the normal tail of ``T*``'s own
        mean and spread (at most ``1 / (resamples + 1)``, the resolution it replaces). Without it every
        studentized p-value was at least 1/2001, so a claim adjusted over more than 50 tests (IMP-01:
        6 pairs x 2 predictions x 7 positions) could not be decided however far the data lay from the
        threshold. The p-value stays the larger of this and Student's t (:meth:`p`)."""
        finite = self.t_asc[np.isfinite(self.t_asc)]
        spread = float(np.std(finite)) if finite.size > 1 else 0.0
        if not (np.isfinite(t) and spread > 0):
            return 1.0
        z = (t - float(np.mean(finite))) / spread
        return float(stats.norm.sf(z) if alternative == "greater" else stats.norm.cdf(z))

    def bound(self, alpha: float, alternative: str) -> float:
        """The one-sided ``1 − alpha`` bound: the ``theta0`` beyond which :meth:`p` is below ``alpha``
        (the outer of the bootstrap-t bound and Student's t bound)."""
        c = int(np.ceil(alpha * (self.resamples + 1) - 1)) - 1 - self.bad  # the largest count p < alpha allows
        order = self.t_desc if alternative == "greater" else self.t_asc
        if c < 0 or c >= len(order):
            return -np.inf if alternative == "greater" else np.inf
        q = stats.t.ppf(1 - alpha, self.n - 1)
        if alternative == "greater":
            return float(min(self.value - self.se * order[c], self.value - self.se * q))
        return float(max(self.value - self.se * order[c], self.value + self.se * q))


def _finite_rows(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """The rows without a non-finite value, and how many were excluded."""
    keep = np.all(np.isfinite(rows.reshape(rows.shape[0], -1)), axis=1) if rows.size else np.zeros(len(rows), bool)
    return rows[keep], int(np.sum(~keep))


Support = tuple[float, float]


def _check_support(support: Support | None) -> Support | None:
    if support is None:
        return None
    lo, hi = (float(v) for v in support)
    if not lo < hi:
        raise ValueError(f"support must be (low, high) with low < high, got {support}")
    return lo, hi


def _outside(x: np.ndarray, support: Support) -> bool:
    """Some value lies outside ``support`` by more than float32 round-off (an attention weight or a cosine
    computed in fp32 may exceed 1 by ~1e-7): ``1e-6`` of the support's span (or absolute, when open)."""
    lo, hi = support
    tol = 1e-6 * (hi - lo if np.isfinite(hi - lo) else 1.0)
    return bool(x.size) and bool(np.min(x) < lo - tol or np.max(x) > hi + tol)


def _unbounded_side(support: Support | None) -> str | None:
    """The one-sided test (``"less"`` / ``"greater"``) that ``support`` makes impossible, or None. A mean
    over a support with a finite lower and no upper bound (a KL, a norm, a ratio) cannot be shown
    *below* a threshold from the data: a right tail the sample rarely shows carries mass enough to move
    the mean, and then the sample mean and its spread are both too small together (no test of a mean
    from data alone is valid over all such distributions: Bahadur & Savage 1956; the studentized test
    supported "less" 6-18% of the time on lognormal and KL-like data, nominal 2.5%, docs/statistics.md).
    The mirror holds for "greater" with no lower bound. The side is impossible whichever way the
    prediction points: it neither supports a "less" prediction nor refutes a "greater" one."""
    if support is None:
        return None
    lo, hi = support
    if np.isfinite(lo) and not np.isfinite(hi):
        return "less"
    if np.isfinite(hi) and not np.isfinite(lo):
        return "greater"
    return None


def _rows_evidence(rows: np.ndarray, fn: Callable, prediction: Prediction, *, seed: int, resamples: int,
                   what: str, support: Support | None = None, centre: Callable | None = None,
                   p_factor: float = 1.0) -> Evidence:
    """:func:`rows_evidence` on rows ``[n, k]``: the declared exclusion of non-finite problems, the
    degenerate cases (n < 2, no spread, a statistic that is not finite or never varies), the declared
    ``support`` (:func:`_unbounded_side`), else the studentized bootstrap with its normal-approximation
    power (default effect: half a standard deviation of the statistic over problems, ``0.5 · se · sqrt(n)``)."""
    support = _check_support(support)
    kept, excluded = _finite_rows(rows)
    n = kept.shape[0]
    if n < 2:
        return _undecided(prediction, n, f"{n} problem(s) with finite values: a test needs at least 2"
                          + (f" ({excluded} excluded as non-finite)" if excluded else ""), excluded=excluded)
    if np.all(kept == kept[:1]):
        with np.errstate(all="ignore"):
            value = float(fn(kept[0]))
        if not np.isfinite(value):
            return _undecided(prediction, n, "the statistic is not finite for these data", excluded=excluded)
        return _no_spread_evidence(prediction, value, n, excluded=excluded)
    boot = _Studentized(kept, fn, seed=seed, resamples=resamples, centre=centre)
    if not np.isfinite(boot.value):
        return _undecided(prediction, n, "the statistic is not finite for these data (e.g. a zero denominator)",
                          value=boot.value, excluded=excluded)
    if not (np.isfinite(boot.se) and boot.se > 0):
        return _no_spread_evidence(prediction, boot.value, n, excluded=excluded,
                                   why="the statistic does not vary when a problem is left out")
    if support is not None and _outside(np.array([boot.value]), support):
        return _undecided(prediction, n, f"the statistic {boot.value:.6g} lies outside its declared support "
                          f"[{support[0]:g}, {support[1]:g}]", value=boot.value, excluded=excluded)
    impossible = _unbounded_side(support)
    lo, hi = boot.bound(ALPHA / p_factor, "greater"), boot.bound(ALPHA / p_factor, "less")
    p_at = boot.p if p_factor == 1.0 else (lambda t, alternative: min(1.0, p_factor * boot.p(t, alternative)))
    notes = [_excluded_note(excluded)]
    if impossible is not None:
        p_one = p_at
        p_at = (lambda t, alternative: 1.0 if alternative == impossible else p_one(t, alternative))
        lo, hi = (-np.inf, hi) if impossible == "greater" else (lo, np.inf)
        notes.append(f"a mean over the support [{support[0]:g}, {support[1]:g}] cannot be shown "
                     f"{'below' if impossible == 'less' else 'above'} a threshold from the data (an unbounded "
                     "tail; state the claim as a share of problems or a quantile)")
    guard = "" if p_factor == 1.0 else f", p-values x {p_factor:g}"
    ev = from_one_sided(prediction, boot.value, lo, hi, n, p_at,
                        f"studentized bootstrap (bootstrap-t, jackknife SE) over problems{what}{guard}")
    ev = replace(ev, reason="; ".join(x for x in notes if x) or None, excluded=excluded)
    return _with_power(ev, prediction, boot.se, 0.5 * boot.se * np.sqrt(n), alpha=ALPHA / p_factor)


def rows_evidence(rows: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], prediction: Prediction, *,
                  seed: int = 0, resamples: int = DEFAULT_RESAMPLES, support: Support | None = None,
                  centre: Callable[[np.ndarray], np.ndarray] | None = None, p_factor: float = 1.0) -> Evidence:
    """A smooth function ``fn`` of the column means of per-problem rows ``rows[n, k]`` (e.g. a ratio of
    two mean differences) against the threshold: the studentized bootstrap over problems (whole rows).
    ``fn`` maps means ``[..., k]`` to values ``[...]``. A statistic built on a maximum or minimum is
    not smooth and is not calibrated here (test each pairwise difference instead). Rows that are all
    equal, or a statistic that never varies, give evidence that decides nothing (with the reason).
    ``support``: the range ``(low, high)`` the statistic can take, as for :func:`mean_evidence`.
    ``centre``: for a bias-corrected ``fn``, the plug-in function whose value at the observed means is
    the resampled population's parameter (:class:`_Studentized`); None: ``fn`` itself.
    ``p_factor`` (>= 1): a guard for a statistic whose bootstrap-t tail is known to be too thin at small n
    (PROBE-03's centroid cosine on strongly skewed noise): both one-sided p-values are multiplied by it
    (capped at 1) and the bounds are at ``ALPHA / p_factor``, so a bound still excludes the threshold
    exactly when the p-value is below ``ALPHA``."""
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2:
        raise ValueError(f"rows must be [n, k], got shape {rows.shape}")
    if not p_factor >= 1.0:
        raise ValueError(f"p_factor must be at least 1, got {p_factor}")
    return _rows_evidence(rows, fn, prediction, seed=seed, resamples=resamples, what="", support=support,
                          centre=centre, p_factor=p_factor)


def mean_evidence(values: Sequence[float], prediction: Prediction, *, seed: int = 0,
                  resamples: int = DEFAULT_RESAMPLES, support: Support | None = None) -> Evidence:
    """The mean of one value per problem against the threshold: the studentized bootstrap (bootstrap-t)
    over problems. Data without spread (every problem the same value) decide nothing; non-finite
    values are excluded and counted (module docstring).

    ``support``: the range ``(low, high)`` a per-problem value can take, in its units (``(0, 1)`` for an
    attention weight or a rate, ``(0, inf)`` for a KL; ``None``: unknown). The claim declares it; the
    claim-level calibration (:mod:`codi_probe.calibration`) feeds data of that support. A value outside
    it makes the evidence decide nothing (with the reason); a support with one open end makes the test
    towards that end impossible (:func:`_unbounded_side`: "KL mean < t" is never supported, state it as a
    share); on a bounded support the test is calibrated on skewed, U-shaped, zero-inflated and binary
    data (tests/test_stats_calibration.py)."""
    x = np.asarray(values, dtype=float).reshape(-1)
    support = _check_support(support)
    finite = x[np.isfinite(x)]
    if support is not None and _outside(finite, support):
        return _undecided(prediction, int(finite.size), f"values outside the declared support [{support[0]:g}, "
                          f"{support[1]:g}] (from {finite.min():.6g} to {finite.max():.6g})",
                          excluded=int(x.size - finite.size))
    return _rows_evidence(x[:, None], _first_column, prediction, seed=seed, resamples=resamples, what="",
                          support=support)


def _first_column(m: np.ndarray) -> np.ndarray:
    return m[..., 0]


def bootstrap_mean(values: Sequence[float], *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES) -> Estimate:
    """Mean over problems with the 95% interval :func:`mean_evidence` reports (studentized bootstrap);
    non-finite values are left out, and fewer than 2 problems give a NaN interval."""
    x = np.asarray(values, dtype=float).reshape(-1)
    x = x[np.isfinite(x)]
    if x.size < 2 or _no_spread(x):
        m = float(x.mean()) if x.size else float("nan")
        return Estimate(m, m if x.size > 1 else float("nan"), m if x.size > 1 else float("nan"), int(x.size))
    boot = _Studentized(x[:, None], _first_column, seed=seed, resamples=resamples)
    return Estimate(boot.value, boot.bound(ALPHA, "greater"), boot.bound(ALPHA, "less"), int(x.size))


# ---- any statistic of paired per-problem samples: the BCa bootstrap -----------------------------

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
        """The smallest one-sided level at which the bound excludes ``theta0`` (bisection on alpha over
        (0, 0.5]; 1.0 when even the 50% bound does not exclude it). Levels above 0.5 are never probed:
        there BCa's adjusted percentile ``Φ(z0 + (z0+z)/(1 − a(z0+z)))`` has a negative denominator
        once the acceleration ``a`` exceeds about 1/(z0 + z), and the bound wraps around."""
        excludes = ((lambda a: self.bound(a, "greater") > theta0) if alternative == "greater"
                    else (lambda a: self.bound(a, "less") < theta0))
        lo, hi = 0.0, 0.5
        if not excludes(hi):
            return 1.0
        for _ in range(_BISECTIONS):
            mid = (lo + hi) / 2
            if excludes(mid):
                hi = mid
            else:
                lo = mid
        return hi


def bootstrap_evidence(samples: Sequence[np.ndarray], statistic: Callable, prediction: Prediction, *,
                       vectorized: bool = False, seed: int = 0, resamples: int = DEFAULT_RESAMPLES) -> Evidence:
    """Any smooth statistic of per-problem samples (``samples``: arrays paired along axis 0, e.g. a
    correlation) against the threshold: the expanded BCa bootstrap over problems. For a mean or a
    function of column means use :func:`mean_evidence` / :func:`rows_evidence` (studentized: BCa is
    anti-conservative for "less" on right-skewed data). Problems with a non-finite value in any sample
    are excluded and counted; fewer than 2 left, a non-finite statistic or a degenerate bootstrap
    give evidence that decides nothing, with the reason, and so does a statistic that never varies
    over the resamples."""
    samples = tuple(np.asarray(s, dtype=float) for s in samples)
    keep = np.all(np.stack([np.isfinite(s.reshape(len(s), -1)).all(1) for s in samples]), axis=0)
    excluded = int(np.sum(~keep))
    samples = tuple(s[keep] for s in samples)
    n = len(samples[0])
    if n < 2:
        return _undecided(prediction, n, f"{n} problem(s) with finite values: a bootstrap needs at least 2",
                          excluded=excluded)
    with np.errstate(all="ignore"):
        value = float(statistic(*samples, axis=-1) if vectorized else statistic(*samples))
    if not np.isfinite(value):
        return _undecided(prediction, n, "the statistic is not finite for these data", value=value, excluded=excluded)
    with np.errstate(all="ignore"):
        boot = _Bootstrap(samples, statistic, vectorized=vectorized, seed=seed, resamples=resamples)
    spread = np.asarray(boot.base.bootstrap_distribution, dtype=float)
    if np.all(np.isfinite(spread)) and _no_spread(spread.reshape(-1)):
        return _no_spread_evidence(prediction, value, n, excluded=excluded,
                                   why="the statistic never varies over resamples")
    if not (np.isfinite(boot.lo) and np.isfinite(boot.hi)):
        return _undecided(prediction, n, "the bootstrap is degenerate for these data", value=value, excluded=excluded)
    ev = from_one_sided(prediction, value, boot.lo, boot.hi, n, boot.p,
                        f"{boot.method} bootstrap over problems (expanded level)")
    se = float(np.nanstd(spread))
    ev = replace(ev, reason=_excluded_note(excluded), excluded=excluded)
    return _with_power(ev, prediction, se, 0.5 * se * np.sqrt(n))


# ---- within-problem association -------------------------------------------------------------------

def within_problem_rhos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The Spearman correlation between ``x[i, :]`` and ``y[i, :]`` (positions) for each problem ``i``;
    problems where either row is constant carry no within-problem information and are dropped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = (x.std(1) > 0) & (y.std(1) > 0)
    return _rhos(stats.rankdata(x[keep], axis=1), stats.rankdata(y[keep], axis=1))


DEFAULT_ASSOCIATION_EFFECT = 0.2  # a mean within-problem Spearman: the power is at 0.2


def permutation_spearman(x: np.ndarray, y: np.ndarray, prediction: Prediction, *, permutations: int = 5000,
                         seed: int = 0) -> Evidence:
    """Mean within-problem Spearman against 0 by permutation: positions are shuffled within each
    problem independently (scipy's ``permutation_test`` permutes one axis jointly, so the per-problem
    shuffle is done here). Only a threshold of 0 (no association) can be tested this way. Problems with
    a non-finite value are excluded and counted; problems without spread carry no information and are
    dropped. The power is the normal approximation at :data:`DEFAULT_ASSOCIATION_EFFECT`."""
    if prediction.direction == "equivalent" or prediction.threshold != 0:
        raise ValueError("a permutation test of association tests a threshold of 0 in one direction")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    finite = np.isfinite(x).all(1) & np.isfinite(y).all(1)
    excluded = int(np.sum(~finite))
    x, y = x[finite], y[finite]
    keep = (x.std(1) > 0) & (y.std(1) > 0)
    rx, ry = stats.rankdata(x[keep], axis=1), stats.rankdata(y[keep], axis=1)
    n = rx.shape[0]
    if n < 2:
        return _undecided(prediction, n, f"{n} problem(s) with finite values and spread: a permutation test "
                          "needs at least 2", excluded=excluded, method="within-problem permutation test")
    rhos = _rhos(rx, ry)
    observed = float(rhos.mean())
    shuffled = _rng(seed).permuted(np.broadcast_to(ry, (permutations, *ry.shape)).copy(), axis=-1)
    null = _rhos(rx[None], shuffled).mean(-1)

    def p_at(t: float, alternative: str) -> float:
        hits = np.sum(null >= observed - 1e-12) if alternative == "greater" else np.sum(null <= observed + 1e-12)
        return float((hits + 1) / (permutations + 1))

    ci = bootstrap_mean(rhos, seed=seed)
    ev = from_one_sided(prediction, observed, ci.lo, ci.hi, n, p_at, "within-problem permutation test")
    ev = replace(ev, reason=_excluded_note(excluded), excluded=excluded)
    # under the null a per-problem Spearman over k positions has variance 1/(k - 1)
    return _with_power(ev, prediction, 1 / np.sqrt(n * max(rx.shape[1] - 1, 1)), DEFAULT_ASSOCIATION_EFFECT)


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
