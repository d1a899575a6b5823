"""Claims about the largest or smallest of several positions (layers, heads): tests built from the
pairwise paired differences, never from the maximum or minimum of sample means.

Why. The maximum of several sample means is biased upward and the minimum downward, and a bootstrap
of that statistic does not remove the bias: "P5's failure rate minus the smallest other position's"
tested with :func:`codi_probe.stats.rows_evidence` is falsely supported 20% of the time at n = 100 at
its null boundary (nominal 2.5%; issue 28, ``tests/test_extremes.py``). Every statement about an
extreme is a statement about all or some of the pairs, and each pair has a calibrated paired test:

- "``rate_k − scale · rate_j > threshold`` for **every** ``j``" (``k`` is the largest, by a margin):
  :func:`every_pair_evidence`, an intersection-union test (IUT; Berger 1982): supported when every
  pair is (the largest ``p_support``, no multiplicity adjustment needed), refuted when any pair is
  (the smallest ``p_refute``, Holm over the pairs);
- "``rate_k − scale · rate_j > threshold`` for **some** ``j``" (e.g. ``rate_k > 2 · min_j rate_j``):
  :func:`some_pair_evidence`, a union test: supported when some pair is after Holm over the pairs
  (Bonferroni on the smallest ``p_support``), refuted only when every pair is (the largest
  ``p_refute``);
- "``max_a rate_a − min_b rate_b > threshold``" (the positions differ by more than a margin):
  :func:`spread_evidence`, the union over every ordered pair ``(a, b)``.

Nested statements (LAY-01: "some layer in the band beats every layer outside it") join pair evidence
with :func:`all_of` and :func:`any_of`. Both combinations are :func:`codi_probe.hypothesis.combine` itself (``all`` is the IUT, ``any`` the
mirrored union), applied to one prediction per pair, so the rule is the one every claim uses. A
claim's :class:`~codi_probe.hypothesis.Hypothesis` holds one :class:`~codi_probe.hypothesis.Prediction`
per statement; its evidence is the combined pair evidence returned here (``Hypothesis`` has no nested
all/any, so the nesting lives in these functions and is named in the evidence's ``method``).

Each pair's test: binary rows (every value 0 or 1) with ``scale == 1`` use the exact paired test of
:func:`codi_probe.stats.paired_binary_evidence` (the exact Tango test, at every threshold); anything
else is a mean of per-problem differences (:func:`codi_probe.stats.mean_evidence`). The functions
are called through the ``stats`` module, so a change there applies here.

Units: ``rows[i, j]`` is problem ``i``'s value at position (layer, head) ``j``; thresholds are in the
rows' units (a fraction for rates: 0.05 = 5 pp).

The reported interval. IUT: ``lo`` is the smallest of the pairs' lower bounds (the IUT bound, so it
excludes the threshold exactly when the claim is supported), ``hi`` the smallest upper bound, and
``value`` the plug-in ``rate_k − max_j scale · rate_j``. Union: the deciding pair's (smallest
``p_support``) interval, and ``value`` the plug-in of the best pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from . import stats
from .hypothesis import Evidence, Hypothesis, Prediction, combine


def _is_binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0) | (x == 1)))


def _cp(k: int, n: int, gamma: float, side: str) -> float:
    """The one-sided Clopper-Pearson bound of ``k`` of ``n`` that holds with probability 1 − ``gamma``."""
    from scipy.stats import beta

    if side == "lower":
        return 0.0 if k == 0 else float(beta.ppf(gamma, k, n - k + 1))
    return 1.0 if k == n else float(beta.ppf(1 - gamma, k + 1, n - k))


def _smallest_alpha(beyond) -> float:
    """The smallest level ``alpha`` in (0, 1] at which ``beyond(alpha)`` (monotone: once true, true for
    every larger alpha) holds, by bisection; 1.0 when it never does."""
    if not beyond(1.0):
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if beyond(mid) else (mid, hi)
    return hi


def scaled_binary_evidence(a: np.ndarray, b: np.ndarray, prediction: Prediction, scale: float) -> Evidence:
    """``P(a) − scale · P(b)`` against ``prediction`` for binary per-problem ``a``, ``b`` and ``scale != 1``
    (PATCH-02's "moved more than 10x the random control"). The exact one-sided Clopper-Pearson bound of
    each share at ``alpha / 2`` (Bonferroni, pairing ignored: conservative, valid at any n): supported at
    ``alpha`` when ``lower(a) − scale · upper(b)`` exceeds the threshold, refuted when ``upper(a) −
    scale · lower(b)`` falls below it; the p-values are the smallest such alpha, and the 95% interval is
    the same construction at alpha = 0.025 (each share's bound at 1.25%), so it excludes the threshold exactly when a p-value is below
    0.025. A mean of the binary differences is not calibrated here: mostly 0 and 1 with a rare
    ``-scale`` that carries the mean (issue 28's harness: 27% false supported at n = 100)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    n, ka, kb, t = len(a), int(a.sum()), int(b.sum()), prediction.threshold
    if n == 0 or len(b) != n:
        return stats._undecided(prediction, n, f"paired shares need the same problems, got {len(a)} and {len(b)}")

    def lower(alpha: float) -> float:
        return _cp(ka, n, alpha / 2, "lower") - scale * _cp(kb, n, alpha / 2, "upper")

    def upper(alpha: float) -> float:
        return _cp(ka, n, alpha / 2, "upper") - scale * _cp(kb, n, alpha / 2, "lower")

    p_above, p_below = _smallest_alpha(lambda al: lower(al) > t), _smallest_alpha(lambda al: upper(al) < t)
    p_support, p_refute = (p_above, p_below) if prediction.direction == "greater" else (p_below, p_above)
    level = 1 - 2 * stats.ALPHA
    return Evidence(prediction.statistic, ka / n - scale * kb / n, lower(stats.ALPHA), upper(stats.ALPHA), n,
                    p_support, p_refute, f"share(a) - {scale:g} x share(b): exact Clopper-Pearson bounds of each "
                    "share at alpha/2 (Bonferroni-joined, conservative)", level)


def pair_evidence(a: np.ndarray, b: np.ndarray, prediction: Prediction, *, scale: float = 1.0,
                  seed: int = 0) -> Evidence:
    """One pair: the per-problem difference ``a − scale · b`` against ``prediction``. Binary ``a``, ``b``:
    with ``scale == 1`` the exact paired test of proportions, else :func:`scaled_binary_evidence`;
    anything else the mean test of the differences."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if _is_binary(a) and _is_binary(b) and prediction.direction in ("greater", "less"):
        if scale == 1.0:
            return stats.paired_binary_evidence(b.astype(bool), a.astype(bool), prediction)
        return scaled_binary_evidence(a, b, prediction, scale)
    return stats.mean_evidence(a - scale * b, prediction, seed=seed)


def _pairs(rows: np.ndarray, pairs: Sequence[tuple[int, int]], prediction: Prediction, scale: float,
           seed: int) -> list[Evidence]:
    return [pair_evidence(rows[:, a], rows[:, b],
                          Prediction(f"{prediction.statistic} [{a} vs {b}]", prediction.direction, prediction.threshold),
                          scale=scale, seed=seed) for a, b in pairs]


def _check(rows: np.ndarray, pairs: Sequence, prediction: Prediction) -> np.ndarray:
    if prediction.direction != "greater":
        raise ValueError(f"{prediction.statistic}: an extreme's prediction must be 'greater', got "
                         f"{prediction.direction!r}")
    rows = np.asarray(rows, dtype=float)
    if rows.ndim != 2 or rows.shape[0] < 2 or not pairs:
        raise ValueError(f"{prediction.statistic}: rows must be [n >= 2, k] with at least one pair, got "
                         f"shape {rows.shape}")
    return rows


def combined_p(evidence: Sequence[Evidence], how: str, n: int) -> tuple[float, float]:
    """``(p_support, p_refute)`` of several evidences joined by ``how`` (``all``: intersection-union;
    ``any``: union, Holm), by :func:`codi_probe.hypothesis.combine` itself."""
    hyp = Hypothesis(tuple(Prediction(f"{i}: {e.statistic}", "greater", 0.0) for i, e in enumerate(evidence)),
                     min_n=1, combine=how)
    renamed = [replace(e, statistic=f"{i}: {e.statistic}") for i, e in enumerate(evidence)]
    out = combine(hyp, renamed, n)
    return float(out.p_support), float(out.p_refute)


def _bound(values, pick) -> float:
    """``pick`` (min or max) of member bounds; NaN when any member has none (an undecided member)."""
    values = [float(v) for v in values]
    return float("nan") if any(np.isnan(v) for v in values) else float(pick(values))


def _joined(ev: Sequence[Evidence], prediction: Prediction) -> Evidence | None:
    """Evidence that decides nothing when a member could not (fewer than 2 problems), carrying the members'
    reasons and the most problems any of them excluded; None when every member could decide."""
    if min(e.n for e in ev) >= 2:
        return None
    notes = _notes(ev)
    return stats._undecided(prediction, min(e.n for e in ev), notes["reason"] or "fewer than 2 problems in a pair",
                            excluded=notes["excluded"])


def _notes(ev: Sequence[Evidence]) -> dict:
    """The members' reasons (joined) and the most problems any of them excluded."""
    reasons = "; ".join(sorted({e.reason for e in ev if e.reason}))
    return {"reason": reasons or None, "excluded": max((e.excluded for e in ev), default=0)}


def all_of(evidence: Sequence[Evidence], prediction: Prediction, value: float | None = None) -> Evidence:
    """One prediction that holds when every one of ``evidence`` does (the intersection-union test):
    ``lo``/``hi`` the smallest of theirs (NaN when a member has none), ``value`` the smallest value unless
    given. ``lo`` is the IUT's bound (it excludes the threshold exactly when the claim is supported); ``hi``
    is the per-pair 97.5% bound, not adjusted for the Holm refutation over the pairs."""
    ev = list(evidence)
    undecided = _joined(ev, prediction)
    if undecided is not None:
        return undecided
    ps, pr = combined_p(ev, "all", min(e.n for e in ev))
    return Evidence(prediction.statistic, min(e.value for e in ev) if value is None else float(value),
                    _bound((e.lo for e in ev), min), _bound((e.hi for e in ev), min), min(e.n for e in ev), ps, pr,
                    f"intersection-union over {len(ev)} (upper bound per pair, unadjusted): {ev[0].method}",
                    ev[0].level, **_notes(ev))


def any_of(evidence: Sequence[Evidence], prediction: Prediction, value: float | None = None) -> Evidence:
    """One prediction that holds when some one of ``evidence`` does (the union test, Holm): the
    deciding (smallest ``p_support``) member's interval, ``value`` the largest value unless given."""
    ev = list(evidence)
    undecided = _joined(ev, prediction)
    if undecided is not None:
        return undecided
    ps, pr = combined_p(ev, "any", min(e.n for e in ev))
    best = min(ev, key=lambda e: e.p_support)
    return Evidence(prediction.statistic, max(e.value for e in ev) if value is None else float(value), best.lo,
                    _bound((e.hi for e in ev), max), min(e.n for e in ev), ps, pr,
                    f"union over {len(ev)} (Holm; lower bound of the deciding pair, unadjusted; upper bound the "
                    f"largest pair's); each: {best.method}", best.level, **_notes(ev))


def _against_others(rows: np.ndarray, k: int, prediction: Prediction, others: Sequence[int] | None, scale: float,
                    seed: int) -> tuple[list[Evidence], np.ndarray, list[int]]:
    """The pair evidence of column ``k`` against each of ``others``, the column means, and ``others``."""
    rows = np.asarray(rows, dtype=float)
    others = _others(rows.shape[-1], k, others)
    rows = _check(rows, others, prediction)
    return _pairs(rows, [(k, j) for j in others], prediction, scale, seed), rows.mean(0), others


def _others(width: int, k: int, others: Sequence[int] | None) -> list[int]:
    return [j for j in range(width) if j != k] if others is None else list(others)


def every_pair_evidence(rows: np.ndarray, k: int, prediction: Prediction, *, others: Sequence[int] | None = None,
                        scale: float = 1.0, seed: int = 0) -> Evidence:
    """``rows[:, k] − scale · rows[:, j] > threshold`` for every ``j`` in ``others`` (default: every
    other column): the intersection-union test over the pairs (module docstring)."""
    ev, means, others = _against_others(rows, k, prediction, others, scale, seed)
    return all_of(ev, prediction, every_pair_population(means, k, others, scale))


def some_pair_evidence(rows: np.ndarray, k: int, prediction: Prediction, *, others: Sequence[int] | None = None,
                       scale: float = 1.0, seed: int = 0) -> Evidence:
    """``rows[:, k] − scale · rows[:, j] > threshold`` for some ``j`` in ``others`` (default: every
    other column), e.g. ``scale = 2``: "at least twice the least important": the union test."""
    ev, means, others = _against_others(rows, k, prediction, others, scale, seed)
    return any_of(ev, prediction, some_pair_population(means, k, others, scale))


def spread_evidence(rows: np.ndarray, prediction: Prediction, *, seed: int = 0) -> Evidence:
    """``max_a mean(rows[:, a]) − min_b mean(rows[:, b]) > threshold``: the union over every ordered
    pair ``(a, b)``, ``a != b`` (``k · (k − 1)`` pairs, Holm)."""
    rows = np.asarray(rows, dtype=float)
    k = rows.shape[-1] if rows.ndim == 2 else 0
    pairs = [(a, b) for a in range(k) for b in range(k) if a != b]
    rows = _check(rows, pairs, prediction)
    means = rows.mean(0)
    return any_of(_pairs(rows, pairs, prediction, 1.0, seed), prediction, means.max() - means.min())


# ---- the population statistics, for the calibration harness -----------------------------------------

def every_pair_population(means: np.ndarray, k: int, others: Sequence[int] | None = None,
                          scale: float = 1.0) -> float:
    """The statistic :func:`every_pair_evidence` tests, of population column means: ``min_j (μ_k − s μ_j)``."""
    means = np.asarray(means, dtype=float)
    others = _others(means.shape[-1], k, others)
    return float(means[k] - scale * means[others].max())


def some_pair_population(means: np.ndarray, k: int, others: Sequence[int] | None = None,
                         scale: float = 1.0) -> float:
    """The statistic :func:`some_pair_evidence` tests: ``max_j (μ_k − s μ_j)``."""
    means = np.asarray(means, dtype=float)
    others = _others(means.shape[-1], k, others)
    return float(means[k] - scale * means[others].min())


__all__ = ["all_of", "any_of", "combined_p", "every_pair_evidence", "every_pair_population", "pair_evidence", "some_pair_evidence",
           "some_pair_population", "spread_evidence"]
