"""``--codi-randomization-check``: each empirical claim also runs on the weight-randomized twin, and a claim
supported on both is marked ``not specific to training`` in the terminal, the JSON report and the HTML."""

from __future__ import annotations

import json

import pytest

pytest_plugins = ["pytester"]

CLAIMS = """
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def built(codi_model):
    # a session fixture on the model: built once for the model and once for its twin, never more
    with Path("builds.jsonl").open("a") as handle:
        handle.write(json.dumps(codi_model.fingerprint()["name"]) + "\\n")
    return codi_model


@pytest.mark.claim(id="ANY-01", statement="the model has a vocabulary (true of any weights)", kind="empirical")
def test_any_weights(claim, built):
    claim.record("vocab", built.vocab_size, verdict="supported" if built.vocab_size > 0 else "refuted")


@pytest.mark.claim(id="OWN-01", statement="the weights are the seeded tiny model's", kind="empirical")
@pytest.mark.parametrize("seed", [1234])
def test_own_weights(claim, codi_model, seed):
    from codi_probe.tiny import build_tiny

    same = codi_model.weights_sha256() == build_tiny("tiny-random-gpt2", seed=seed).weights_sha256()
    claim.record("same", float(same), verdict="supported" if same else "refuted")


@pytest.mark.claim(id="INV-01", statement="an invariant is not run on the twin", kind="invariant")
def test_invariant(claim, codi_model):
    assert claim.check(codi_model.vocab_size > 0)
"""


def _lines(output: str, claim_id: str) -> str:
    """The terminal line of ``claim_id`` with its wrapped continuation, whitespace collapsed."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(claim_id))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return " ".join(" ".join(lines[start:end]).split())


def test_a_claim_true_of_any_weights_is_marked_not_specific_to_training(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_twin_claims=CLAIMS)
    # the model's own verdicts are checked against the profile, the twin's (refuted) never are
    (pytester.path / "profile.toml").write_text('[claims]\n"OWN-01[1234]" = {verdict = "supported", why = "seeded"}\n')
    run = run_claims("--codi-model=tiny-random-gpt2", "--codi-threads=1", "--codi-randomization-check",
                     "--codi-expect=profile.toml", subprocess=True)
    run.result.assert_outcomes(passed=5)  # three claims, and the twins of the two empirical ones
    report = run.report
    assert report["schema_version"] == "1.5" and report["options"]["randomization_check"] is True
    any_weights, own, invariant = run.claim("ANY-01"), run.claim("OWN-01[1234]"), run.claim("INV-01")
    # JSON: both verdicts, and the mark on the claim supported on both
    assert any_weights["verdict"] == any_weights["randomized"]["verdict"] == "supported"
    assert any_weights["not_specific_to_training"] is True
    assert own["verdict"] == "supported" and own["randomized"]["verdict"] == "refuted"
    assert own["not_specific_to_training"] is False
    assert own["expected"] == "supported" and own["randomized"]["outcome"] == "passed"  # the twin is not checked
    assert "randomized" not in invariant and "not_specific_to_training" not in invariant
    section = report["randomization"]
    assert section["not_specific_to_training"] == ["ANY-01"] and section["claims"] == 2 and section["tests"] == 2
    assert section["outcomes"] == {"passed": 2}
    assert section["model"]["name"] == "tiny-random-gpt2+randomized" and section["model"]["seed"] == 0
    assert section["model"]["sha256"] != report["model"]["sha256"]
    assert report["summary"]["tests"] == 3 and report["summary"]["claims"] == 3  # the twins are folded in
    assert report["model"]["name"] == "tiny-random-gpt2"  # the twin does not overwrite the model's fingerprint
    # the twins run after every claim on the model: the model's session fixtures are built once, the twin's once
    builds = [json.loads(line) for line in (pytester.path / "builds.jsonl").read_text().splitlines()]
    assert builds == ["tiny-random-gpt2", "tiny-random-gpt2+randomized"]
    # terminal
    assert "[not specific to training]" in _lines(run.output, "ANY-01")
    assert "(randomized: refuted)" in _lines(run.output, "OWN-01") and "not specific" not in _lines(run.output, "OWN-01")
    assert "randomization check: 1 of 2 claims" in run.output
    # HTML
    from codi_probe.report.html import table_html
    from codi_probe.report.tables import claims_table

    html = table_html(claims_table(report))
    row = next(r for r in html.split("<tr>") if "ANY-01" in r)
    assert '<td class="not-specific">supported: not specific to training</td>' in row
    row = next(r for r in html.split("<tr>") if "OWN-01" in r)
    assert '<td class="v-refuted">refuted</td>' in row and "not-specific" not in row


def test_twins_are_appended_after_selection_and_only_with_the_option(pytester: pytest.Pytester) -> None:
    """Without the option the run is the same run: no twin item. With it, a twin of each selected empirical
    claim that uses the model, after every other test (so the model's fixtures are rebuilt only once)."""
    pytester.makepyfile(test_twin_claims=CLAIMS)

    def selected(*args: str) -> list[pytest.Item]:
        rec = pytester.inline_run("--collect-only", "--codi-model=tiny-random-gpt2", "--codi-report=none",
                                  "-p", "no:cacheprovider", *args)
        return rec.getcalls("pytest_collection_finish")[0].session.items

    plain = selected()
    assert [i.name for i in plain] == ["test_any_weights", "test_own_weights[1234]", "test_invariant"]
    checked = selected("--codi-randomization-check", "-k", "not own")
    assert [i.name for i in checked] == ["test_any_weights", "test_invariant", "test_any_weights@randomized"]
    twin = checked[-1]
    assert twin.callspec.params == {"codi_model": "randomized"} and twin.callspec.id == ""
    assert twin.get_closest_marker("empirical") is not None
