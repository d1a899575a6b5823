"""ATT-01 of ``hypotheses/test_attention.py`` measures importance as claims.md 4.D states (binary zero-ablation
failure, not the KL): synthetic per-problem grids go through the claim's own functions (no model run)."""

from __future__ import annotations

import numpy as np

from codi_probe.hypothesis import combine, decide
from codi_probe.hypotheses import test_attention as attention


class _Grid:
    """A corruption grid's ``per_position`` over 7 positions: ``failure`` and ``kl`` per (problem, position)."""

    def __init__(self, failure: np.ndarray, kl: np.ndarray):
        self.data = {"failure": failure, "kl": kl}

    def per_position(self, metric: str, method: str | None = None) -> np.ndarray:
        return self.data[metric]


def test_att01_importance_is_binary_failure_not_kl():
    rng = np.random.default_rng(0)
    n = 100
    att = rng.uniform(size=(n, 7))
    kl = att + 0.01 * rng.uniform(size=(n, 7))  # the KL follows attention exactly
    failure = np.zeros((n, 7), dtype=bool)
    failure[np.arange(n), np.argmin(att, 1)] = True  # but the answer fails where attention is lowest
    grid = _Grid(failure, kl)
    imp = attention.importance(grid)
    assert imp.dtype == float and np.array_equal(imp, failure.astype(float))
    ev, m = attention.correlation_evidence(att, imp, attention.ATT01, seed=0)
    assert decide(combine(attention.ATT01, ev, m)).verdict == "refuted"
    ev, m = attention.correlation_evidence(att, grid.per_position("kl"), attention.ATT01, seed=0)  # the old importance
    assert decide(combine(attention.ATT01, ev, m)).verdict == "supported"
