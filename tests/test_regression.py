"""codi_probe.regression: the one rule of --codi-compare and codi-probe compare."""

import pytest

from codi_probe.regression import (Rule, Tolerance, baseline_problems, differences, match, parse_claim_tolerance,
                                   parse_fail_on, problem_set_differences, weights_changed)


def claim(verdict="supported", value=0.5, lo=0.4, hi=0.6, kind="empirical", cid="C-01", statistic="rate"):
    return {"id": cid, "kind": kind, "verdict": verdict, "statistic": statistic, "value": value,
            "ci": {"lo": lo, "hi": hi, "level": 0.95}, "p_value": None, "n": 10, "min_n": None}


def kinds(findings, failing=True):
    return [f.kind for f in findings if f.fails is failing]


def test_a_flip_and_a_move_fail_by_default():
    assert kinds(Rule().check(claim(), claim(verdict="refuted", value=0.1, lo=0.0, hi=0.2))) == ["flip", "moved"]
    assert Rule().check(claim(), claim(value=0.6)) == []  # on the CI's edge


def test_the_widening_is_the_larger_of_abs_and_rel():
    assert Tolerance(0.01, 0.1).slack(0.5) == pytest.approx(0.05)
    assert Tolerance(0.2, 0.1).slack(0.5) == pytest.approx(0.2)
    assert kinds(Rule(tolerance=Tolerance(rel=0.1)).check(claim(), claim(value=0.64))) == []
    assert kinds(Rule(tolerance=Tolerance(rel=0.1)).check(claim(), claim(value=0.66))) == ["moved"]


def test_per_claim_tolerances_first_match_wins():
    rule = Rule(per_claim=(("C-*", Tolerance(abs=1.0)), ("*", Tolerance())))
    assert rule.tolerance_for("C-01").abs == 1.0 and rule.tolerance_for("D-01").abs == 0.0
    assert rule.check(claim(), claim(value=1.2)) == []
    assert rule.unused_patterns(["C-01"]) == []
    assert Rule(per_claim=(("X-*", Tolerance()),)).unused_patterns(["C-01"]) == ["X-*"]


def test_fail_on_chooses_what_fails_and_reports_the_rest():
    rule = Rule(fail_on=parse_fail_on("flip"))
    findings = rule.check(claim(), claim(value=0.9))
    assert kinds(findings) == [] and kinds(findings, failing=False) == ["moved"]
    assert parse_fail_on("none") == frozenset() and parse_fail_on("moved, flip") == {"flip", "moved"}
    with pytest.raises(ValueError, match="comma list"):
        parse_fail_on("flips")


def test_invariants_flip_but_never_move():
    assert kinds(Rule().check(claim(kind="invariant"), claim(kind="invariant", value=9.0))) == []
    assert kinds(Rule().check(claim(kind="invariant", verdict="refuted"), claim(kind="invariant"))) == ["flip"]


def test_a_renamed_statistic_is_not_a_move():
    assert Rule().check(claim(), claim(value=9.0, statistic="other")) == []


@pytest.mark.parametrize(("line", "expected"), [
    ("IMP-* abs=0.02", ("IMP-*", Tolerance(0.02, 0.0))),
    ("ACC-03 rel=0.1 abs=0.01", ("ACC-03", Tolerance(0.01, 0.1))),
])
def test_claim_tolerance_lines(line, expected):
    assert parse_claim_tolerance(line) == expected


@pytest.mark.parametrize("line", ["IMP-*", "IMP-* abs", "IMP-* abs=x", "IMP-* abs=1 abs=2", "IMP-* abs=-1"])
def test_malformed_claim_tolerance_lines(line):
    with pytest.raises(ValueError):
        parse_claim_tolerance(line)


def test_differences_name_what_differs_and_skip_what_an_old_report_lacks():
    old = {"model": {"sha256": "a", "n_layers": 4}, "options": {"seed": 0, "problems": None}, "schema_version": "1.2"}
    new = {"model": {"sha256": "b", "n_layers": 2}, "options": {"seed": 0, "problems": 7}, "schema_version": "1.3",
           "environment": {"packages": {"codi-probe": "0.2.0"}}}
    # an option left unset says what it means (issue 32 item 11: it read "problems per claim: 10 -> None")
    assert differences(old, new) == ["layers: 4 -> 2", "problems per claim: the tier's count (--codi-depth) -> 7",
                                     "report schema: 1.2 -> 1.3"]
    assert differences(new, new) == []
    assert weights_changed(old, new) == "weights sha256 a -> b" and weights_changed(old, old) is None


def test_another_revision_of_a_hub_repository_is_another_checkpoint_of_the_same_model():
    def run(sha, repo, commit):
        return {"model": {"sha256": sha, "n_layers": 4, "hub": {"model": {"repo_id": repo, "revision": "main",
                                                                         "commit": commit}}}}
    old, new = run("a" * 64, "owner/m", "1" * 40), run("b" * 64, "owner/m", "2" * 40)
    assert differences(old, new) == []  # comparable: a retrained checkpoint, as another file
    assert weights_changed(old, new) == f"weights sha256 {'a' * 12} -> {'b' * 12} (owner/m commit {'1' * 12} -> {'2' * 12})"
    assert weights_changed(old, run("b" * 64, "other/m", "2" * 40)) == f"weights sha256 {'a' * 12} -> {'b' * 12}"


def test_problem_sets_compare_by_fingerprint():
    old = {"data": {"a": {"fingerprint": "1" * 64}, "b": {"fingerprint": "2" * 64}, "depth": {"tier": "quick"}}}
    new = {"data": {"a": {"fingerprint": "1" * 64}, "b": {"fingerprint": "3" * 64}}}
    assert problem_set_differences(old, new) == ["problem set b: fingerprint 222222222222 -> 333333333333"]


def test_baseline_problems():
    whole = {"status": "complete", "environment": {"selection": {"subset": False}}}
    assert baseline_problems(whole) == []
    assert baseline_problems({"status": "interrupted"}) == ["its status is 'interrupted', not 'complete'"]
    subset = {"status": "complete", "environment": {"selection": {"subset": True, "keyword": "lens",
                                                                  "markexpr": "decided"}}}
    assert baseline_problems(subset) == ["it ran a subset (-k 'lens', -m 'decided')"]


def test_match_prefers_the_same_nodeid_among_duplicates():
    a, b = dict(claim(), nodeid="t.py::a"), dict(claim(value=0.1), nodeid="t.py::b")
    assert match([a, b], "C-01", "t.py::b")["value"] == 0.1
    assert match([a, b], "C-01", "t.py::c") is None  # ambiguous
    assert match([a], "C-01", "t.py::c")["value"] == 0.5 and match([a], "D-01", None) is None


LAY03_STAT = "mean |LD(iterative, last stage) - LD(parallel)| (logits)"


def test_float_noise_of_the_runs_dtype_is_not_a_move():
    """Issue 32 item 5: LAY-03 at 0 against a baseline of 1.9e-6 (CI 9.5e-7 to 2.9e-6) is round-off, not a move."""
    old = claim(value=1.9e-6, lo=9.5e-7, hi=2.9e-6, statistic=LAY03_STAT, cid="LAY-03")
    new = claim(value=0.0, lo=0.0, hi=0.0, statistic=LAY03_STAT, cid="LAY-03")
    assert kinds(Rule().check(old, new)) == []
    assert kinds(Rule(dtype="float32").check(old, new)) == []
    # a real move, far beyond the fp32 logit tolerance (1e-4 + 1e-4|v|), still fails
    assert kinds(Rule(dtype="float32").check(old, claim(value=0.01, statistic=LAY03_STAT, cid="LAY-03"))) == ["moved"]
    # bf16's tolerance is wider: 0.05 logits is within it, 0.2 is not
    assert kinds(Rule(dtype="bfloat16").check(old, claim(value=0.05, statistic=LAY03_STAT, cid="LAY-03"))) == []
    assert kinds(Rule(dtype="bfloat16").check(old, claim(value=0.2, statistic=LAY03_STAT, cid="LAY-03"))) == ["moved"]


def test_the_float_slack_follows_the_statistics_unit():
    from codi_probe.regression import float_slack, statistic_unit
    from codi_probe.tolerance import TOLERANCES

    assert statistic_unit(LAY03_STAT) == "states"
    assert statistic_unit("mean KL at the answer-number token (nats)") == "kl"
    # a counted share gets no float slack, whatever it counts (COR-02's and LAY-03's statistics)
    assert statistic_unit("share of problems with KL >= 0.01 nats at the answer-number token") == "exact"
    assert statistic_unit("share of problems with |LD(iterative, last stage) - LD(parallel)| >= 0.001 logits") == "exact"
    assert statistic_unit("GSM8K test accuracy") == "exact"
    assert statistic_unit("answer-change rate, norm-preserving noise on e_3") == "exact"
    assert statistic_unit("mean pairwise cosine of h_1..h_6") == "states"
    assert float_slack("mean KL at the answer-number token (nats)", 0.5, "float32") == TOLERANCES["float32"].kl
    assert float_slack("GSM8K test accuracy", 0.5, "bfloat16") == 0.0  # counted outcomes: round-off moves no count
    # an accuracy of a counted run moves at any float dtype by 1/n
    assert kinds(Rule(dtype="bfloat16").check(claim(statistic="accuracy"), claim(value=0.61, statistic="accuracy"))) \
        == ["moved"]


def test_compare_takes_the_float_noise_of_the_new_runs_dtype():
    from codi_probe.regression import run_dtype

    assert run_dtype({"model": {"dtype": "bfloat16"}, "options": {"dtype": "fp32"}}) == "bfloat16"
    assert run_dtype({"model": None, "options": {"dtype": "mixed"}}) == "bfloat16"
    assert run_dtype({"options": {"dtype": "native"}}) is None
