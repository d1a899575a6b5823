"""codi_probe.plugin.summary: the terminal summary names the resolved baseline and a weights change, says
"subset" for a subset run, and fits the terminal."""

from __future__ import annotations

from codi_probe.plugin.summary import summary_lines


def report(subset: bool = False, baseline: dict | None = None, reason: str = "") -> dict:
    claims = [{"id": f"C-{i:02d}", "verdict": "inconclusive", "statistic": "rate", "value": 0.5, "ci": None,
               "p_value": 0.2, "n": 10, "min_n": 20, "q_value": 0.3, "outcome": "passed", "verdict_reason": reason,
               "expected": None} for i in range(3)]
    selection = {"keyword": "importance and P5" if subset else None, "markexpr": None, "last_failed": False,
                 "nodeids": [], "subset": subset}
    return {"claims": claims, "status": "complete", "summary": {"verdicts": {"inconclusive": 3}},
            "expectations": {"source": "none"}, "environment": {"selection": selection},
            "options": {"compare": "latest" if baseline else None}, "baseline": baseline}


def test_a_subset_run_says_subset_not_status_complete():
    """Issue 32 item 10: ``-k "importance and P5"`` printed "status complete" for a 4-claim subset."""
    last = summary_lines(report(subset=True))[-1]
    assert "status complete" not in last and "subset (-k 'importance and P5'), complete" in last
    assert summary_lines(report())[-1].endswith("status complete")


def test_the_resolved_baseline_and_a_weights_change_are_named():
    """Issue 32 item 8: the terminal never named the baseline ``latest`` resolved to, or a weights change."""
    lines = summary_lines(report(baseline={"path": "reports/runs/0003_m.json", "weights_changed": "weights sha256 a -> b"}))
    assert lines[0] == "codi-probe baseline: reports/runs/0003_m.json (--codi-compare latest)"
    assert lines[1].startswith("codi-probe baseline: weights sha256 a -> b")
    assert not summary_lines(report())[0].startswith("codi-probe baseline")


def test_claim_lines_fit_the_terminal():
    """Issue 32 item 10: claim lines ran 20 characters past a 200-column terminal; now they wrap."""
    lines = summary_lines(report(reason="n below minimum " * 20), width=120)
    assert max(len(line) for line in lines[:-1]) <= 120
    assert len(lines) > 4 and lines[1].startswith("      ")  # continuations indented under the verdict
    joined = " ".join(line.strip() for line in lines)
    assert joined.count("n below minimum") == 60  # nothing dropped
