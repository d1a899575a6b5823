"""The shared verdict rule: declared hypotheses, controls, minimum n, combination and family adjustment."""

import pytest

from codi_probe.hypothesis import (ALPHA, Evidence, Hypothesis, Outcome, Prediction, adjust_family, any_shown, combine,
                                   decide, shown)


def ev(name: str, ps: float, pr: float, n: int = 100) -> Evidence:
    return Evidence(name, 0.5, 0.4, 0.6, n, ps, pr, "synthetic")


A, B = Prediction("a", "greater", 0.1), Prediction("b", "less", 0.2)


def verdict(hyp, evidence, n=100, controls=None):
    return decide(combine(hyp, evidence, n, controls)).verdict


def test_single_prediction_is_decided_by_its_two_one_sided_p_values():
    hyp = Hypothesis(A)
    assert verdict(hyp, [ev("a", 0.001, 0.99)]) == "supported"
    assert verdict(hyp, [ev("a", 0.99, 0.001)]) == "refuted"
    assert verdict(hyp, [ev("a", 0.2, 0.3)]) == "inconclusive"
    assert verdict(hyp, [ev("a", ALPHA, 0.5)]) == "inconclusive"  # strictly below ALPHA


def test_below_the_minimum_n_is_inconclusive_and_says_so():
    hyp = Hypothesis(A, min_n=50)
    out = decide(combine(hyp, [ev("a", 1e-9, 1.0)], 49))
    assert out.verdict == "inconclusive" and out.reason == "n below minimum (49 < 50)"
    assert verdict(hyp, [ev("a", 1e-9, 1.0)], 50) == "supported"


def test_a_failed_control_is_invalid_not_refuted():
    """IMP-13 / PATCH-01 scored a failed positive control as "refuted"."""
    hyp = Hypothesis(A, controls=("positive control",))
    out = decide(combine(hyp, [ev("a", 0.99, 0.001)], 100, {"positive control": False}))
    assert out.verdict == "invalid" and "positive control" in out.reason
    assert verdict(hyp, [ev("a", 0.99, 0.001)], 100, {"positive control": True}) == "refuted"
    with pytest.raises(ValueError, match="missing"):
        combine(hyp, [ev("a", 0.5, 0.5)], 100, {})
    with pytest.raises(ValueError, match="undeclared"):
        combine(Hypothesis(A), [ev("a", 0.5, 0.5)], 100, {"surprise": True})


def test_all_of_needs_every_prediction_and_one_refutation_refutes_after_holm():
    hyp = Hypothesis((A, B))
    assert verdict(hyp, [ev("a", 0.001, 1), ev("b", 0.001, 1)]) == "supported"
    assert verdict(hyp, [ev("a", 0.001, 1), ev("b", 0.3, 0.3)]) == "inconclusive"
    assert verdict(hyp, [ev("a", 0.001, 1), ev("b", 1, 0.001)]) == "refuted"
    assert verdict(hyp, [ev("a", 0.001, 1), ev("b", 1, 0.02)]) == "inconclusive"  # 2 x 0.02 > ALPHA
    with pytest.raises(ValueError, match="cover the declared"):
        combine(hyp, [ev("a", 0.001, 1)], 100)


def test_any_of_mirrors_all_of():
    hyp = Hypothesis((A, B), combine="any")
    assert verdict(hyp, [ev("a", 0.001, 1), ev("b", 0.9, 0.1)]) == "supported"
    assert verdict(hyp, [ev("a", 0.02, 1), ev("b", 0.9, 0.1)]) == "inconclusive"  # Holm over the two
    assert verdict(hyp, [ev("a", 1, 0.001), ev("b", 1, 0.01)]) == "refuted"
    assert verdict(hyp, [ev("a", 1, 0.001), ev("b", 0.5, 0.5)]) == "inconclusive"


def test_family_adjustment_holm_and_bh():
    """A scan over 6 positions with one raw p of 0.01 per member is not 6 supported claims."""
    hyp = Hypothesis(A)
    members = {f"P{k}": combine(hyp, [ev("a", 0.01, 1.0)], 100) for k in range(1, 7)}
    members["P7"] = combine(Hypothesis(A, min_n=500), [], 100)  # not tested: not counted
    adjusted = adjust_family(members, "holm")
    assert all(decide(adjusted[k], family_size=6).verdict == "inconclusive" for k in members if k != "P7")
    assert adjusted["P1"].raw == (0.01, 1.0) and adjusted["P1"].p_support == pytest.approx(0.06)
    assert adjusted["P7"].verdict == "inconclusive"
    strong = dict(members, P1=combine(hyp, [ev("a", 0.001, 1.0)], 100))
    assert decide(adjust_family(strong, "holm")["P1"]).verdict == "supported"
    bh = adjust_family(members, "fdr_bh")
    assert bh["P1"].p_support == pytest.approx(0.01)  # equal p-values: BH leaves them


def test_declarations_are_validated():
    with pytest.raises(ValueError):
        Prediction("x", "bigger", 0)
    with pytest.raises(ValueError):
        Prediction("x", "equivalent", 0)
    with pytest.raises(ValueError):
        Hypothesis((A, A))
    with pytest.raises(ValueError):
        Hypothesis(A, combine="some")
    assert Hypothesis(A).to_dict()["predictions"][0] == {"statistic": "a", "direction": "greater", "threshold": 0.1}


def test_controls_are_shown_only_by_a_significant_effect():
    assert shown(ev("c", 0.001, 1)) and not shown(ev("c", 0.2, 0.5))
    assert any_shown([ev("c", 0.02, 1), ev("d", 0.001, 1)])
    assert not any_shown([ev("c", 0.02, 1), ev("d", 0.02, 1)])  # Holm: 2 x 0.02 > ALPHA
    assert not any_shown([])


def test_outcome_of_a_claim_that_did_not_test_keeps_its_reason():
    out = decide(Outcome(None, None, 3, "invalid", "failed control: x"))
    assert (out.verdict, out.reason) == ("invalid", "failed control: x")


def test_an_evidence_reason_reaches_the_verdict_through_the_family_adjustment():
    """A degenerate or excluding evidence states why (Evidence.reason); the verdict's reason carries it,
    also after the family adjustment, and problems it excluded do not count towards the minimum n."""
    from codi_probe.hypothesis import Evidence, adjust_family

    hyp = Hypothesis(Prediction("a", "greater", 0.1), min_n=10)
    noted = Evidence("a", 0.5, 0.3, 0.7, 12, 0.001, 0.9, "m", reason="2 problem(s) excluded", excluded=2)
    plain = Evidence("a", 0.5, 0.3, 0.7, 12, 0.001, 0.9, "m")
    family = {"x": combine(hyp, [noted], 12), "y": combine(hyp, [plain], 12)}
    adjusted = adjust_family(family)
    assert "2 problem(s) excluded" in decide(adjusted["x"], family_size=2).reason
    assert "excluded" not in decide(adjusted["y"], family_size=2).reason
    short = combine(hyp, [Evidence("a", 0.5, 0.3, 0.7, 9, 0.001, 0.9, "m", excluded=3)], 12)
    assert short.verdict == "inconclusive" and "9 after excluding 3" in short.reason


def test_a_control_is_shown_only_strictly_below_alpha():
    """``shown`` and ``any_shown`` use the same strict ``p < ALPHA`` as the verdict (found by mutation testing)."""
    def ev(p):
        return Evidence("c", 0.0, 0.0, 0.0, 50, p, 1.0, "m")

    assert not shown(ev(ALPHA)) and shown(ev(ALPHA * 0.999))
    assert not any_shown([ev(ALPHA / 2), ev(1.0)])  # Holm over two: 2 x ALPHA/2 = ALPHA is not below it
    assert any_shown([ev(ALPHA / 2.01), ev(1.0)]) and not any_shown([])


# ---- found by mutation testing (docs/mutation.md) ----------------------------------------------------

def _ev(name, ps, pr, excluded=0):
    return Evidence(name, 0.0, 0.0, 0.0, 60, ps, pr, "m", excluded=excluded)


def test_the_verdict_is_strict_at_alpha_on_both_sides():
    assert decide(Outcome(ALPHA, 1.0, 60)).verdict == "inconclusive"
    assert decide(Outcome(1.0, ALPHA, 60)).verdict == "inconclusive"
    assert decide(Outcome(1.0, ALPHA * 0.999, 60)).verdict == "refuted"


def test_a_family_of_two_is_adjusted_and_named_in_the_verdict():
    raw = {"a": Outcome(0.01, 0.5, 60), "b": Outcome(0.02, 0.9, 60)}
    adj = adjust_family(raw)
    assert (adj["a"].p_support, adj["b"].p_support) == (pytest.approx(0.02), pytest.approx(0.02))
    assert adj["a"].n == 60 and adj["b"].n == 60
    v = decide(adj["a"], family_size=2)
    assert v.family == {"size": 2, "correction": "holm"} and "after holm over 2 family members" in v.reason
    assert decide(adj["a"]).family == {}
    invalid = decide(Outcome(None, None, 60, "invalid", "failed control: c"), family_size=3, correction="fdr_bh")
    assert invalid.family == {"size": 3, "correction": "fdr_bh"} and invalid.reason == "failed control: c"


def test_combine_keeps_n_in_every_branch_and_caps_the_holm_minimum_at_1():
    h = Hypothesis((Prediction("a", "greater", 0.0), Prediction("b", "greater", 0.0)), min_n=60,
                   controls=("c",))
    tested = combine(h, [_ev("a", 0.01, 0.6), _ev("b", 0.01, 0.7)], n=60, controls={"c": True})
    assert (tested.n, tested.p_refute) == (60, 1.0)  # Holm over two: min(1, 2 x 0.6)
    assert combine(h, [_ev("a", 0.01, 0.6), _ev("b", 0.01, 0.7)], n=60, controls={"c": False}).n == 60
    assert combine(h, [_ev("a", 0.01, 0.6), _ev("b", 0.01, 0.7)], n=59, controls={"c": True}).n == 59
    with pytest.raises(ValueError, match="evidence must cover"):  # no evidence: nothing excluded, n = min_n tests
        combine(h, [], n=60, controls={"c": True})


def test_a_prediction_and_a_hypothesis_describe_themselves():
    assert Prediction("x", "greater", 0.2).describe() == "x > 0.2"
    assert Prediction("x", "less", 0.25).describe() == "x < 0.25"
    assert Prediction("x", "equivalent", 0.05).describe() == "x within ±0.05"
    d = Hypothesis((Prediction("x", "greater", 0.2), Prediction("y", "less", 0.1, effect=0.05)), combine="any").to_dict()
    assert d["alpha"] == ALPHA and d["statement"] == "x > 0.2 ANY y < 0.1"
    assert "effect" not in d["predictions"][0] and d["predictions"][1]["effect"] == 0.05


def test_an_invariant_is_supported_when_it_holds_and_refuted_when_not():
    from codi_probe.hypothesis import invariant_verdict

    assert (invariant_verdict(True), invariant_verdict(False)) == ("supported", "refuted")


def test_a_bad_prediction_is_refused_with_a_message_naming_it():
    with pytest.raises(ValueError, match=r"^prediction 'x': an effect for the power must be > 0$"):
        Prediction("x", "greater", 0.1, effect=0.0)
    with pytest.raises(ValueError, match=r"^prediction 'x': direction must be one of .*greater.*, got 'bigger'$"):
        Prediction("x", "bigger", 0.1)
    with pytest.raises(ValueError, match=r"^prediction 'x': an equivalence margin must be > 0$"):
        Prediction("x", "equivalent", 0.0)
    assert Prediction("x", "greater", 0.1, effect=1e-9).effect == 1e-9


def test_a_failed_control_names_every_failed_control():
    h = Hypothesis(Prediction("a", "greater", 0.0), min_n=10, controls=("c", "d", "e"))
    out = combine(h, [_ev("a", 0.001, 0.9)], n=60, controls={"c": False, "d": True, "e": False})
    assert (out.verdict, out.reason) == ("invalid", "failed control: c, e")


def test_a_bad_hypothesis_is_refused_with_a_message_naming_it():
    with pytest.raises(ValueError, match=r"^a hypothesis needs at least one prediction$"):
        Hypothesis(())
    with pytest.raises(ValueError, match=r"^combine must be one of .*'all'.*, got 'some'$"):
        Hypothesis(A, combine="some")
    with pytest.raises(ValueError, match=r"^correction must be one of .*'holm'.*, got 'sidak'$"):
        Hypothesis(A, correction="sidak")
    with pytest.raises(ValueError, match=r"^min_n must be >= 1$"):
        Hypothesis(A, min_n=0)
    with pytest.raises(ValueError, match=r"^prediction statistics must be distinct, got \['a', 'a'\]$"):
        Hypothesis((A, A))
    h = Hypothesis([A, B], controls=["c"])  # lists are stored as tuples (the dataclass is frozen and hashable)
    assert (h.predictions, h.controls) == ((A, B), ("c",)) and hash(h) == hash(Hypothesis((A, B), controls=("c",)))


def test_the_verdict_reason_names_the_test_the_family_and_the_notes():
    out = Outcome(0.001, 0.9, 60, notes=("a: 2 problem(s) excluded", "b: no spread"))
    v = decide(out)
    assert (v.verdict, v.p_support, v.p_refute, v.family) == ("supported", 0.001, 0.9, {})
    assert v.reason == "p_support=0.001 < 0.025; a: 2 problem(s) excluded; b: no spread"
    assert decide(Outcome(0.001, 0.9, 60)).reason == "p_support=0.001 < 0.025"
    fam = decide(Outcome(0.3, 0.01, 60), family_size=3, correction="fdr_bh")
    assert (fam.verdict, fam.reason) == ("refuted", "p_refute=0.01 < 0.025 after fdr_bh over 3 family members")
    assert decide(Outcome(0.3, 0.2, 60)).reason == "neither test rejects (p_support=0.3, p_refute=0.2)"
