"""Outcomes come from pytest's own report categories (``pytest_report_teststatus``)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

FLAKY = """
import pathlib
import pytest

@pytest.mark.claim(id="FLAKY-01", statement="fails once, then passes", kind="invariant")
def test_flaky(claim):
    marker = pathlib.Path("attempted")
    first = not marker.exists()
    marker.write_text("x")
    assert claim.check(not first)
"""


def test_a_rerun_is_counted_not_failed(pytester: pytest.Pytester, run_claims) -> None:
    """Defect: outcomes were classified by hand, so a pytest-rerunfailures rerun was recorded as a failure."""
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(test_flaky=FLAKY)
    run = run_claims("--codi-expect=none", "-p", "rerunfailures", "--reruns", "1", subprocess=True)
    outcomes = run.result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("rerun")) == (1, 1)
    claim = run.claim("FLAKY-01")
    assert (claim["outcome"], claim["reruns"], claim["verdict"]) == ("passed", 1, "supported")
    assert run.report["summary"]["outcomes"]["failed"] == 0 and run.report["status"] == "complete"


def test_a_category_from_another_plugin_is_used(pytester: pytest.Pytester, run_claims) -> None:
    """A plugin that names a category (here: a failure it reports as ``xfailed``) decides the outcome."""
    pytester.makeconftest("""
def pytest_report_teststatus(report, config):
    if report.when == "call" and report.failed:
        return "xfailed", "x", "KNOWN"
""")
    pytester.makepyfile(test_known="""
import pytest

@pytest.mark.claim(id="KNOWN-01", statement="a known failure", kind="invariant")
def test_known(claim):
    assert claim.check(False)
""")
    claim = run_claims("--codi-expect=none").claim("KNOWN-01")
    assert claim["outcome"] == "xfailed"


def test_a_crashed_test_rerun_elsewhere_stays_failed() -> None:
    """Issue 32 item 8: a crashed worker's test was FAILED in the terminal but ``passed`` in the report, once
    the scope scheduler had run it again on another worker."""
    from codi_probe.plugin.collector import TestEntry

    def report(when: str, outcome: str) -> pytest.TestReport:
        longrepr = "worker 'gw0' crashed while running 'test_x.py::test_a'" if outcome == "failed" else None
        return pytest.TestReport("test_x.py::test_a", ("test_x.py", 1, "test_a"), {}, outcome, longrepr, when)

    entry = TestEntry("test_x.py::test_a")
    entry.update(report("setup", "passed"), "")
    entry.update(report("???", "failed"), "failed")
    for when, category in (("setup", ""), ("call", "passed"), ("teardown", "")):
        entry.update(report(when, "passed"), category)
    assert entry.to_dict()["outcome"] == "failed" and "crashed while running" in entry.to_dict()["message"]
    assert entry.finished
