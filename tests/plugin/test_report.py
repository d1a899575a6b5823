"""The JSON report: layout, schema, numbers of failing claims, q-values, where it is written."""

from __future__ import annotations

import json
import os

import pytest
from scipy.stats import false_discovery_control

from codi_probe.plugin import SCHEMA_VERSION, load_schema, validate_report

pytest_plugins = ["pytester"]

CONFTEST = """
import pytest
from codi_probe.plugin import add_session_metadata

@pytest.fixture(scope="session")
def problems(pytestconfig):
    add_session_metadata(pytestconfig, "gsm8k", {"n": 3, "ids": ["a", "b", "c"]}, section="data")
    add_session_metadata(pytestconfig, "note", "hello")
    return ["a", "b", "c"]

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")
"""

CLAIMS = """
import numpy as np
import pytest

@pytest.mark.claim(id="E-PASS", statement="passes", source="paper, 40%", reported=0.4, kind="empirical")
@pytest.mark.parametrize("step", [1, 2])
def test_pass(claim, problems, step):
    claim.record("acc", np.float32(0.5), ci=(0.25, 0.75), p_value=[0.01, 0.04][step - 1], n=len(problems),
                 verdict="supported", details={"per_problem": np.array([1, 0, 1])})

@pytest.mark.claim(id="E-FAIL", statement="asserts after recording", reported={"P5": 0.343, "P3": 0.114},
                   kind="empirical")
def test_fail(claim):
    claim.record("acc", 0.1, ci=(0.0, 0.2), p_value=0.03, n=3, verdict="refuted")
    assert 0.1 > 0.5

@pytest.mark.claim(id="E-RAISE", statement="raises after recording", kind="empirical")
def test_raise(claim):
    claim.record("acc", 0.2, p_value=0.5, n=3, verdict="inconclusive")
    raise RuntimeError("model blew up")

@pytest.mark.claim(id="E-TEARDOWN", statement="errors in teardown", kind="empirical")
def test_teardown(claim, broken_teardown):
    claim.record("acc", 0.3, n=3, verdict="supported")

@pytest.mark.claim(id="E-SETUP", statement="errors in setup", kind="empirical")
def test_setup(claim, missing_fixture):
    pass

@pytest.mark.claim(id="I-PASS", statement="an invariant that holds", kind="invariant")
def test_inv_pass():
    assert True

@pytest.mark.invariant
@pytest.mark.claim(id="I-FAIL", statement="an invariant that breaks")
def test_inv_fail():
    assert 1 == 2

@pytest.mark.claim(id="E-SKIP", statement="skipped", kind="empirical")
def test_skip(claim):
    pytest.skip("no GPU")

@pytest.mark.claim(id="E-XFAIL", statement="known broken", kind="empirical")
@pytest.mark.xfail(reason="F-02")
def test_xfail(claim):
    claim.record("acc", 0.0, verdict="refuted")
    assert False

def test_plain():
    pass
"""


@pytest.fixture
def rich(pytester: pytest.Pytester, run_claims):
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_claims=CLAIMS)
    return run_claims()


def test_report_layout_and_schema(rich) -> None:
    report = rich.report
    validate_report(report)
    assert report["schema_version"] == SCHEMA_VERSION == load_schema()["properties"]["schema_version"]["enum"][-1]
    assert report["status"] == "complete" and report["exitstatus"] == 1
    ids = [c["id"] for c in report["claims"]]
    assert ids == ["E-FAIL", "I-FAIL", "I-PASS", "E-PASS[1]", "E-PASS[2]", "E-RAISE", "E-SETUP", "E-SKIP",
                   "E-TEARDOWN", "E-XFAIL"]  # sorted by nodeid
    assert [t["nodeid"] for t in report["other_tests"]] == ["test_claims.py::test_plain"]
    assert report["data"] == {"gsm8k": {"n": 3, "ids": ["a", "b", "c"]}}
    assert report["session"] == {"note": "hello"}
    assert report["model"] is None  # no test asked for codi_model
    assert report["summary"]["outcomes"] == {"passed": 4, "failed": 3, "error": 2, "skipped": 1, "xfailed": 1,
                                             "xpassed": 0, "incomplete": 0}
    assert report["summary"]["kinds"] == {"invariant": 2, "empirical": 8}
    assert report["environment"]["packages"]["pytest"] == pytest.__version__
    assert report["warnings"] == []


def test_parametrized_claim_ids_and_params(rich) -> None:
    claim = rich.claim("E-PASS[2]")
    assert (claim["base_id"], claim["param_id"], claim["params"]) == ("E-PASS", "2", {"step": 2})
    assert (claim["source"], claim["reported"]) == ("paper, 40%", 0.4)
    assert rich.claim("E-FAIL")["reported"] == {"P5": 0.343, "P3": 0.114}
    assert claim["details"] == {"per_problem": [1, 0, 1]} and claim["value"] == 0.5


@pytest.mark.parametrize(("claim_id", "outcome", "value", "message"), [
    ("E-FAIL", "failed", 0.1, "assert 0.1 > 0.5"),
    ("E-RAISE", "failed", 0.2, "RuntimeError: model blew up"),
    ("E-TEARDOWN", "error", 0.3, "RuntimeError: teardown broke"),
    ("E-SETUP", "error", None, "fixture 'missing_fixture' not found"),
    ("E-SKIP", "skipped", None, "no GPU"),
    ("E-XFAIL", "xfailed", 0.0, "F-02"),
])
def test_failing_and_erroring_claims_keep_their_numbers(rich, claim_id, outcome, value, message) -> None:
    claim = rich.claim(claim_id)
    assert (claim["outcome"], claim["value"]) == (outcome, value)
    assert message in claim["message"]


def test_invariants_get_a_verdict_from_their_outcome(rich) -> None:
    assert rich.claim("I-PASS")["verdict"] == "supported"
    assert rich.claim("I-FAIL")["verdict"] == "refuted" and rich.claim("I-FAIL")["kind"] == "invariant"


def test_benjamini_hochberg_q_values(rich) -> None:
    claims = [c for c in rich.report["claims"] if c["p_value"] is not None]
    expected = false_discovery_control([c["p_value"] for c in claims], method="bh")
    assert [c["q_value"] for c in claims] == pytest.approx(list(expected))
    assert rich.report["multiple_testing"]["m"] == len(claims) == 4
    assert rich.claim("E-TEARDOWN")["q_value"] is None


def test_terminal_summary(rich) -> None:
    lines = rich.result.stdout.lines
    start = next(i for i, line in enumerate(lines) if " codi-probe claims " in line)
    assert lines[start + 1].startswith("codi-probe: model=codi-tiny-arith dtype=fp32 device=cpu expectations=")
    assert lines[start + 2:start + 5] == [
        "E-FAIL      refuted       acc=0.1 CI95[0, 0.2] p=0.03 n=3 q=0.05333  failed",
        "I-FAIL      refuted       no statistic recorded  failed",
        "I-PASS      supported     no statistic recorded  passed",
    ]
    assert lines[start + 12].startswith("10 claims (4 supported, 3 refuted, 1 inconclusive, 2 none); expectations: ")
    assert lines[start + 13] == f"codi-probe report: {rich.path}"


def test_default_location_latest_copy_and_no_leftovers(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_claims=CLAIMS.split("@pytest.mark.claim(id=\"E-FAIL\"")[0].replace(", problems", ""))
    run_claims(report="")
    folder = pytester.path / "reports"
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and names[1] == "latest.json", names  # <timestamp>.json, no temp file or journal
    assert json.loads((folder / names[0]).read_text()) == json.loads((folder / "latest.json").read_text())
    umask = os.umask(0)
    os.umask(umask)
    assert (folder / "latest.json").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    validate_report(json.loads((folder / "latest.json").read_text()))


def test_no_report_without_claims_unless_asked(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile("def test_plain(): pass")
    assert not run_claims(report="").path.exists() and not (pytester.path / "reports").exists()
    report = run_claims().report
    assert report["claims"] == [] and report["other_tests"][0]["outcome"] == "passed"


def test_claim_fixture_needs_a_marker_and_markers_are_checked(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile("""
import pytest

def test_unmarked(claim):
    pass

@pytest.mark.claim(id="K-01", statement="no kind")
def test_no_kind():
    pass

@pytest.mark.claim(statement="no id", kind="invariant")
def test_no_id():
    pass
""")
    run = run_claims()
    run.result.assert_outcomes(errors=3)
    run.result.stdout.fnmatch_lines_random([
        "*test_unmarked*the claim fixture needs @pytest.mark.claim(id=..., statement=..., kind=...)",
        "*test_no_kind: claim K-01: kind must be 'invariant' or 'empirical'*",
        "*test_no_id: bad @pytest.mark.claim: *missing 1 required positional argument: 'id'",
    ])


def test_kind_markers_select_claims(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_claims=CLAIMS)
    run = run_claims("-m", "invariant")
    assert sorted(c["id"] for c in run.report["claims"]) == ["I-FAIL", "I-PASS"]


def test_schema_rejects_a_broken_report(rich) -> None:
    import jsonschema

    report = rich.report
    report["claims"][0]["verdict"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(report)


def test_problem_words_the_tokenizer_does_not_know_are_a_warning() -> None:
    """Issue 32 item 11: claims answered questions in words a word-level tokenizer reads as unknown, silently."""
    from codi_probe.plugin.metadata import SessionMetadata
    from codi_probe.plugin.report import _warnings

    metadata = SessionMetadata()
    metadata.sections["data"]["answer_problems"] = {"family": "gsm8k", "n": 2, "unknown_words": ["zebras", "Tom"]}
    metadata.sections["data"]["template_problems"] = {"family": "cyw", "n": 2}
    assert _warnings([], metadata) == ["answer_problems: the tokenizer does not know 'zebras', 'Tom' (read as its "
                                       "unknown token: the model never sees these words)"]
