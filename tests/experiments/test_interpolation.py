"""INTERP-01's reading of an interpolation path: monotone is not intermediate."""

import numpy as np
import pytest

from codi_probe.experiments.interpolation import summarise_path

ALPHAS = np.linspace(0, 1, 11)


def test_a_step_function_is_monotone_but_has_no_intermediate_answer():
    """The old claim test scored tau >= 0.8 only: a step from a1 to a2 passes it although it refutes
    "intermediate alphas give intermediate answers"."""
    step = [14.0] * 6 + [20.0] * 5
    p = summarise_path(ALPHAS, step)
    assert p.tau > 0.7 and not p.between and p.outside == 0.0  # tau-b of a clean step is 0.74


def test_a_ramp_is_intermediate_and_signed_towards_a2():
    ramp = [20.0, 19, 18, 17, 16, 15, 15, 14, 14, 14, 14]
    p = summarise_path(ALPHAS, ramp)
    assert p.between and p.tau > 0.8 and p.outside == pytest.approx(6 / 11)


def test_pairs_that_cannot_speak_are_dropped():
    assert summarise_path(ALPHAS, [3.0] * 11) is None
    assert summarise_path(ALPHAS, [3.0] + [None] * 9 + [5.0]) is None
