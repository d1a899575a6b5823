"""The controller's report: its status, collection errors, --codi-report none, the git state and the
selection (schema 1.3)."""

from __future__ import annotations

import subprocess

import pytest

pytest_plugins = ["pytester"]

CLAIM = """
import pytest

@pytest.mark.claim(id="OK-01", statement="fine", kind="empirical")
def test_ok(claim):
    claim.record("x", 0.5, verdict="supported")

@pytest.mark.claim(id="OK-02", statement="fails", kind="invariant")
def test_second(claim):
    assert claim.check(False)

@pytest.mark.claim(id="OK-03", statement="after", kind="invariant")
def test_third(claim):
    assert claim.check(True)
"""
BROKEN = "import a_module_that_does_not_exist\n"


def test_a_module_that_fails_to_import_is_a_collection_error(pytester: pytest.Pytester, run_claims) -> None:
    """Defect: the report said ``interrupted`` (exit code 2 was taken for Ctrl-C) and named no error."""
    pytester.makepyfile(test_ok=CLAIM, test_broken=BROKEN)
    run = run_claims("--codi-expect=none")
    assert run.result.ret == pytest.ExitCode.INTERRUPTED
    report = run.report
    assert (report["status"], report["exitstatus"]) == ("collection_error", 2)
    assert [e["nodeid"] for e in report["collection_errors"]] == ["test_broken.py"]
    assert "a_module_that_does_not_exist" in report["collection_errors"][0]["message"]
    assert report["summary"]["collection_errors"] == 1


def test_continuing_past_a_collection_error_still_says_so(pytester: pytest.Pytester, run_claims) -> None:
    """Defect: with --continue-on-collection-errors the report said ``complete`` with zero errors."""
    pytester.makepyfile(test_ok=CLAIM, test_broken=BROKEN)
    report = run_claims("--codi-expect=none", "--continue-on-collection-errors").report
    assert report["status"] == "collection_error" and report["summary"]["collection_errors"] == 1
    assert [c["id"] for c in report["claims"]] == ["OK-01", "OK-02", "OK-03"]


def test_collection_errors_reach_the_report_from_xdist_workers(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_ok=CLAIM, test_broken=BROKEN)
    report = run_claims("--codi-expect=none", "-n", "2", subprocess=True).report
    assert report["status"] == "collection_error"
    assert {e["nodeid"] for e in report["collection_errors"]} == {"test_broken.py"}


def test_a_run_stopped_by_maxfail_is_incomplete(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_ok=CLAIM)
    report = run_claims("--codi-expect=none", "-x").report
    assert report["status"] == "incomplete"
    assert [c["id"] for c in report["claims"]] == ["OK-01", "OK-02"]
    assert run_claims("--codi-expect=none").report["status"] == "complete"


def test_report_none_writes_nothing(pytester: pytest.Pytester, run_claims) -> None:
    """Defect: ``--codi-report none`` wrote a file named ``none``."""
    pytester.makepyfile(test_ok=CLAIM)
    run = run_claims("--codi-expect=none", report="")  # no --codi-report from the helper
    assert (pytester.path / "reports" / "latest.json").exists()  # the default location, for contrast
    for found in (pytester.path / "reports").iterdir():
        found.unlink()
    run = run_claims("--codi-expect=none", "--codi-report=none", report="")
    run.result.assert_outcomes(passed=2, failed=1)
    assert not (pytester.path / "none").exists() and not list((pytester.path / "reports").iterdir())
    assert "codi-probe report:" not in run.output


def test_the_report_records_the_git_commit_and_the_selection(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_ok=CLAIM)
    report = run_claims("--codi-expect=none").report
    assert report["environment"]["git"] is None  # not a checkout
    assert report["environment"]["selection"]["subset"] is False

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=pytester.path, capture_output=True, text=True,
                              check=True).stdout.strip()

    git("init", "-q")
    git("add", "test_ok.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "claims")
    report = run_claims("--codi-expect=none", "-k", "ok").report
    assert report["environment"]["git"] == {"commit": git("rev-parse", "HEAD"), "dirty": False}
    assert report["environment"]["selection"] == {"keyword": "ok", "markexpr": None, "last_failed": False,
                                                  "nodeids": [], "subset": True}
    (pytester.path / "test_ok.py").write_text(CLAIM + "\n# edited\n")
    assert run_claims("--codi-expect=none").report["environment"]["git"]["dirty"] is True
