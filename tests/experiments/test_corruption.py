"""The corruption grid's generate= option (teacher-forced-only methods) and the ablation-type summary."""

import numpy as np
import pytest

from codi_probe.engine import Zero
from codi_probe.experiments.corruption import ablation_types, corruption_grid, relative_noise
from codi_probe.experiments.problems import family_problems


@pytest.fixture(scope="module")
def problems():
    return list(family_problems("gsm8k", 3))


def test_generate_limits_the_generated_methods(engine, problems):
    methods = {**relative_noise((0.01, 1.0), 0), "zero": lambda i, p: Zero()}
    full = corruption_grid(engine, problems, layer=1, methods=methods, max_new_tokens=4, positions=("P2", "P3"))
    part = corruption_grid(engine, problems, layer=1, methods=methods, max_new_tokens=4, positions=("P2", "P3"),
                           generate=("zero",))
    for m in methods:  # the KL of every method is the same teacher-forced readout
        assert np.allclose(part.per_position("kl", m), full.per_position("kl", m), atol=1e-6, rtol=1e-4)
    assert np.array_equal(part.per_position("changed", "zero"), full.per_position("changed", "zero"))
    with pytest.raises(ValueError, match="not measured for rel_noise_1"):
        part.per_position("changed", "rel_noise_1")
    with pytest.raises(ValueError, match="not in the grid"):
        corruption_grid(engine, problems, layer=1, methods=methods, generate=("shuffle",))


def test_ablation_types_read_each_grid(engine, problems):
    from codi_probe.experiments.corruption import gs_methods

    grid = corruption_grid(engine, problems, layer=1, max_new_tokens=4)
    mean = corruption_grid(engine, problems, layer=1, methods={"mean": lambda i, p: Zero()}, max_new_tokens=4)
    out = ablation_types(grid, mean, "changed")
    assert set(out) == {"zero", "mean", "resample"} and set(out["zero"]) == set(grid.positions)
    assert out["resample"] == dict(zip(grid.positions, grid.per_position("changed", "random").mean(0).tolist()))
    assert "random" in gs_methods(None, 3)
