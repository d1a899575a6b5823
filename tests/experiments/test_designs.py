"""The corruption grid, layer patching and problem families on a tiny model."""

import numpy as np
import pytest

from codi_probe.data import load_pairs, shipped_pairs_path
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.experiments.corruption import corruption_grid, relative_noise
from codi_probe.experiments.patching import layer_patching, template_pairs
from codi_probe.experiments.problems import family_problems
from codi_probe.tolerance import tolerance


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
    # zero noise is a null method: its KL is round-off between two rows of one batch, within the tolerance
    assert np.all(res.per_position("kl", "rel_noise_0") <= tolerance(engine.model.base_dtype, "null_kl").kl)
    assert not res.per_position("changed", "rel_noise_0").any()
    assert res.per_position("kl", "rel_noise_5").mean() > 0


def test_layer_patching_accounts_for_every_pair(engine):
    pairs = [(p.clean, p.corrupted) for p in list(load_pairs(shipped_pairs_path()))[:4]]
    res = layer_patching(engine, pairs)
    assert res.recovery.shape[0] + sum(res.dropped.values()) == len(pairs)
    assert res.recovery.shape[1] == engine.model.n_layers and np.isfinite(res.recovery).all()


def test_layer_patching_shows_its_steps_with_the_time_left(engine, monkeypatch):
    """Issue 32 item 10: the patching fixture is one long engine run; it counts its forward steps on the
    package's progress bar where bars are shown (a watched terminal), and draws nothing otherwise."""
    import io

    from codi_probe import progress

    monkeypatch.setattr("codi_probe.engine.loop.STEP_BAR_DELAY", 0.0)
    pairs = [(p.clean, p.corrupted) for p in list(load_pairs(shipped_pairs_path()))[:2]]
    monkeypatch.setattr(progress, "_stream", None)  # -q, piped or a worker: no bar anywhere
    quiet = layer_patching(engine, pairs)
    stream = io.StringIO()
    monkeypatch.setattr(progress, "_stream", stream)
    shown = layer_patching(engine, pairs)
    text = stream.getvalue()
    assert "patching (" in text and "rows)" in text and "/9 [" in text and "<" in text  # prefix+P0..P6+answer
    assert np.array_equal(shown.recovery, quiet.recovery)  # the bar changes nothing


def test_template_pairs_differ_in_answer_only():
    problems = list(family_problems("cyw", 40, seed=0))
    for a, b in template_pairs(problems):
        assert a.template == b.template and a.operation == b.operation and a.answer != b.answer


# ----------------------------------------------------------------------------- cached, chunked CCTA grid
@pytest.fixture(scope="module")
def organism_engine():
    from codi_probe.engine import CodiEngine
    from codi_probe.loading import load_codi

    return CodiEngine(load_codi("codi-tiny-arith"))


def _same_grid(a, b):
    assert a.methods == b.methods and a.positions == b.positions
    assert np.array_equal(a.baseline_correct, b.baseline_correct)
    assert a.readout_fallbacks == b.readout_fallbacks
    for m in a.methods:
        for p in a.positions:
            assert np.array_equal(a.failure[m][p], b.failure[m][p]), (m, p)
            assert np.array_equal(a.changed[m][p], b.changed[m][p]), (m, p)
            np.testing.assert_allclose(a.kl[m][p], b.kl[m][p], rtol=1e-4, atol=1e-6)


def test_cached_grid_in_chunks_equals_one_batch_and_resumes(organism_engine, tmp_path, monkeypatch):
    """Chunks of 2 draw the same donors and noise as one batch; an interruption keeps finished chunks,
    the rerun computes only the rest, and a third run on the unchanged model computes nothing."""
    import codi_probe.experiments.corruption as corruption

    problems = list(family_problems("cyw", 5, seed=3))
    kw = dict(layer=2, seed=1, max_new_tokens=6)
    whole = corruption_grid(organism_engine, problems, **kw)
    assert whole.baseline_correct.any() and whole.per_position("failure").any()  # not a vacuous comparison

    real, calls = corruption._grid, []

    def interrupted(*args, **kwargs):
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(corruption, "_grid", interrupted)
    with pytest.raises(KeyboardInterrupt):
        corruption_grid(organism_engine, problems, cache_dir=tmp_path, chunk_size=2, **kw)
    (key,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    assert len(list(key.glob("shard-*.safetensors"))) == 1  # the finished chunk survived

    calls.clear()
    monkeypatch.setattr(corruption, "_grid", lambda *a, **k: (calls.append(len(a[1])), real(*a, **k))[1])
    resumed = corruption_grid(organism_engine, problems, cache_dir=tmp_path, chunk_size=2, **kw)
    assert calls == [2, 1]  # problems 3..5 only
    _same_grid(resumed, whole)

    calls.clear()
    again = corruption_grid(organism_engine, problems, cache_dir=tmp_path, chunk_size=2, **kw)
    assert calls == []
    _same_grid(again, whole)

    corruption_grid(organism_engine, problems, cache_dir=tmp_path, chunk_size=2, **{**kw, "seed": 2})
    assert len([d for d in tmp_path.iterdir() if d.is_dir()]) == 2  # another config, another key

    calls.clear()
    _same_grid(corruption_grid(organism_engine, problems, chunk_size=2, **kw), whole)  # chunked, no cache
    assert calls == [2, 2, 1]


def test_cached_grid_refuses_what_it_cannot_key(organism_engine, tmp_path):
    problems = list(family_problems("cyw", 2))
    with pytest.raises(ValueError, match="default methods"):
        corruption_grid(organism_engine, problems, layer=1, methods=relative_noise((1.0,)), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="default methods"):
        corruption_grid(organism_engine, problems, layer=1, methods=relative_noise((1.0,)), chunk_size=1)
    with pytest.raises(ValueError, match="unique"):
        corruption_grid(organism_engine, problems[:1] * 2, layer=1, cache_dir=tmp_path)
    with pytest.raises(ValueError, match="chunk_size"):
        corruption_grid(organism_engine, problems, layer=1, cache_dir=tmp_path, chunk_size=0)
    from codi_probe.engine import CodiEngine

    official = CodiEngine(organism_engine.model, padding="official")
    with pytest.raises(ValueError, match="padding='exact'"):
        corruption_grid(official, problems, layer=1, chunk_size=1)


def test_layer_recovery_is_a_ratio_of_sums_not_dominated_by_tiny_gaps():
    """LAY-01 divided by per-pair gaps as small as 1e-3: one such pair moved the mean recovery by
    hundreds. Pooled recovery (ratio of sums) is the recovered share of the total gap."""
    import numpy as np

    from codi_probe.experiments.patching import LayerPatching, band_margin

    clean = np.array([2.0, 2.0, 2.0, 0.001])
    corr = np.zeros(4)
    patched = np.array([[0.2, 1.8, 0.2], [0.2, 1.8, 0.2], [0.2, 1.8, 0.2], [0.0, 0.0, 1.0]])
    lp = LayerPatching([0, 1, 2], (patched - corr[:, None]) / (clean - corr)[:, None], clean, corr, patched)
    assert int(np.argmax(lp.recovery.mean(0))) == 2  # the tiny-gap pair decides the per-pair mean
    pooled = lp.pooled_recovery()
    assert int(np.argmax(pooled)) == 1 and pooled[1] > 0.89
    assert band_margin(pooled, [1]) > 0 and band_margin(pooled, [2]) < 0
