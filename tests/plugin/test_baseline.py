"""--codi-baseline / --codi-compare / --codi-autosave: verdict flips and statistics outside the widened
baseline CI fail; incomparable or partial baselines are refused unless forced; runs are saved numbered."""

from __future__ import annotations

import json

import pytest
from codi_probe.plugin.report import SCHEMA_VERSION

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
    ("0.65", "0", "LENS-01: rate=0.65 outside baseline [0.4, 0.6] widened by tolerance abs 0: "
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
        run.result.assert_outcomes(passed=1, failed=1)  # the invariant SAN-01: flips only, never moves
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
    assert run.report["environment"]["selection"]["subset"] is True


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


def _saved(pytester: pytest.Pytester) -> list[str]:
    return sorted(p.name for p in (pytester.path / "reports" / "runs").iterdir())


@pytest.mark.parametrize(("args", "differs"), [
    (["--codi-seed=3"], "seed: 0 -> 3"),
    (["--codi-problems=7"], "problems per claim: the tier's count (--codi-depth) -> 7"),
    (["--codi-dtype=bf16"], "dtype: fp32 -> bf16"),
])
def test_an_incomparable_baseline_is_refused_unless_forced(args, differs, baseline: str, run_claims) -> None:
    refused = run_claims(baseline, *args)
    assert refused.result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"not comparable ({differs}); pass --codi-force-compare to compare anyway" in refused.result.stderr.str()
    forced = run_claims(baseline, *args, "--codi-force-compare")
    forced.result.assert_outcomes(passed=2)
    assert forced.report["baseline"]["forced"] == [differs]
    assert any(differs in w and "(forced)" in w for w in forced.report["warnings"])


def test_other_versions_and_schemas_are_refused(baseline: str, pytester: pytest.Pytester, run_claims) -> None:
    path = pytester.path / "base.json"
    data = json.loads(path.read_text())
    data["schema_version"] = "1.2"
    data["environment"]["packages"]["codi-probe"] = "0.1.0"
    path.write_text(json.dumps(data))
    stderr = run_claims(baseline).result.stderr.str()
    assert "codi-probe version: 0.1.0 -> " in stderr and f"report schema: 1.2 -> {SCHEMA_VERSION}" in stderr


@pytest.mark.parametrize(("args", "why"), [
    (["-k", "lens"], "it ran a subset (-k 'lens')"),
    (["-x"], "its status is 'incomplete', not 'complete'"),
])
def test_a_partial_run_is_never_silently_a_baseline(args, why, pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_lens=CLAIM, test_a_failure="def test_fails():\n    assert False\n")
    run_claims(*args, report="part.json")
    run = run_claims(f"--codi-baseline={pytester.path / 'part.json'}")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR and why in run.result.stderr.str()


def test_a_baseline_of_another_model_stops_the_run_at_model_load(pytester: pytest.Pytester, run_claims) -> None:
    """Another shape is another model: refused when it loads. Other weights of the same shape are a
    retrained checkpoint, which is what a regression check compares: noted, not refused."""
    pytester.makepyfile(test_model="""
import pytest

@pytest.mark.claim(id="M-01", statement="loads", kind="empirical")
def test_m(claim, codi_model):
    claim.record("x", 0.5, verdict="supported")
""")
    args = ("--codi-model=tiny-random-gpt2", "--codi-expect=none")
    first = run_claims(*args, report="gpt2.json", subprocess=True)
    first.result.assert_outcomes(passed=1)
    path = pytester.path / "gpt2.json"
    data = json.loads(path.read_text())
    data["model"]["sha256"] = "0" * 64  # the same model, as if retrained
    path.write_text(json.dumps(data))
    retrained = run_claims(*args, f"--codi-baseline={path}", subprocess=True)
    retrained.result.assert_outcomes(passed=1)
    assert retrained.report["baseline"]["weights_changed"].startswith("weights sha256 000000000000 -> ")
    data["model"]["n_layers"] += 1  # another model
    path.write_text(json.dumps(data))
    run = run_claims(*args, f"--codi-baseline={path}", subprocess=True)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    layers = f"layers: {data['model']['n_layers']} -> {data['model']['n_layers'] - 1}"
    assert f"not comparable ({layers}: the baseline is of another model); pass --codi-force-compare" in run.output
    forced = run_claims(*args, f"--codi-baseline={path}", "--codi-force-compare", subprocess=True)
    forced.result.assert_outcomes(passed=1)
    assert forced.report["baseline"]["forced"] == [layers]


def test_autosave_numbers_runs_and_compare_picks_them(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                     run_claims) -> None:
    pytester.makepyfile(test_lens=CLAIM)
    run_claims("--codi-autosave").result.assert_outcomes(passed=2)
    run_claims("--codi-autosave", "-k", "lens")  # a subset: saved, but never "latest"
    assert _saved(pytester) == ["0001_codi-tiny-arith.json", "0002_codi-tiny-arith.json"]
    monkeypatch.setenv("LENS_VALUE", "0.15")
    run = run_claims("--codi-compare=latest")
    assert run.report["baseline"]["path"].endswith("0001_codi-tiny-arith.json")
    assert run.claim("LENS-01")["failures"][0].startswith("LENS-01: verdict flipped")
    refused = run_claims("--codi-compare=2")
    assert "it ran a subset (-k 'lens')" in refused.result.stderr.str()
    missing = run_claims("--codi-compare=9")
    assert "no run 0009 saved in" in missing.result.stderr.str()


def test_compare_latest_without_saved_runs_is_a_usage_error(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_lens=CLAIM)
    run = run_claims("--codi-compare=latest")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR and "save runs with --codi-autosave" in run.result.stderr.str()


@pytest.mark.parametrize(("args", "fails"), [
    (["--codi-rel-tolerance=0.05"], True),  # 0.05 x 0.5 = 0.025: 0.65 is beyond 0.6 + 0.025
    (["--codi-rel-tolerance=0.2"], False),  # 0.1: within 0.6 + 0.1
    (["--codi-claim-tolerance=LENS-* abs=0.1"], False),
    (["--codi-claim-tolerance=OTHER-* abs=0.1"], True),
    (["--codi-fail-on=flip"], False),  # a move is reported, not failed
])
def test_tolerances_and_failure_rules(args, fails, baseline: str, monkeypatch: pytest.MonkeyPatch,
                                      run_claims) -> None:
    monkeypatch.setenv("LENS_VALUE", "0.65")
    run = run_claims(baseline, *args)
    assert bool(run.claim("LENS-01")["failures"]) is fails
    assert run.result.ret == (pytest.ExitCode.TESTS_FAILED if fails else pytest.ExitCode.OK)


def test_per_claim_tolerances_from_ini_and_unused_patterns_warn(baseline: str, pytester: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch, run_claims) -> None:
    pytester.makeini("[pytest]\ncodi_claim_tolerances =\n    LENS-01 rel=0.5\n    LENZ-* abs=1\n")
    monkeypatch.setenv("LENS_VALUE", "0.65")
    run = run_claims(baseline)
    run.result.assert_outcomes(passed=2)
    assert "claim tolerance pattern 'LENZ-*' matches no claim of this run" in run.report["warnings"]
    assert run.report["baseline"]["claim_tolerances"] == ["LENS-01 abs=0 rel=0.5", "LENZ-* abs=1 rel=0"]


@pytest.mark.parametrize(("args", "message"), [
    (["--codi-claim-tolerance=LENS-01"], "write 'PATTERN abs=X' and/or 'rel=Y'"),
    (["--codi-claim-tolerance=LENS-01 tol=1"], "'tol=1' is not abs=X or rel=Y"),
    (["--codi-fail-on=flips"], "--codi-fail-on='flips': must be a comma list of flip, moved, or none"),
])
def test_malformed_rules_are_usage_errors(args, message, pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_lens=CLAIM)
    run = run_claims(*args)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR and message in run.result.stderr.str()


def test_an_invariant_flip_fails_as_compare_says(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                run_claims) -> None:
    """One rule: ``codi-probe compare`` counted invariant flips and the plugin ignored them."""
    pytester.makepyfile(test_inv="""
import os
import pytest

@pytest.mark.claim(id="INV-01", statement="holds", kind="invariant")
def test_inv(claim):
    if os.environ.get("BROKEN"):
        claim.record("err", 1.0, verdict="refuted")
""")
    monkeypatch.setenv("BROKEN", "1")
    run_claims(report="old.json")
    monkeypatch.delenv("BROKEN")
    run = run_claims(f"--codi-baseline={pytester.path / 'old.json'}")
    assert run.claim("INV-01")["failures"][0].startswith("INV-01: verdict flipped: baseline refuted")


def test_weights_changed_comes_from_the_reports_model_so_xdist_agrees():
    """Issue 32 item 8: under -n 2 the controller never loads the model, so ``baseline.weights_changed``
    was null; it is now computed from the run's model fingerprint (merged from the workers)."""
    from codi_probe.plugin.baseline import Baseline
    from codi_probe.regression import Rule

    base = Baseline(path="old.json", rule=Rule(), report={"model": {"sha256": "a" * 64}})
    assert base.describe(set(), {"sha256": "b" * 64})["weights_changed"] == f"weights sha256 {'a' * 12} -> {'b' * 12}"
    assert base.describe(set(), {"sha256": "a" * 64})["weights_changed"] is None
