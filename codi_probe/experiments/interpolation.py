"""Reading INTERP-01's answers: does interpolating a latent between two problems give intermediate answers?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class PathSummary:
    """One pair's answers along alpha = 0..1: ``tau`` is Kendall's tau of answer against alpha, signed
    so that moving from a1 towards a2 is positive; ``between``: some alpha gives an answer strictly
    between a1 and a2 (what "intermediate answers" means; a step function never does); ``outside``:
    the share of alphas whose answer is neither a1 nor a2."""

    tau: float
    between: bool
    outside: float


def summarise_path(alphas: Sequence[float], answers: Sequence[float | None]) -> PathSummary | None:
    """``None`` when the pair cannot speak: an unparsable answer or equal endpoints."""
    a1, a2 = answers[0], answers[-1]
    if a1 is None or a2 is None or a1 == a2 or any(x is None for x in answers):
        return None
    tau = float(sps.kendalltau(alphas, answers).statistic) * float(np.sign(a2 - a1))
    lo, hi = min(a1, a2), max(a1, a2)
    return PathSummary(tau, any(lo < x < hi for x in answers), float(np.mean([x not in (a1, a2) for x in answers])))
