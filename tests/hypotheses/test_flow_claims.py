"""FLOW-08 and FLOW-06 of ``hypotheses/test_flow.py`` measure what claims.md 4.G states: synthetic per-problem
outcomes go through the claims' own evidence and decision functions (no model run)."""

from __future__ import annotations

import numpy as np

from codi_probe.hypothesis import combine, decide
from codi_probe.hypotheses import test_flow as flow

N = 100


def _verdict(base, top, bottom, unparseable=0.0) -> str:
    ev, controls = flow.flow08_evidence(base, top, bottom, unparseable)
    return decide(combine(flow.FLOW08, ev, len(base), controls)).verdict


def _old_flow08_verdict(base, top, bottom_head) -> str:
    """The procedure FLOW-08 ran before issue 30: 'the top head is critical' (top zeroed costs > 10pp more than
    the single bottom-ranked head), with only the 50pp bottom-head control."""
    from codi_probe import stats
    from codi_probe.hypothesis import Hypothesis, Prediction

    old = Hypothesis(Prediction("accuracy change, top head zeroed minus bottom head zeroed", "less", -0.10),
                     controls=("bottom head within 50pp",))
    ev = [stats.paired_binary_evidence(bottom_head, top, old.predictions[0])]
    return decide(combine(old, ev, len(base), {old.controls[0]: float(bottom_head.mean() - base.mean()) > -0.5})).verdict


def test_flow08_redundant_heads_support_the_source_and_refuted_the_old_claim():
    """The source's claim: heads are redundant. No head's ablation costs anything: the source's version is
    supported, the old 'top head is critical' was refuted on the same data."""
    ones = np.ones(N, dtype=bool)
    assert _verdict(ones, ones, np.stack([ones] * 10, 1)) == "supported"
    assert _old_flow08_verdict(ones, ones, ones) == "refuted"


def test_flow08_uses_the_bottom_decile_not_the_single_bottom_head():
    """One bottom-ranked head that happens to break the model (the old single-head control) does not make the
    measurement invalid when the rest of the decile is harmless; the old procedure was invalid there."""
    ones = np.ones(N, dtype=bool)
    broken = np.random.default_rng(0).uniform(size=N) < 0.4  # the lowest-ranked head: 60% of answers lost
    bottom = np.stack([broken] + [ones] * 9, 1)  # the other 9 heads of the decile are harmless
    assert _verdict(ones, ones, bottom) == "supported"
    assert _old_flow08_verdict(ones, ones, broken) == "invalid"


def test_flow08_more_than_5_percent_unparseable_answers_is_invalid():
    ones = np.ones(N, dtype=bool)
    assert _verdict(ones, ones, ones, unparseable=0.05) == "supported"
    assert _verdict(ones, ones, ones, unparseable=0.06) == "invalid"
    assert flow.unparseable_share([1.0, None, float("nan"), 3.0]) == 0.5


def test_flow08_a_critical_top_head_refutes_redundancy():
    ones, dead = np.ones(N, dtype=bool), np.zeros(N, dtype=bool)
    assert _verdict(ones, dead, np.stack([ones] * 3, 1)) == "refuted"


def test_flow08_bottom_decile_is_the_last_tenth_capped_at_ten_heads():
    order = np.arange(512)
    assert flow.bottom_decile(order).tolist() == list(range(502, 512))
    assert flow.bottom_decile(np.arange(40)).tolist() == [36, 37, 38, 39]
    assert flow.bottom_decile(np.arange(8)).tolist() == [7]


def test_flow06_runs_p0_separately():
    """claims.md FLOW-06: 'run separately for P0 (BOT)'. The P0 condition blocks key P0 from every later query
    (P1..P6 and the answer), a mask distinct from the P1 one, and its change is recorded with McNemar's p."""
    conditions = flow.flow06_conditions(1)
    block = conditions["block_P0"][0][0]
    assert block.keys == ("P0",) and set(block.positions) == {"P1", "P2", "P3", "P4", "P5", "P6", "EOT"}
    assert conditions["block_P1"][0][0].keys == ("P1",)
    noop = np.ones(N, dtype=bool)
    blocked = noop.copy()
    blocked[:20] = False
    got = flow.flow06_p0_statistics(noop, blocked)
    assert np.isclose(got["accuracy change, block P0 (BOT)"], -0.2) and got["McNemar p, block P0 vs no-op"] < 1e-5
