"""--codi-baseline: verdict flips and statistics outside the widened baseline CI fail."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

CLAIM = """
import os
import pytest

from codi_probe.hypothesis import Evidence, Hypothesis, Prediction

@pytest.mark.claim(id="LENS-01", statement="step-1 result decodes at P3", kind="empirical",
                   hypothesis=Hypothesis(Prediction("rate", "greater", 0.3), min_n=1))
def test_lens(claim):
    value = float(os.environ.get("LENS_VALUE", "0.5"))
    lo, hi = value - 0.1, value + 0.1
    claim.decide(Evidence("rate", value, lo, hi, 10, 0.001 if lo > 0.3 else 0.5, 0.001 if hi < 0.3 else 0.5,
                          "synthetic"), n=10)

@pytest.mark.claim(id="SAN-01", statement="an invariant is not compared", kind="invariant")
def test_san(claim):
    claim.record("err", float(os.environ.get("LENS_VALUE", "0.5")))
"""


@pytest.fixture
def baseline(pytester: pytest.Pytester, run_claims) -> str:
    """A first run (rate 0.5, CI [0.4, 0.6], supported) saved as base.json."""
    pytester.makepyfile(test_lens=CLAIM)
    first = run_claims(report="base.json")
    first.result.assert_outcomes(passed=2)
    assert first.claim("LENS-01")["verdict"] == "supported"
    return f"--codi-baseline={pytester.path / 'base.json'}"


@pytest.mark.parametrize(("value", "tolerance", "failure"), [
    ("0.5", "0", None),
    ("0.65", "0", "LENS-01: rate=0.65 outside baseline [0.4, 0.6] widened by tolerance 0: "
                  "baseline supported (rate=0.5 CI95[0.4, 0.6] p=0.001 n=10/1), "
                  "now supported (rate=0.65 CI95[0.55, 0.75] p=0.001 n=10/1)"),
    ("0.65", "0.1", None),
    ("0.15", "0.5", "LENS-01: verdict flipped: baseline supported (rate=0.5 CI95[0.4, 0.6] p=0.001 n=10/1), "
                   "now refuted (rate=0.15 CI95[0.05, 0.25] p=0.5 n=10/1)"),
])
def test_baseline_comparison(value, tolerance, failure, baseline: str, monkeypatch: pytest.MonkeyPatch,
                             run_claims) -> None:
    monkeypatch.setenv("LENS_VALUE", value)
    run = run_claims(baseline, f"--codi-tolerance={tolerance}")
    claim = run.claim("LENS-01")
    assert claim["baseline"]["verdict"] == "supported" and claim["baseline"]["value"] == 0.5
    assert run.report["baseline"]["tolerance"] == float(tolerance)
    if failure is None:
        run.result.assert_outcomes(passed=2)
        assert claim["failures"] == []
    else:
        run.result.assert_outcomes(passed=1, failed=1)  # the invariant SAN-01 is never compared
        assert failure in run.output and claim["failures"] == [failure]


def test_baseline_none_turns_the_comparison_off(baseline: str, monkeypatch: pytest.MonkeyPatch, run_claims) -> None:
    monkeypatch.setenv("CODI_BASELINE", baseline.split("=", 1)[1])
    monkeypatch.setenv("LENS_VALUE", "0.15")
    run = run_claims("--codi-baseline=none")
    run.result.assert_outcomes(passed=2)
    assert run.report["baseline"] is None and run.claim("LENS-01")["baseline"] is None


def test_baseline_lists_claims_this_run_lacks(baseline: str, run_claims) -> None:
    run = run_claims(baseline, "-k", "not san")
    assert run.report["baseline"]["missing"] == ["SAN-01"]


@pytest.mark.parametrize(("content", "problem"), [
    (None, "baseline report not found"),
    ("{not json", "malformed JSON in baseline report"),
    (json.dumps({"claims": []}), "not a codi-probe report"),
])
def test_bad_baselines_are_usage_errors(content, problem, pytester: pytest.Pytester, run_claims) -> None:
    path = pytester.path / "old.json"
    if content is not None:
        path.write_text(content)
    run = run_claims(f"--codi-baseline={path}")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"ERROR: {path}: {problem}" in run.result.stderr.str()
