"""Expectation profiles: empirical claims pass or fail against the expected verdict."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CLAIMS = """
import os
import pytest

@pytest.mark.claim(id="IMP-01", statement="token 5 matters most", source="GS, 3x gap", reported=3.0,
                   kind="empirical")
@pytest.mark.parametrize("pos", ["P3", "P5"])
def test_imp(claim, pos):
    claim.record("gap", 0.2, ci=(0.1, 0.3), p_value=0.04, n=10, verdict=os.environ.get("VERDICT_" + pos, "refuted"))

@pytest.mark.claim(id="ATT-01", statement="attention", kind="empirical")
def test_att(claim):
    claim.record("mass", 0.5, verdict="inconclusive")

@pytest.mark.claim(id="SAN-01", statement="mask is causal", kind="invariant")
def test_san():
    assert True
"""


def profile(pytester: pytest.Pytester, text: str) -> str:
    pytester.makefile(".toml", profile=text)
    return f"--codi-expect={pytester.path / 'profile.toml'}"


@pytest.mark.parametrize(("verdict", "passes"), [("supported", True), ("refuted", False)])
def test_profile_passes_and_fails(verdict: str, passes: bool, pytester: pytest.Pytester,
                                  monkeypatch: pytest.MonkeyPatch, run_claims) -> None:
    pytester.makepyfile(test_claims=CLAIMS)
    monkeypatch.setenv("VERDICT_P5", verdict)
    run = run_claims(profile(pytester, 'default = "record"\n[claims]\n"IMP-01" = "refuted"\n'
                                       '"IMP-01[P5]" = "supported"\n"SAN-01" = "refuted"\n'))
    run.result.assert_outcomes(passed=4 if passes else 3, failed=0 if passes else 1)
    claim = run.claim("IMP-01[P5]")
    assert claim["expected"] == "supported" and claim["verdict"] == verdict
    assert run.claim("IMP-01[P3]")["expected"] == "refuted"  # the marker id when the full id is not listed
    assert run.claim("SAN-01")["expected"] is None  # invariants judge themselves
    if not passes:
        message = "IMP-01[P5]: expected supported, measured refuted (gap=0.2 CI95[0.1, 0.3] p=0.04 n=10)"
        assert message in run.output
        assert claim["failures"] == [message] and claim["outcome"] == "failed"
        assert claim["value"] == 0.2  # the numbers survive the failure
        assert run.report["summary"]["check_failures"] == 1


def test_default_and_verdict_lists(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_claims=CLAIMS)
    run = run_claims(profile(pytester, 'default = "supported"\n[claims]\n"ATT-01" = ["supported", "inconclusive"]\n'))
    run.result.assert_outcomes(passed=2, failed=2)  # both IMP-01 are refuted, default says supported
    assert run.claim("ATT-01")["expected"] == "supported|inconclusive"
    assert run.report["expectations"]["source"] == "option"


def test_record_only_never_fails_but_needs_a_verdict(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_claims=CLAIMS + """
@pytest.mark.claim(id="NOV-01", statement="forgot the verdict", kind="empirical")
def test_no_verdict(claim):
    claim.record("m", 1.0)
""")
    run = run_claims("--codi-expect=none")
    run.result.assert_outcomes(passed=4, failed=1)
    assert "NOV-01: empirical claim recorded no verdict" in run.output
    assert run.report["expectations"] == {"source": "none", "path": None, "default": "record", "claims": {}}


@pytest.mark.parametrize(("model", "mechanism"), [("tiny-random-gpt2", "random"), ("tiny-random-llama", "random"),
                                                  ("codi-tiny-arith", "not planted"), ("some/other-model", "not planted")])
def test_profile_follows_the_models_design(model: str, mechanism: str, pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_claims=CLAIMS)
    expectations = run_claims(f"--codi-model={model}").report["expectations"]
    assert expectations["source"] == "design" and expectations["design"]["mechanism"] == mechanism
    assert expectations["default"] == "record" and "decides nothing" in expectations["default_why"]
    assert set(expectations["why"]) == set(expectations["claims"])  # every entry carries its reason
    if mechanism == "random":
        assert expectations["claims"]["IMP-01[P5]"] == "refuted|inconclusive|invalid"
    else:
        assert expectations["claims"] == {}


def test_a_retrained_model_is_checked_against_its_own_map(pytester: pytest.Pytester, run_claims) -> None:
    """The profile comes from the checkpoint's codi_config.json, so another carrier map gives other pins."""
    import json

    ckpt = pytester.mkdir("ckpt")
    (ckpt / "codi_config.json").write_text(json.dumps(
        {"design": {"mechanism": "planted", "carriers": {"step1": "P3", "step2": "P5"}, "how": "test"}}))
    pytester.makepyfile(test_claims=CLAIMS + """
@pytest.mark.claim(id="CARRY-PATCH", statement="carrier", kind="empirical")
@pytest.mark.parametrize("site", ["step1@P2", "step1@P3"])
def test_carry(claim, site):
    claim.record("moved", 0.9, verdict="supported" if site == "step1@P3" else "refuted")
""")
    run = run_claims(f"--codi-model={ckpt}")
    run.result.assert_outcomes(passed=6)
    assert run.claim("CARRY-PATCH[step1@P3]")["expected"] == "supported"
    assert "interchange training" in run.claim("CARRY-PATCH[step1@P3]")["expected_why"]
    assert run.claim("CARRY-PATCH[step1@P2]")["expected"] == "record"  # not a carrier: undecided
    assert "decides nothing" in run.claim("CARRY-PATCH[step1@P2]")["expected_why"]
    decided = run_claims(f"--codi-model={ckpt}", "-m", "decided or invariant")
    decided.result.assert_outcomes(passed=2, deselected=4)  # CARRY-PATCH[step1@P3] and SAN-01
    assert {c["id"] for c in decided.report["claims"]} == {"CARRY-PATCH[step1@P3]", "SAN-01"}


def test_profile_entries_carry_their_why(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_claims=CLAIMS)
    run = run_claims(profile(pytester, '[claims]\n"ATT-01" = {verdict = ["inconclusive"], why = "a reason"}\n'))
    assert run.claim("ATT-01")["expected"] == "inconclusive" and run.claim("ATT-01")["expected_why"] == "a reason"


@pytest.mark.parametrize(("text", "problem"), [
    (None, "expectation profile not found"),
    ('default = "record"\n[claims\n', "malformed TOML in expectation profile"),
    ('[claims]\n"IMP-01" = "supportd"\n', "claims.'IMP-01': unknown verdict 'supportd'"),
    ('[claims]\n"IMP-01" = ["record"]\n', "claims.'IMP-01': unknown verdict 'record'"),
    ('defaults = "record"\n', "unknown key 'defaults'"),
    ('claims = 3\n', "[claims] must be a table"),
    ('[claims]\n"IMP-01" = {why = "no verdict"}\n', "an entry table holds verdict (required) and why"),
])
def test_bad_profiles_are_one_line_usage_errors(text, problem, pytester: pytest.Pytester, run_claims) -> None:
    option = profile(pytester, text) if text is not None else f"--codi-expect={pytester.path / 'missing.toml'}"
    run = run_claims(option)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in run.result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1 and problem in errors[0] and option.split("=", 1)[1] in errors[0], errors


def test_a_profile_entry_that_matches_no_claim_warns(pytester: pytest.Pytester, run_claims) -> None:
    """Defect: a mistyped claim id fell back to "record" without a word."""
    pytester.makepyfile(test_claims=CLAIMS)
    run = run_claims(profile(pytester, '[claims]\n"IMP-01" = "refuted"\n"IMP-10" = "refuted"\n'))
    run.result.assert_outcomes(passed=4)
    warning = f"expectation profile {pytester.path / 'profile.toml'}: entry 'IMP-10' matches no claim of this run"
    assert run.report["warnings"] == [warning]  # IMP-01 names the marker id: matched
    assert f"codi-probe warning: {warning}" in run.output
    subset = run_claims(profile(pytester, '[claims]\n"IMP-10" = "refuted"\n'), "-k", "att")
    assert subset.report["warnings"] == []  # a subset run cannot tell a typo from a claim it did not select


def test_update_expect_writes_the_profile_of_a_whole_complete_run(pytester: pytest.Pytester, run_claims) -> None:
    from codi_probe.plugin.expectations import parse_profile

    pytester.makepyfile(test_claims=CLAIMS)
    target = pytester.path / "pinned.toml"
    run = run_claims("-k", "imp", f"--codi-update-expect={target}")
    assert not target.exists()
    assert any(w.startswith(f"--codi-update-expect: {target} not written: not a whole run: it ran a subset")
               for w in run.report["warnings"])
    run = run_claims(f"--codi-update-expect={target}")
    assert f"codi-probe expectation profile written: {target}" in run.output
    pinned = parse_profile(target, "option")
    assert pinned.claims == {"IMP-01[P3]": "refuted", "IMP-01[P5]": "refuted", "ATT-01": "inconclusive"}
    again = run_claims(f"--codi-expect={target}")  # the pinned profile passes the run it came from
    again.result.assert_outcomes(passed=4)
