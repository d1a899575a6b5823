"""Problem-level statistics, taken from SciPy / statsmodels rather than hand-written.

The unit is always the problem: every function takes one value (or one row of per-position values)
per problem, never pooled problem×token rows (F-05, F-06). Claims with fewer than
``MIN_PROBLEMS`` problems report ``inconclusive`` instead of a p-value from too few units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

MIN_PROBLEMS = 20  # below this no significance claim is made (F-05: the seeds used n=10)
DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A statistic with its confidence interval and, when tested, a p-value."""

    value: float
    lo: float
    hi: float
    n: int
    p_value: float | None = None
    level: float = 0.95

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def bootstrap_mean(values: Sequence[float], *, seed: int = 0, level: float = 0.95,
                   resamples: int = DEFAULT_RESAMPLES) -> Estimate:
    """Mean over problems with a BCa bootstrap CI (percentile when the data are constant)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no problems to average")
    if x.size < 2 or np.all(x == x[0]):
        return Estimate(float(x.mean()), float(x.mean()), float(x.mean()), int(x.size), level=level)
    res = stats.bootstrap((x,), np.mean, confidence_level=level, n_resamples=resamples,
                          method="percentile", rng=_rng(seed))
    ci = res.confidence_interval
    return Estimate(float(x.mean()), float(ci.low), float(ci.high), int(x.size), level=level)


def paired_difference(a: Sequence[float], b: Sequence[float], *, seed: int = 0, level: float = 0.95,
                      resamples: int = DEFAULT_RESAMPLES) -> Estimate:
    """Mean of ``a - b`` over problems, paired bootstrap CI and a two-sided Wilcoxon p-value."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    d = a - b
    est = bootstrap_mean(d, seed=seed, level=level, resamples=resamples)
    p = None
    if d.size >= 2 and np.any(d != 0):
        p = float(stats.wilcoxon(a, b, zero_method="zsplit").pvalue)
    elif d.size >= 2:
        p = 1.0
    return Estimate(est.value, est.lo, est.hi, est.n, p, level)


def proportion(k: int, n: int, *, level: float = 0.95) -> Estimate:
    """A proportion with its Wilson CI (scipy ``binomtest(...).proportion_ci``)."""
    if n <= 0:
        raise ValueError("a proportion needs n > 0")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return Estimate(k / n, float(ci.low), float(ci.high), int(n), level=level)


def mcnemar_exact(before: Sequence[bool], after: Sequence[bool]) -> Estimate:
    """Paired accuracy change ``after - before`` with the exact McNemar p-value (binomial test on the
    discordant problems) and a paired-bootstrap CI."""
    b0 = np.asarray(before, dtype=bool)
    b1 = np.asarray(after, dtype=bool)
    lost = int(np.sum(b0 & ~b1))
    gained = int(np.sum(~b0 & b1))
    p = float(stats.binomtest(gained, lost + gained).pvalue) if lost + gained else 1.0
    est = bootstrap_mean(b1.astype(float) - b0.astype(float))
    return Estimate(est.value, est.lo, est.hi, est.n, p, est.level)


def cochran_q(matrix: np.ndarray) -> float:
    """Cochran's Q p-value for k related binary outcomes (rows = problems, columns = conditions)."""
    from statsmodels.stats.contingency_tables import cochrans_q

    m = np.asarray(matrix, dtype=int)
    if np.all(m == m[:, :1]):
        return 1.0
    return float(cochrans_q(m).pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels ``multipletests``)."""
    from statsmodels.stats.multitest import multipletests

    if len(p_values) == 0:
        return []
    return [float(x) for x in multipletests(list(p_values), method="holm")[1]]


def tost_paired(a: Sequence[float], b: Sequence[float], margin: float) -> float:
    """Equivalence p-value that ``mean(a - b)`` lies within ``±margin`` (statsmodels ``ttost_paired``).
    "No effect" claims use this, never ``p > 0.05``."""
    from statsmodels.stats.weightstats import ttost_paired

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b
    if np.all(d == d[0]):
        return 0.0 if abs(d[0]) < margin else 1.0
    return float(ttost_paired(a, b, -margin, margin)[0])


def within_problem_spearman(x: np.ndarray, y: np.ndarray, *, permutations: int = 5000,
                            seed: int = 0) -> Estimate:
    """Mean over problems of the Spearman correlation between ``x[i, :]`` and ``y[i, :]`` (positions),
    with a bootstrap CI over problems and a permutation p-value that shuffles positions *within*
    each problem independently (ATT-02; scipy's ``permutation_test`` permutes one axis jointly, so the
    independent per-problem shuffle is done here, ranking with ``scipy.stats.rankdata``).
    Problems where either row is constant carry no within-problem information and are dropped."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = (x.std(1) > 0) & (y.std(1) > 0)
    x, y = x[keep], y[keep]
    n = x.shape[0]
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, None)
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rhos = _rhos(rx, ry)
    observed = float(rhos.mean())
    shuffled = _rng(seed).permuted(np.broadcast_to(ry, (permutations, *ry.shape)).copy(), axis=-1)
    null = _rhos(rx[None], shuffled).mean(-1)
    p = float((np.sum(np.abs(null) >= abs(observed) - 1e-12) + 1) / (permutations + 1))
    est = bootstrap_mean(rhos, seed=seed)
    return Estimate(observed, est.lo, est.hi, n, p)


def _rhos(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Pearson correlation of ranks along the last axis (= Spearman per problem)."""
    a = rx - rx.mean(-1, keepdims=True)
    b = ry - ry.mean(-1, keepdims=True)
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def at_floor(baseline_correct: Sequence[bool] | np.ndarray, min_n: int = MIN_PROBLEMS) -> bool:
    """Too few baseline-correct problems for an accuracy-change claim: "no change" would be a floor
    effect (a model that answers nothing correctly cannot lose accuracy), so such claims are inconclusive."""
    return int(np.sum(np.asarray(baseline_correct, dtype=bool))) < min_n


def verdict(estimate: Estimate, threshold: float, *, alternative: str = "greater",
            min_n: int = MIN_PROBLEMS) -> str:
    """``supported`` when the CI clears ``threshold`` in the claimed direction, ``refuted`` when it lies
    entirely on the other side, else ``inconclusive``; always inconclusive below ``min_n`` problems."""
    if estimate.n < min_n or not np.isfinite(estimate.lo) or not np.isfinite(estimate.hi):
        return "inconclusive"
    if alternative == "greater":
        return "supported" if estimate.lo > threshold else "refuted" if estimate.hi <= threshold else "inconclusive"
    if alternative == "less":
        return "supported" if estimate.hi < threshold else "refuted" if estimate.lo >= threshold else "inconclusive"
    raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")

