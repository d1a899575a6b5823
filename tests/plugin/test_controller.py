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


def test_an_unwritable_report_folder_is_refused_before_any_work(pytester: pytest.Pytester, run_claims) -> None:
    """Issue 32 item 1: a read-only reports folder crashed the run after all the work (INTERNALERROR
    tracebacks). A path under a file stands for it (root ignores permission bits)."""
    pytester.makepyfile(test_ok=CLAIM)
    (pytester.path / "blocked").write_text("a file, not a folder")
    run = run_claims("--codi-expect=none", report="blocked/out/report.json")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in run.result.stderr.lines if line.strip()]
    assert errors == [f"ERROR: codi-probe: cannot write the report in {pytester.path / 'blocked' / 'out'}: "
                      f"{pytester.path / 'blocked'} is not a directory"]
    assert "INTERNALERROR" not in run.output and "passed" not in run.result.stdout.str()
    refused = run_claims("--codi-expect=none", "--codi-autosave", "--codi-storage=blocked/runs")
    assert refused.result.ret == pytest.ExitCode.USAGE_ERROR and "saved run (--codi-autosave)" in refused.output


def test_report_latest_and_saved_run_are_written_together_or_not_at_all(
        pytester: pytest.Pytester, run_claims, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 32 item 1: with --codi-autosave the numbered copy was written while the main report was not.
    The folder becomes unwritable after the start (the write of the last staged file fails)."""
    import codi_probe.atomic as atomic

    pytester.makepyfile(test_ok=CLAIM)
    real = atomic._stage

    def stage(dest, write):
        if dest.name == "latest.json":
            raise PermissionError(13, "Permission denied", str(dest))
        return real(dest, write)

    monkeypatch.setattr(atomic, "_stage", stage)
    run = run_claims("--codi-expect=none", "--codi-autosave", report="")
    run.result.assert_outcomes(passed=2, failed=1)
    assert "INTERNALERROR" not in run.output and "Traceback" not in run.output
    assert "codi-probe: report not written (" in run.output and "Permission denied" in run.output
    left = sorted(p.name for p in (pytester.path / "reports").rglob("*") if p.is_file())
    assert len(left) == 1 and left[0].endswith(".partial.jsonl")  # the journal keeps the finished tests
    # no report, no latest.json, no numbered run, no staged temporary file


SLOW_FIRST = """
import pathlib
import time
import pytest

@pytest.fixture
def slow_model():
    pathlib.Path("started").write_text("")
    time.sleep(60)

@pytest.mark.claim(id="SLOW-01", statement="interrupted in its setup", kind="empirical")
def test_first(claim, slow_model):
    claim.record("x", 0.5, verdict="supported")
"""


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_ctrl_c_during_the_first_test_writes_an_interrupted_report(pytester: pytest.Pytester,
                                                                    subprocess_plugins: tuple[str, ...],
                                                                    workers: tuple[str, ...]) -> None:
    """Issue 32 item 9: a Ctrl-C (SIGINT) during the first test's setup wrote no report; and an interrupted
    run with --codi-autosave took the next number, so that the README's ``compare reports/runs/0001_*.json``
    was refused. Under ``-n 2`` the controller collects nothing itself, so it did not know the run was a
    codi one and wrote no report either. The SIGINT goes to the whole process group, as a terminal's Ctrl-C."""
    import os
    import signal
    import sys
    import time
    from pathlib import Path

    pytester.makepyfile(test_slow=SLOW_FIRST)
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "pytest", *subprocess_plugins, "-p", "no:cacheprovider", "--codi-expect=none",
           "--codi-autosave", *workers, "test_slow.py"]
    proc = subprocess.Popen(cmd, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not (pytester.path / "started").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    import json

    report = json.loads((pytester.path / "reports" / "latest.json").read_text())
    assert report["status"] == "interrupted"
    assert [(c["id"], c["outcome"]) for c in report["claims"]] == []  # nothing finished; the report says so
    assert "interrupted" in output and "codi-probe report:" in output
    assert not list((pytester.path / "reports" / "runs").glob("0001_*.json"))  # never a numbered baseline
    assert any("not saved as a numbered run" in w for w in report["warnings"])


STOPPED = """
import pytest

@pytest.fixture
def stops():
    pytest.exit("codi-probe: cannot load model 'x': no such checkpoint", returncode=pytest.ExitCode.USAGE_ERROR)

@pytest.mark.claim(id="STOP-01", statement="stopped by codi-probe", kind="empirical")
def test_stopped(claim, stops):
    pass
"""


def test_a_codi_probe_stop_reads_as_its_own_line(pytester: pytest.Pytester, run_claims) -> None:
    """Issue 32 item 11: codi-probe's stops (a model that does not load, a baseline of another model) read
    ``! _pytest.outcomes.Exit: codi-probe: ... !``."""
    pytester.makepyfile(test_stop=STOPPED)
    run = run_claims("--codi-expect=none")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "_pytest.outcomes.Exit" not in run.output
    assert "! codi-probe: cannot load model 'x': no such checkpoint !" in run.output
    assert run.report["status"] == "interrupted"
