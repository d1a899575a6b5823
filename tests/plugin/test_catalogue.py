"""The catalogue's session fixtures (``codi_probe.plugin.catalogue``): problem counts."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

COUNTS = """
import pytest

@pytest.mark.claim(id="C-01", statement="problem counts", kind="invariant")
def test_counts(claim, codi_problems, answer_problems):
    claim.record("invariant problems", len(codi_problems))
    claim.stat("answer problems", len(answer_problems))
    assert claim.check(True)
"""


def test_invariants_keep_their_count_and_the_sets_cap_codi_problems(pytester: pytest.Pytester, run_claims) -> None:
    """Defect (issue 32 item 6): --codi-problems also set the invariants' count (the README: "invariants
    use 8"), and a count beyond the problem sets ran silently over all of them (100000: one invariant ran
    over all of GSM8K). Now the invariants keep their 8, and a set smaller than the count is used whole
    with one warning naming the cap."""
    pytest.importorskip("codi_probe.loading")
    pytester.makepyfile(test_counts=COUNTS)
    run = run_claims("--codi-model=tiny-random-gpt2", "--codi-problems=100000", "--codi-threads=1",
                     "--codi-expect=none", subprocess=True)
    run.result.assert_outcomes(passed=1)
    record = run.claim("C-01")
    assert record["value"] == 8
    assert record["statistics"]["answer problems"] == 1319  # GSM8K test, every problem
    warned = [line for line in run.output.splitlines() if "--codi-problems 100000 exceeds" in line]
    assert warned and "exceeds the 1319 problems of the gsm8k set: answer_problems uses all 1319" in warned[0], run.output
