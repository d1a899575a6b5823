"""The corruption grid, layer patching and problem families on a tiny model."""

import numpy as np
import pytest

from codi_probe.data import load_pairs, shipped_pairs_path
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.experiments.corruption import corruption_grid, relative_noise
from codi_probe.experiments.patching import layer_patching, template_pairs
from codi_probe.experiments.problems import family_problems


def test_family_problems_record_their_sampling():
    for fam in ("gsm8k", "cyw", "ao"):
        ps = family_problems(fam, 5, seed=1)
        assert len(ps) == 5 and ps.filters[-1]["n"] == 5
    assert [p.id for p in family_problems("cyw", 5, seed=1)] == [p.id for p in family_problems("cyw", 5, seed=1)]
    with pytest.raises(ValueError, match="unknown problem family"):
        family_problems("svamp", 5)


def test_corruption_grid_shapes_and_a_null_method(engine):
    problems = list(family_problems("cyw", 3))
    res = corruption_grid(engine, problems, layer=1, methods=relative_noise((0.0, 5.0)), max_new_tokens=4)
    assert res.per_position("kl").shape == (3, len(LATENT_POSITIONS))
    assert np.all(res.per_position("kl", "rel_noise_0") == 0)
    assert not res.per_position("changed", "rel_noise_0").any()
    assert res.per_position("kl", "rel_noise_5").mean() > 0


def test_layer_patching_accounts_for_every_pair(engine):
    pairs = [(p.clean, p.corrupted) for p in list(load_pairs(shipped_pairs_path()))[:4]]
    res = layer_patching(engine, pairs)
    assert res.recovery.shape[0] + sum(res.dropped.values()) == len(pairs)
    assert res.recovery.shape[1] == engine.model.n_layers and np.isfinite(res.recovery).all()


def test_template_pairs_differ_in_answer_only():
    problems = list(family_problems("cyw", 40, seed=0))
    for a, b in template_pairs(problems):
        assert a.template == b.template and a.operation == b.operation and a.answer != b.answer
