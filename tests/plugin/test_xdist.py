"""Subprocess runs: serial vs ``-n 2`` reports, interruption, crashed workers and processes."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest_plugins = ["pytester"]

# Stand-ins for torch and the model loader, so that no process pays for importing torch.
FAKES = """
import sys, types

torch = types.ModuleType("torch")
torch.threads = None
def set_num_threads(n):
    torch.threads = n
torch.set_num_threads = set_num_threads
sys.modules["torch"] = torch

class FakeModel:
    def __init__(self, spec, **kwargs):
        self.spec, self.kwargs = spec, kwargs
    def fingerprint(self):
        return {"name": self.spec, "sha256": "0" * 64, "dtype": self.kwargs["dtype"]}

LOADS = []
def load_codi(spec, **kwargs):
    LOADS.append(spec)
    return FakeModel(spec, **kwargs)

loading = types.ModuleType("codi_probe.loading")
loading.load_codi, loading.DEFAULT_MODEL = load_codi, "fake-model"
sys.modules["codi_probe.loading"] = loading

import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish():
    sys.modules.pop("torch")  # before the report: scipy (q-values) must not find a fake torch
"""

CONFTEST = FAKES + """
import pytest
from codi_probe.plugin import add_session_metadata

@pytest.fixture(scope="session")
def problems(pytestconfig, codi_model):
    add_session_metadata(pytestconfig, "problems", {"n": 4, "sha": "abc"}, section="data")
    return [1, 2, 3, 4]
"""

CLAIMS = """
import pytest
from conftest import LOADS, torch

@pytest.mark.claim(id="X-01", statement="parametrized", kind="empirical")
@pytest.mark.parametrize("pos", range(6), ids=[f"P{i}" for i in range(6)])
def test_grid(claim, problems, pos):
    claim.record("acc", pos / 10, ci=(pos / 10 - 0.05, pos / 10 + 0.05), p_value=(pos + 1) / 20, n=len(problems),
                 verdict="supported" if pos > 2 else "refuted", details={"pos": pos})

@pytest.mark.claim(id="X-02", statement="fails after recording", kind="empirical")
def test_fail(claim, codi_model):
    claim.record("acc", 0.5, p_value=0.5, verdict="inconclusive")
    assert False, "boom"

@pytest.mark.claim(id="X-03", statement="one load per process; threads set first", kind="invariant")
@pytest.mark.parametrize("i", range(3))
def test_loaded_once(claim, codi_model, i):
    claim.record("loads", len(LOADS))
    assert LOADS == ["tiny-random-llama"] and torch.threads >= 1

def test_plain(codi_model):
    pass
"""


def normalized(report: dict[str, Any]) -> dict[str, Any]:
    """The report without what may differ between equal runs: timings, the environment, which process ran
    a claim."""
    report = {k: v for k, v in report.items() if k not in ("created", "duration_s", "environment")}
    for test in report["claims"] + report["other_tests"]:
        del test["duration_s"]
        test.pop("worker", None)
    return report


def test_serial_and_xdist_reports_are_equal(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_claims=CLAIMS)
    args = ("--codi-model=tiny-random-llama", "--codi-dtype=bf16")
    serial = run_claims(*args, subprocess=True)
    serial.result.assert_outcomes(passed=10, failed=1)
    serial_report = serial.report
    distributed = run_claims(*args, "-n", "2", subprocess=True)
    distributed.result.assert_outcomes(passed=10, failed=1)
    report = distributed.report
    assert {c["worker"] for c in report["claims"]} == {"gw0", "gw1"}
    assert {c["worker"] for c in serial_report["claims"]} == {"main"}
    assert {c["device"] for c in report["claims"] + serial_report["claims"]} == {"cpu"}
    assert normalized(report) == normalized(serial_report)
    assert report["model"] == {"name": "tiny-random-llama", "sha256": "0" * 64, "dtype": "bf16"}
    assert report["data"] == {"problems": {"n": 4, "sha": "abc"}}
    assert len(report["claims"]) == 10 and report["multiple_testing"]["m"] == 7
    assert [p["worker"] for p in report["environment"]["processes"]] == ["gw0", "gw1"]
    assert [p["worker"] for p in serial_report["environment"]["processes"]] == ["main"]
    cpus = serial_report["environment"]["cpu_count"]
    assert {p["torch_threads"] for p in report["environment"]["processes"]} == {max(1, cpus // 2)}
    assert serial_report["environment"]["processes"][0]["torch_threads"] == cpus
    assert all(p["model_load_s"] >= 0 for p in report["environment"]["processes"])
    assert "X-01[P5]" in distributed.output and "codi-probe report:" in distributed.output


STOPPING = """
import os
import pytest

@pytest.mark.claim(id="S-01", statement="finishes first", kind="empirical")
def test_first(claim):
    claim.record("acc", 0.5, ci=(0.4, 0.6), p_value=0.01, verdict="supported")

@pytest.mark.claim(id="S-02", statement="stops the run", kind="empirical")
def test_second(claim):
    claim.record("acc", 0.1)
    if os.environ.get("STOP") == "interrupt":
        raise KeyboardInterrupt
    os._exit(3)

@pytest.mark.claim(id="S-03", statement="after the stop", kind="empirical")
def test_third(claim):
    claim.record("acc", 0.7, verdict="supported")
"""


def test_interrupted_run_keeps_finished_claims(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                               run_claims) -> None:
    pytester.makepyfile(test_stop=STOPPING)
    monkeypatch.setenv("STOP", "interrupt")
    run = run_claims(subprocess=True)
    assert run.result.ret == pytest.ExitCode.INTERRUPTED
    report = run.report
    assert (report["status"], report["exitstatus"]) == ("interrupted", 2)
    assert [(c["id"], c["outcome"]) for c in report["claims"]] == [("S-01", "passed"), ("S-02", "incomplete")]
    assert run.claim("S-01")["value"] == 0.5 and run.claim("S-01")["q_value"] == 0.01
    assert not (pytester.path / "report.partial.jsonl").exists()


def test_killed_controller_leaves_a_journal(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_stop=STOPPING)
    run = run_claims(subprocess=True)
    assert run.result.ret == 3 and not run.path.exists()
    lines = (pytester.path / "report.partial.jsonl").read_text().splitlines()
    assert [json.loads(line)["claim"]["id"] for line in lines] == ["S-01"]
    assert json.loads(lines[0])["claim"]["ci"] == {"lo": 0.4, "hi": 0.6, "level": 0.95}


def test_crashed_worker_still_gives_a_report(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_stop=STOPPING)
    run = run_claims("-n", "2", subprocess=True)
    run.result.assert_outcomes(passed=2, failed=1)
    report = run.report
    assert report["status"] == "complete"
    crashed = run.claim("S-02")
    assert crashed["outcome"] == "failed" and "crashed while running" in crashed["message"]
    assert crashed["statement"] == "stops the run"  # the setup report carried the claim's identity
    assert run.claim("S-01")["value"] == 0.5 and run.claim("S-03")["verdict"] == "supported"
    assert any("went down" in w for w in report["warnings"])
