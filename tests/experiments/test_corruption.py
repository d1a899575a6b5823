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


def test_shifted_number_token_keeps_the_spelling(engine):
    from codi_probe.experiments.corruption import shifted_number_token

    tok = engine.model.tokenizer
    for text, want in ((" 8", " 9"), ("3", "4")):
        ids, want_ids = tok.encode(text, add_special_tokens=False), tok.encode(want, add_special_tokens=False)
        if len(ids) == 1 and len(want_ids) == 1:
            assert shifted_number_token(tok, ids[0], 1) == want_ids[0]
    word = tok.encode(" the", add_special_tokens=False)
    assert shifted_number_token(tok, word[0], 1) is None


def test_discretized_latents_set_the_lens_top1_embedding(engine, problems):
    """COR-03's discretize: the Set at P_k is the input embedding of h_(k-1)'s lens top-1 token; '+ 1' moves
    integer tokens to the next number and leaves the others as they are."""
    import torch

    from codi_probe.engine import Record
    from codi_probe.experiments.corruption import discretized_latents, shifted_number_token

    trace = engine.run([p.question for p in problems], record=Record(sites=()), max_new_tokens=1)
    plain, none = discretized_latents(engine, trace)
    plus, share = discretized_latents(engine, trace, plus=1)
    assert none == 0.0 and 0.0 <= share <= 1.0 and len(plain) == len(problems)
    weight = engine.model.embed.weight
    tops = engine.logits(trace.latent_pre[:, :6].to(weight)).argmax(-1).tolist()  # [n, 6]: h_0..h_5
    for i, (ivs, ivs_plus) in enumerate(zip(plain, plus)):
        (iv,), (iv_plus,) = ivs, ivs_plus
        assert iv.site == "latent_pre_prj" and iv.positions == ("P1", "P2", "P3", "P4", "P5", "P6")
        for k, position in enumerate(iv.positions):
            top = tops[i][k]
            assert torch.equal(iv.op.value[position], weight[top].detach().cpu())
            shifted = shifted_number_token(engine.model.tokenizer, top, 1)
            assert torch.equal(iv_plus.op.value[position], weight[top if shifted is None else shifted].detach().cpu())
