"""Exact paired tests for binary outcomes: sizes computed exactly (no Monte-Carlo error) over a nuisance
grid four times finer than the test's own, power against the stated normal-approximation calculation,
and the zero-discordance case that a t-test on {-1, 0, 1} differences got wrong."""

import numpy as np
import pytest
from scipy import stats as st

from codi_probe import paired_binary as pb

ALPHA = 0.05
GRID_SLACK = 1e-3  # the sup over a 200-point nuisance grid may miss a peak between points by this much


def all_p_values(n: int, delta: float, alternative: str) -> np.ndarray:
    """The p-value of every outcome (g, l) at once, re-derived independently of ``one_sided_p``: sort
    the outcomes by Z, accumulate their probabilities per nuisance value, take the sup."""
    g, l, logc = pb._cells(n)
    z = pb.score_z(g, l, n, delta)
    key = -z if alternative == "greater" else z
    order = np.argsort(key, kind="stable")
    ks = key[order]
    tail = pb._pmf(n, delta, pb.nuisance_grid(delta), g[order], l[order], logc[order]).cumsum(1)
    last = np.searchsorted(ks, ks + pb._TIE, side="right") - 1  # ties share the whole tied block
    p = np.empty(len(z))
    p[order] = np.minimum(1.0, tail[:, last].max(0))
    return p


def exact_size(n: int, delta: float, reject: np.ndarray) -> float:
    """The largest probability of the rejection set under ``Δ = delta``, over a 4x finer nuisance grid."""
    g, l, logc = pb._cells(n)
    q = pb.nuisance_grid(delta, 4 * pb.NUISANCE_GRID)
    return float(pb._pmf(n, delta, q, g[reject], l[reject], logc[reject]).sum(1).max())


def test_the_independent_derivation_agrees_with_one_sided_p():
    for g, l, n, delta, alt in [(3, 0, 24, 0.0, "greater"), (0, 5, 50, -0.03, "less"), (7, 2, 50, 0.03, "greater"),
                                (0, 0, 24, 0.03, "less")]:
        cg, cl, _ = pb._cells(n)
        i = int(np.flatnonzero((cg == g) & (cl == l))[0])
        assert pb.one_sided_p(g, l, n, delta, alt) == pytest.approx(all_p_values(n, delta, alt)[i], abs=1e-12)


@pytest.mark.parametrize("n", [24, 50, 100])
@pytest.mark.parametrize("delta", [-0.2, -0.03, 0.0, 0.03, 0.2])
@pytest.mark.parametrize("alternative", ["greater", "less"])
@pytest.mark.parametrize("alpha", [ALPHA, ALPHA / 2])
def test_one_sided_tests_hold_their_level_exactly(n, delta, alternative, alpha):
    """Calibration under the null, including rare discordance (nuisance q10 near 0) and small n: the
    exact rejection probability never exceeds alpha. alpha/2 is the level each side of a 95% interval
    uses, so this is also the interval's coverage (an interval excludes δ0 exactly when a side rejects)."""
    size = exact_size(n, delta, all_p_values(n, delta, alternative) <= alpha)
    assert size <= alpha + GRID_SLACK
    if n >= 50:
        assert size >= 0.6 * alpha  # and it is not so conservative that it wastes the sample


@pytest.mark.parametrize("n, margin", [(24, 0.03), (50, 0.05), (100, 0.1)])
def test_equivalence_holds_its_level_at_both_margins(n, margin):
    reject = (all_p_values(n, -margin, "greater") <= ALPHA) & (all_p_values(n, margin, "less") <= ALPHA)
    for delta in (-margin, margin):
        assert exact_size(n, delta, reject) <= ALPHA + GRID_SLACK


def test_no_discordant_pair_never_proves_equivalence_at_24_problems():
    """The defect of the t-test TOST: 24 problems with no discordant pair "proved" ±3 pp (p = 0)."""
    for k in (0, 12, 24):  # all wrong, half right, all right: no pair changes
        outcome = [True] * k + [False] * (24 - k)
        assert pb.paired_binary_equivalence(outcome, outcome, 0.03) > ALPHA
        est = pb.paired_binary_difference(outcome, outcome)
        assert est.value == 0 and est.lo < -0.1 and est.hi > 0.1 and est.p_value == 1.0


def test_power_matches_the_stated_normal_approximation():
    """Stated power calculation (Connor 1987): for H0 Δ ≤ 0 against Δ = q01 − q10 with ψ = q01 + q10,
    power ≈ Φ((Δ·√n − z_(1−α)·√ψ) / √(ψ − Δ²)). The exact power of the test is within 0.05 of it."""
    n, q10, q01 = 100, 0.05, 0.17
    reject = all_p_values(n, 0.0, "greater") <= ALPHA
    g, l, logc = pb._cells(n)
    exact = float(pb._pmf(n, q01 - q10, np.array([q10]), g[reject], l[reject], logc[reject]).sum())
    delta, psi = q01 - q10, q01 + q10
    approx = st.norm.cdf((delta * np.sqrt(n) - st.norm.ppf(1 - ALPHA) * np.sqrt(psi)) / np.sqrt(psi - delta ** 2))
    assert abs(exact - approx) <= 0.05 and exact > 0.6


def test_threshold_p_values_and_interval_duality():
    """p-values test the claim's threshold, not 0; the interval bounds sit where a side's p crosses alpha/2."""
    before = [True] * 80 + [False] * 20
    after = [False] * 30 + [True] * 50 + [True] * 5 + [False] * 15  # 5 gained, 30 lost: -25 pp
    drop20 = pb.paired_binary_difference(before, after, threshold=-0.20, alternative="less")
    assert drop20.value == pytest.approx(-0.25) and drop20.p_value > ALPHA  # not shown to drop by more than 20 pp
    drop10 = pb.paired_binary_difference(before, after, threshold=-0.10, alternative="less")
    assert drop10.p_value < ALPHA  # but shown to drop by more than 10 pp
    assert drop20.lo < -0.25 < drop20.hi < -0.10
    g, l = drop20.gained, drop20.lost
    assert pb.one_sided_p(g, l, 100, drop20.lo - 1e-4, "greater") <= 0.025 < pb.one_sided_p(g, l, 100, drop20.lo + 1e-4, "greater")
    assert pb.one_sided_p(g, l, 100, drop20.hi + 1e-4, "less") <= 0.025 < pb.one_sided_p(g, l, 100, drop20.hi - 1e-4, "less")


def test_bad_input_is_one_line():
    with pytest.raises(ValueError, match="equal-length"):
        pb.paired_binary_difference([True], [True, False])
    with pytest.raises(ValueError, match="margin"):
        pb.paired_binary_equivalence([True], [True], 0.0)
    with pytest.raises(ValueError, match="alternative"):
        pb.one_sided_p(1, 0, 5, 0.0, "two")


def test_the_calibration_bites_on_the_asymptotic_score_test():
    """Planted bug: Tango's score test with its normal approximation (what this module does *not* use)
    is anti-conservative at rare discordance; the same exact-size harness catches it."""
    n, delta = 100, -0.03
    g, l, _ = pb._cells(n)
    asymptotic = pb.score_z(g, l, n, delta) <= -st.norm.ppf(1 - ALPHA)
    assert exact_size(n, delta, asymptotic) > ALPHA + GRID_SLACK


def test_equivalence_is_shown_with_many_balanced_discordant_pairs_and_bounded_by_its_worse_side():
    """Found by mutation testing: the TOST is the larger of its two one-sided p-values, each at its own
    margin, and a margin must lie strictly inside (0, 1)."""
    before = [True] * 20 + [False] * 20 + [True] * 180 + [False] * 180  # 20 gained, 20 lost of 400
    after = [False] * 20 + [True] * 20 + [True] * 180 + [False] * 180
    lower, upper = pb.one_sided_p(20, 20, 400, -0.1, "greater"), pb.one_sided_p(20, 20, 400, 0.1, "less")
    assert pb.paired_binary_equivalence(before, after, 0.1) == max(lower, upper) < ALPHA
    shifted = [True] * 60 + [False] * 340  # 60 gained, none lost: +15pp, outside a 10pp margin
    p = pb.paired_binary_equivalence([False] * 400, shifted, 0.1)
    assert p == pb.one_sided_p(60, 0, 400, 0.1, "less") > 0.5
    with pytest.raises(ValueError, match="margin"):
        pb.paired_binary_equivalence(before, after, 1.0)
