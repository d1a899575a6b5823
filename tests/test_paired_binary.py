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


def _tango_z(g: int, l: int, n: int, delta: float) -> float:
    """Tango's score Z with the restricted maximum-likelihood q10 found numerically (not the quadratic root)."""
    from scipy.optimize import minimize_scalar

    lo, hi = max(0.0, -delta), (1.0 - delta) / 2.0

    def nll(q):
        q01, q00 = q + delta, 1.0 - 2 * q - delta
        return -(g * np.log(max(q01, 1e-300)) + l * np.log(max(q, 1e-300)) + (n - g - l) * np.log(max(q00, 1e-300)))

    q10 = minimize_scalar(nll, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12}).x
    return (g - l - n * delta) / np.sqrt(n * (2 * q10 + delta * (1 - delta)))


def test_score_z_is_tangos_statistic_at_the_restricted_mle():
    for g, l, n, delta in [(5, 30, 100, -0.2), (7, 2, 50, 0.03), (3, 0, 24, 0.0), (0, 0, 24, 0.01), (1, 0, 24, 0.01),
                           (0, 4, 24, -0.1), (10, 1, 40, 0.4), (2, 9, 30, -0.5)]:
        assert float(pb.score_z(g, l, n, delta)) == pytest.approx(_tango_z(g, l, n, delta), rel=1e-4), (g, l, n, delta)
    assert pb.score_z([3, 0], [1, 2], 24, 0.0) == pytest.approx([_tango_z(3, 1, 24, 0.0), _tango_z(0, 2, 24, 0.0)],
                                                                 rel=1e-4)
    # at delta = 1 every problem must be gained: that outcome is the null itself (Z = 0), any other impossible
    assert pb.score_z(24, 0, 24, 1.0) == 0.0 and pb.score_z(20, 0, 24, 1.0) == -np.inf
    assert pb.score_z(0, 24, 24, -1.0) == 0.0 and pb.score_z(0, 20, 24, -1.0) == np.inf


def test_one_sided_p_takes_the_whole_range_and_refuses_what_lies_outside_it():
    assert pb.one_sided_p(24, 0, 24, 1.0, "less") == pytest.approx(1.0)
    assert pb.one_sided_p(0, 24, 24, -1.0, "greater") == pytest.approx(1.0)
    one = pb.one_sided_p(1, 0, 1, 0.0, "greater")  # one problem is a valid sample
    assert one == pytest.approx(all_p_values(1, 0.0, "greater")[int(np.flatnonzero((pb._cells(1)[0] == 1)
                                                                                   & (pb._cells(1)[1] == 0))[0])])
    for bad in (-1.5, 1.5):
        with pytest.raises(ValueError, match=rf"^a difference of proportions lies in \[-1, 1\], got {bad}$"):
            pb.one_sided_p(1, 0, 5, bad, "greater")
    with pytest.raises(ValueError, match=r"^a paired difference needs n > 0$"):
        pb.one_sided_p(0, 0, 0, 0.0, "greater")


def test_one_sided_p_is_the_sup_over_the_nuisance_grid_it_is_given():
    g, l, n, delta = 6, 1, 30, 0.05
    cg, cl, logc = pb._cells(n)
    z = pb.score_z(cg, cl, n, delta)
    extreme = z >= float(pb.score_z(g, l, n, delta)) - pb._TIE
    for points in (2, 7):
        q = np.linspace(max(0.0, -delta), (1 - delta) / 2, points)
        ref = pb._pmf(n, delta, q, cg[extreme], cl[extreme], logc[extreme]).sum(1).max()
        assert pb.one_sided_p(g, l, n, delta, "greater", points=points) == pytest.approx(ref, rel=1e-12), points
    assert len(pb.nuisance_grid(0.1, 7)) == 7 and pb.nuisance_grid(-0.2, 3) == pytest.approx([0.2, 0.4, 0.6])


def test_paired_counts_reads_truthiness_and_needs_a_problem():
    assert pb.paired_counts([0, 1, 2, 0], [2, 1, 0, 0]) == (4, 1, 1)  # 2 counts as True on either side
    assert pb.paired_counts([True], [False]) == (1, 0, 1)
    with pytest.raises(ValueError, match=r"^no problems$"):
        pb.paired_counts([], [])


def test_the_two_sided_difference_doubles_the_smaller_side_and_keeps_its_arguments():
    before = [True] * 30 + [False] * 30
    after = [True] * 22 + [False] * 8 + [True] * 12 + [False] * 18  # 12 gained, 8 lost of 60
    d = pb.paired_binary_difference(before, after, threshold=0.05, level=0.9)
    ref = min(1.0, 2 * min(pb.one_sided_p(12, 8, 60, 0.05, "greater"), pb.one_sided_p(12, 8, 60, 0.05, "less")))
    assert d.p_value == pytest.approx(ref) and 0.5 < d.p_value < 1.0
    assert (d.n, d.gained, d.lost, d.threshold, d.alternative, d.level) == (60, 12, 8, 0.05, "two-sided", 0.9)
    assert pb.one_sided_p(12, 8, 60, d.lo - 1e-4, "greater") <= 0.05 < pb.one_sided_p(12, 8, 60, d.lo + 1e-4, "greater")
    lopsided = pb.paired_binary_difference([True] * 40, [False] * 10 + [True] * 30)
    assert lopsided.p_value == pytest.approx(2 * pb.one_sided_p(0, 10, 40, 0.0, "less"))
