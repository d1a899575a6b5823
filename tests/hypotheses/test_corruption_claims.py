"""COR-03 and COR-01 of ``hypotheses/test_corruption.py`` test what claims.md 4.C states: synthetic per-problem
outcomes go through the claims' own evidence functions (no model run)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from codi_probe import stats
from codi_probe.hypothesis import combine, decide
from codi_probe.hypotheses import test_corruption as corruption

N = 100
COR03 = replace(corruption.COR03, min_n=N)  # its 500-problem minimum lowered: the predictions are tested here
CONTROLS = {COR03.controls[0]: True}


def _cor03(base, negated, discretized, plus_one) -> str:
    return decide(combine(COR03, corruption.cor03_evidence(base, negated, discretized, plus_one), N, CONTROLS)).verdict


def _disc(drop: int):
    d, p = np.ones(N, dtype=bool), np.ones(N, dtype=bool)
    p[:drop] = False
    return d, p


def _negation_helps():
    """Negation that *raises* accuracy by 15pp (baseline 50%)."""
    base = np.zeros(N, dtype=bool)
    base[:50] = True
    negated = base.copy()
    negated[50:65] = True
    return base, negated


def test_cor03_negation_is_one_sided_non_inferiority():
    """Negation that raises accuracy by 15pp: the source's claim (acc(-h) >= acc(h) - 3pp) holds; the old
    two-sided TOST within +-3pp refuted it."""
    base, negated = _negation_helps()
    assert _cor03(base, negated, *_disc(40)) == "supported"
    from codi_probe.hypothesis import Hypothesis, Prediction

    tost = Prediction("accuracy change under h -> -h", "equivalent", 0.03)
    old = stats.paired_binary_evidence(base, negated, tost)
    assert decide(combine(Hypothesis(tost, min_n=N), [old], N)).verdict == "refuted"


def test_cor03_discretize_plus_one_is_a_refutable_prediction():
    assert _cor03(*_negation_helps(), *_disc(40)) == "supported"
    assert _cor03(*_negation_helps(), *_disc(0)) == "refuted"  # the exact value does not matter
