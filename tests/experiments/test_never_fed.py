"""IMP-13a, the source's check: randomising the never-fed e_7 = prj(h_6) leaves every output unchanged,
and the same check fails where the randomised projection is fed (the index mix-up the source warns about)."""

import pytest

from codi_probe.engine import Intervention
from codi_probe.experiments.never_fed import randomise_projection_of


def _former_check() -> bool:
    """What IMP-13a checked before: the API refuses to address P7 (true whatever the loop feeds)."""
    refused = 0
    for site in ("latent_pre_prj", "latent_post_prj"):
        try:
            Intervention(site, ("P7",))
        except ValueError:
            refused += 1
    return refused == 2


def test_randomising_e7_changes_nothing(engine, questions):
    check = randomise_projection_of(engine, questions, max_new_tokens=4)
    assert check.h_index == engine.num_latent == 6
    assert check.unchanged and check.tokens_changed == 0 and check.latent_deviation <= 1.0
    assert check.hits == 0  # the loop never even projects h_6


def test_a_fed_projection_fails_the_check_the_former_refusal_passed(engine, questions):
    mixed_up = randomise_projection_of(engine, questions, h_index=5, max_new_tokens=4)  # e_6 = prj(h_5) is fed at P6
    assert mixed_up.hits == len(questions)  # every row's prj(h_5) was replaced ...
    assert not mixed_up.unchanged and mixed_up.latent_deviation > 1.0  # ... and h_6 moved
    assert _former_check()  # the former IMP-13a held all the same: it could not fail


def test_one_line_error_for_a_latent_that_does_not_exist(engine, questions):
    with pytest.raises(ValueError, match="h_index must be in 0..6"):
        randomise_projection_of(engine, questions, h_index=7)
