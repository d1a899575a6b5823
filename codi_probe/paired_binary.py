"""Exact tests and intervals for a paired difference of proportions (one binary outcome per problem,
measured twice: e.g. correct before and after an intervention).

Why not McNemar alone, a t-test or a bootstrap: McNemar tests only "no change" (a threshold of 0),
a t-test on {−1, 0, 1} differences returns p = 0 when no pair is discordant (so 24 problems "prove"
±3 pp equivalence), and a bootstrap interval collapses to a point in the same case. Claims state
thresholds ("drops accuracy by at least 20 pp") and equivalence margins ("within ±3 pp"), so the
test must work at any null difference ``δ0`` and stay valid at small n and rare discordance.

The method. The difference is ``Δ = q01 − q10`` (``q01``: wrong before, right after; ``q10``: right
before, wrong after), estimated by ``(g − l)/n`` from ``g`` gained and ``l`` lost problems out of
``n``. For a null ``Δ = δ0`` the statistic is Tango's score ``Z`` (Tango 1998, Stat. Med. 17:891):
``(g − l − n·δ0) / sqrt(n·(2·q̃10 + δ0·(1 − δ0)))`` with ``q̃10`` the maximum-likelihood ``q10`` under
the null (a root of a quadratic). Its normal approximation is anti-conservative at small n and rare
discordance (simulated: up to 8% rejections at a nominal 5% for n = 100, q10 = 0.03), so the p-value
here is **exact and unconditional**: the trinomial probability, under the null, of every outcome at
least as extreme in ``Z``, maximised over the nuisance ``q10`` on a grid (Suissa & Shuster 1991).
Intervals invert the two one-sided tests; equivalence (TOST) is the larger of the two one-sided
p-values at ``−margin`` and ``+margin``. Trinomial probabilities come from ``scipy.special``; the
calibration tests compute each test's exact size over a finer nuisance grid (no Monte-Carlo error).

Cost: ``O(n² · grid)`` per p-value (one matrix product per chunk of the grid; measured on 2 cores:
milliseconds at n = 100, about 0.15 s at n = 500); an interval takes ``2 · BISECTIONS`` p-values
(about 7 s at n = 500).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy import special

NUISANCE_GRID = 200  # points over the nuisance range; the calibration tests check sizes on a 4x finer grid
BISECTIONS = 16  # interval bounds to 2^-15 ≈ 3e-5 (0.003 pp)
_TIE = 1e-9  # outcomes whose Z equals the observed one (up to round-off) count as "as extreme"


@dataclass(frozen=True)
class PairedBinary:
    """``after − before`` as a difference of paired proportions: estimate, exact interval, p-value."""

    value: float
    lo: float
    hi: float
    n: int
    gained: int
    lost: int
    p_value: float | None
    threshold: float
    alternative: str
    level: float

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)


def score_z(g, l, n: int, delta: float) -> np.ndarray:
    """Tango's score statistic at null difference ``delta`` for ``g`` gained and ``l`` lost of ``n``
    (arrays broadcast). Positive when the observed difference exceeds ``delta``."""
    g, l = np.asarray(g, dtype=float), np.asarray(l, dtype=float)
    a = 2.0 * n
    b = -(l + g) + delta * (2.0 * n + l - g)
    c = -l * delta * (1.0 - delta)
    q10 = (-b + np.sqrt(np.maximum(b * b - 4.0 * a * c, 0.0))) / (2.0 * a)
    var = n * (2.0 * q10 + delta * (1.0 - delta))
    num = g - l - n * delta
    ok = var > 1e-300
    # a null variance (no discordant pair possible at this delta): the observation either equals the
    # null exactly (Z = 0) or is impossible under it (Z = ±inf)
    degenerate = np.where(num == 0, 0.0, np.copysign(np.inf, num))
    return np.where(ok, num / np.sqrt(np.where(ok, var, 1.0)), degenerate)


@lru_cache(maxsize=64)
def _cells(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every outcome (g, l) with g + l ≤ n, and its log multinomial coefficient."""
    g, l = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = g + l <= n
    g, l = g[keep].astype(float), l[keep].astype(float)
    logc = special.gammaln(n + 1) - special.gammaln(g + 1) - special.gammaln(l + 1) - special.gammaln(n - g - l + 1)
    return g, l, logc


def _tail(n: int, delta: float, q10: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Per nuisance value ``q10``, the trinomial probability of the outcomes ``cells`` (a boolean mask
    over :func:`_cells`) when ``q01 = q10 + delta``; computed in chunks of the grid to bound memory."""
    g, l, logc = (x[cells] for x in _cells(n))
    out = np.empty(len(q10))
    for start in range(0, len(q10), 25):
        out[start:start + 25] = _pmf(n, delta, np.asarray(q10[start:start + 25]), g, l, logc).sum(1)
    return out


def _pmf(n: int, delta: float, q10: np.ndarray, g: np.ndarray, l: np.ndarray, logc: np.ndarray) -> np.ndarray:
    """``[len(q10), len(g)]`` trinomial probabilities of outcomes ``(g, l)`` when ``q01 = q10 + delta``:
    the log-probabilities are one matrix product of the log cell probabilities with the counts
    (a zero probability enters as log(1e-300), so a zero count contributes exactly 0)."""
    q10 = np.asarray(q10, dtype=float)
    q01 = np.clip(q10 + delta, 0.0, 1.0)
    q00 = np.clip(1.0 - q10 - q01, 0.0, 1.0)
    logq = np.log(np.maximum(np.stack([q01, q10, q00], 1), 1e-300))  # [grid, 3]
    counts = np.stack([g, l, n - g - l])  # [3, cells]
    return np.exp(logc + logq @ counts)


def nuisance_grid(delta: float, points: int = NUISANCE_GRID) -> np.ndarray:
    """The admissible ``q10`` under ``Δ = delta``: ``max(0, −delta) ≤ q10 ≤ (1 − delta)/2``."""
    lo, hi = max(0.0, -delta), (1.0 - delta) / 2.0
    return np.linspace(lo, hi, points)


def one_sided_p(g: int, l: int, n: int, delta: float, alternative: str, *, points: int = NUISANCE_GRID) -> float:
    """Exact unconditional p-value of ``H0: Δ ≤ delta`` (``alternative="greater"``) or ``Δ ≥ delta``
    (``"less"``), maximised over the nuisance ``q10``."""
    if n <= 0:
        raise ValueError("a paired difference needs n > 0")
    if not -1.0 <= delta <= 1.0:
        raise ValueError(f"a difference of proportions lies in [-1, 1], got {delta}")
    z_obs = float(score_z(g, l, n, delta))
    cg, cl, _ = _cells(n)
    z = score_z(cg, cl, n, delta)
    if alternative == "greater":
        extreme = z >= z_obs - _TIE
    elif alternative == "less":
        extreme = z <= z_obs + _TIE
    else:
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    return float(min(1.0, _tail(n, delta, nuisance_grid(delta, points), extreme).max()))


def _bound(g: int, l: int, n: int, alpha: float, alternative: str) -> float:
    """The confidence bound from inverting the one-sided test at level ``alpha``: bisection on δ0 between
    the estimate (never rejected) and the edge of [-1, 1] on the side the test rejects (the lower bound
    for ``greater``, the upper bound for ``less``)."""
    edge, inside = (-1.0 if alternative == "greater" else 1.0), (g - l) / n
    if one_sided_p(g, l, n, edge, alternative) > alpha:
        return edge
    for _ in range(BISECTIONS):
        mid = (edge + inside) / 2
        if one_sided_p(g, l, n, mid, alternative) <= alpha:
            edge = mid
        else:
            inside = mid
    return inside


def paired_counts(before: Sequence[bool], after: Sequence[bool]) -> tuple[int, int, int]:
    """``(n, gained, lost)`` of two paired binary outcome sequences."""
    b0, b1 = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    if b0.shape != b1.shape or b0.ndim != 1:
        raise ValueError(f"paired outcomes need two equal-length 1-D sequences, got {b0.shape} and {b1.shape}")
    if b0.size == 0:
        raise ValueError("no problems")
    return int(b0.size), int(np.sum(~b0 & b1)), int(np.sum(b0 & ~b1))


def paired_binary_difference(before: Sequence[bool], after: Sequence[bool], *, threshold: float = 0.0,
                             alternative: str = "two-sided", level: float = 0.95) -> PairedBinary:
    """``mean(after) − mean(before)`` over problems, with the exact two-sided ``level`` interval and the
    exact p-value against ``threshold`` (``alternative``: ``greater`` = the difference exceeds it,
    ``less`` = it is below it, ``two-sided`` = twice the smaller one-sided p)."""
    n, g, l = paired_counts(before, after)
    if alternative == "two-sided":
        p = min(1.0, 2 * min(one_sided_p(g, l, n, threshold, "greater"), one_sided_p(g, l, n, threshold, "less")))
    else:
        p = one_sided_p(g, l, n, threshold, alternative)
    alpha = (1 - level) / 2
    return PairedBinary((g - l) / n, _bound(g, l, n, alpha, "greater"), _bound(g, l, n, alpha, "less"), n, g, l,
                        p, threshold, alternative, level)


def paired_binary_equivalence(before: Sequence[bool], after: Sequence[bool], margin: float) -> float:
    """TOST p-value that ``|after − before| < margin`` (reject both ``Δ ≤ −margin`` and ``Δ ≥ margin``)."""
    if not 0 < margin < 1:
        raise ValueError(f"an equivalence margin lies in (0, 1), got {margin}")
    n, g, l = paired_counts(before, after)
    return max(one_sided_p(g, l, n, -margin, "greater"), one_sided_p(g, l, n, margin, "less"))


__all__ = ["NUISANCE_GRID", "PairedBinary", "nuisance_grid", "one_sided_p", "paired_binary_difference",
           "paired_binary_equivalence", "score_z"]
