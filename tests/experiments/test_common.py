"""Shared experiment pieces on a tiny model."""

import numpy as np
import pytest

from codi_probe.engine import Intervention, Zero
from codi_probe.engine.positions import LATENT_POSITIONS, live_positions
from codi_probe.experiments.common import (answer_target, depth_to_layer, middle_layer, readout_kl, readout_logits,
                                           run_conditions)
from codi_probe.metrics import kl_divergence
from codi_probe.tolerance import tolerance


def test_depth_to_layer():
    assert depth_to_layer(0.5, 16) == 8 and depth_to_layer(0.25, 16) == 4 and depth_to_layer(0.875, 16) == 14
    assert depth_to_layer(1.0, 12) == 11 and depth_to_layer(0.0, 4) == 0
    with pytest.raises(ValueError):
        depth_to_layer(1.5, 12)


def test_middle_layer_is_live_on_shallow_models():
    """Defect (issue 32 item 2): on a 3-block (or 2-block) model relative depth 0.5 is the last block, whose
    P6 cell is dead, so every P0..P6 grid there was refused. The grids' middle layer keeps all seven cells
    live, and is depth 0.5 itself on every model of 4 or more blocks (the shipped ones: 4, 12, 16)."""
    for n in range(2, 33):
        layer = middle_layer(n)
        assert live_positions(layer, LATENT_POSITIONS, n) == LATENT_POSITIONS, n
        assert layer == depth_to_layer(0.5, n) or n < 4, n
    assert (middle_layer(2), middle_layer(3), middle_layer(16)) == (0, 1, 8)


def test_run_conditions_rows_and_scores(engine, questions):
    zero = [[Intervention("latent_post_prj", ("P1", "P2", "P3"), Zero())] for _ in questions]
    runs = run_conditions(engine, questions, {"zero": zero, "noop": [[] for _ in questions]})
    assert runs.rows["baseline"] == [0, 1, 2] and runs.rows["zero"] == [3, 4, 5]
    assert not runs.changed("noop").any()
    ids, k = answer_target(engine, 18)
    assert engine.decode([ids[k]]).strip() == "18"
    forced = run_conditions(engine, questions, {"zero": zero, "noop": [[] for _ in questions]},
                            teacher_force=[ids] * 3, readout=[k] * 3)
    tol = tolerance(engine.model.base_dtype, "null_kl").kl  # noop and baseline are different rows of one batch
    assert np.all(readout_kl(forced, "noop") <= tol) and np.all(readout_kl(forced, "zero") > tol)
    # the reference's log-probabilities are kept per reference: each call still reads its own two runs
    for ref, name in (("baseline", "zero"), ("noop", "zero"), ("zero", "baseline")):
        direct = kl_divergence(readout_logits(forced, ref), readout_logits(forced, name)).numpy()
        assert np.array_equal(readout_kl(forced, name, reference=ref), direct), (ref, name)
    with pytest.raises(ValueError, match="has 1 rows"):
        run_conditions(engine, questions, {"bad": [[]]})


def test_filtered_effect_reports_both():
    from codi_probe.experiments.common import filtered_effect

    keep = np.array([True, False, True, True])
    rep = filtered_effect(np.array([1.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0, 0.0]), keep, "baseline-correct")
    assert rep == {"filter": "baseline-correct", "n filtered": 3, "n all": 4, "filtered": 2 / 3, "unfiltered": 0.5}
    with pytest.raises(ValueError, match="kept problems"):
        filtered_effect(np.zeros(2), np.zeros(4), keep, "x")


def test_decided_below_minimum():
    """Below its hypothesis's minimum n a claim decides "inconclusive (n below minimum)" without evidence
    (the declared controls recorded as not established); at the minimum it is left to its statistics."""
    from codi_probe.experiments.common import decided_below_minimum
    from codi_probe.hypothesis import Hypothesis, Prediction

    class Claim:
        hypothesis = Hypothesis(Prediction("x", "greater", 0.5), controls=("c",))
        calls: list = []

        def decide(self, evidence, *, n, controls=None):
            self.calls.append((list(evidence), n, controls))

    claim = Claim()
    assert decided_below_minimum(claim, 3) and claim.calls == [([], 3, {"c": False})]
    assert not decided_below_minimum(claim, claim.hypothesis.min_n) and len(claim.calls) == 1
