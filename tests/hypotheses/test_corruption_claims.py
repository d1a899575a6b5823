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


def _failures(rate: float, n: int = N, positions: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, positions)) < rate


def test_cor01_guards_on_failure_rates_not_kl():
    """The source's guard: failure(sigma) does not fall as sigma rises, and tiny noise fails < 2% of problems."""
    rising = {s: _failures(0.05 * s, seed=i) for i, s in enumerate(corruption.ABSOLUTE_SIGMAS)}
    tiny_clean = np.zeros((N, 7), dtype=bool)
    holds, info = corruption.cor01_evidence(rising, tiny_clean)
    assert holds and info["share failing under sigma=0.01|h|"] == 0.0
    flat = {s: _failures(0.2, seed=i) for i, s in enumerate(corruption.ABSOLUTE_SIGMAS)}  # F-03's ~20% everywhere
    assert not corruption.cor01_evidence(flat, _failures(0.03))[0]  # tiny noise already breaks answers
    falling = {s: _failures(0.5 / s, seed=i) for i, s in enumerate(corruption.ABSOLUTE_SIGMAS)}
    assert not corruption.cor01_evidence(falling, tiny_clean)[0]


def test_cor01_tiny_failure_is_judged_by_its_interval():
    """1 problem of 100 failing is 1% (< 2%) but its interval reaches above 2%: the guard passes and records
    the interval; 10 of 100 (interval above 2%) fails it."""
    rising = {s: _failures(0.05 * s, seed=i) for i, s in enumerate(corruption.ABSOLUTE_SIGMAS)}
    tiny = np.zeros((N, 7), dtype=bool)
    tiny[0, 3] = True
    holds, info = corruption.cor01_evidence(rising, tiny)
    assert holds and info["its 95% interval"][1] > corruption.TINY_FAILURE
    tiny[:10, 0] = True
    assert not corruption.cor01_evidence(rising, tiny)[0]


def _artifact(n: int = N) -> dict:
    """The seeds' F-03 artifact: the same ~20% of problems fail at one position under every corruption."""
    fail = np.zeros((n, 7), dtype=bool)
    fail[: n // 5, 2] = True
    return {s: fail.copy() for s in corruption.ABSOLUTE_SIGMAS}


def test_cor01_catches_sigma_01_failing_as_often_as_zero_ablation():
    """claims.md COR-01: "if sigma = 0.1 already equals zero-ablation, the pipeline is broken". Failure flat at
    20% (never falling) with clean tiny noise passed the guard before; zero-ablation failing as often as
    sigma = 0.1 now fails it, and a zero-ablation that fails far more does not."""
    flat, tiny_clean = _artifact(), np.zeros((N, 7), dtype=bool)
    assert corruption.cor01_evidence(flat, tiny_clean)[0]  # without the zero-ablation arm: the old guard passed
    holds, info = corruption.cor01_evidence(flat, tiny_clean, flat[0.1])
    assert not holds and info["TOST p that sigma=0.1 fails as often as zero-ablation (within 5pp)"] < 0.025
    zero = np.zeros((N, 7), dtype=bool)
    zero[:60, 0] = True  # zero-ablation fails 60%, sigma = 0.1 20%: no artifact
    assert corruption.cor01_evidence(flat, tiny_clean, zero)[0]
    nothing = {s: np.zeros((N, 7), dtype=bool) for s in corruption.ABSOLUTE_SIGMAS}
    assert corruption.cor01_evidence(nothing, tiny_clean, nothing[0.1])[0]  # 0 = 0 (a random model) is no artifact


def test_cor01_tiny_share_counts_only_baseline_correct_problems():
    """3 of 100 problems failing is 3%, but only 50 answer right at baseline: 3 of 50 (6%) is judged."""
    rising = {s: _failures(0.05 * s, seed=i) for i, s in enumerate(corruption.ABSOLUTE_SIGMAS)}
    tiny = np.zeros((N, 7), dtype=bool)
    tiny[:3, 0] = True
    correct = np.zeros(N, dtype=bool)
    correct[:50] = True
    assert corruption.cor01_evidence(rising, tiny, correct=correct)[1]["share failing under sigma=0.01|h|"] == 0.06
