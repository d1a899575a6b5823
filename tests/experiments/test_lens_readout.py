"""The lens read-out: top-k words and entropies against an independent path (the engine's layer lens of the
last block's pre-norm output), exact matching of values (F-20), and single-token spellings."""

import numpy as np
import pytest
import torch

from codi_probe.engine import Record
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.experiments.lens import LensReadout, is_number, lens_readout, value_token_ids
from codi_probe.tolerance import tolerance


def test_readout_matches_the_layer_lens_of_the_last_block(engine, questions):
    trace = engine.run(questions, record=Record(sites=("resid_post",)), max_new_tokens=1)
    lens = lens_readout(engine, trace, {"v": [1, 2, None]})
    last = engine.model.n_layers - 1
    tol = tolerance(engine.model.base_dtype, "batch_vs_alone")
    for k, pos in enumerate(LATENT_POSITIONS):
        ref = torch.log_softmax(engine.logit_lens(trace, last, pos), -1)  # final_norm(resid) through lm_head
        ent = -(ref.exp() * ref).sum(-1).numpy()
        assert np.allclose(lens.entropy[:, k], ent, atol=1e-4, rtol=1e-4)
        for i in range(trace.n_rows):
            top = ref[i].argmax().item()
            if lens.words[i][k][0] != engine.decode([top]).strip():  # only a genuine near-tie may differ
                gap = (ref[i].topk(2).values[0] - ref[i].topk(2).values[1]).item()
                assert gap <= tol.atol * 10
    assert lens.entropy.shape == (3, 7) and lens.probability["v"].shape == (3, 7)
    assert np.isnan(lens.probability["v"][2]).all()  # a missing value has no probability


def test_value_matching_is_exact():
    words = [[["12", "1", " x"] + ["?"] * 7 for _ in LATENT_POSITIONS], [["-3", "a"] + ["?"] * 8 for _ in LATENT_POSITIONS]]
    r = LensReadout(words, np.zeros((2, 7)), {})
    assert r.in_top([1, -3], 1).tolist() == [[False] * 7, [True] * 7]  # "1" does not match 12
    assert r.in_top([1, None], 2)[0].all() and not r.in_top([1, None], 2)[1].any()
    assert r.number_top1().all()
    with pytest.raises(ValueError, match="top-k"):
        r.in_top([1, 1], 11)


@pytest.mark.parametrize("word,number", [("12", True), (" 1,200", True), ("-3.5", True), ("x1", False),
                                         ("", False), ("1.", False), ("+", False)])
def test_is_number(word, number):
    assert is_number(word) is number


def test_single_token_spellings(tiny):
    model = tiny
    ids = value_token_ids(model.tokenizer, 8)
    assert ids and all(model.tokenizer.decode([i]).strip() == "8" for i in ids)
    assert value_token_ids(model.tokenizer, 123456789) == [] or all(
        model.tokenizer.decode([i]).strip() == "123456789" for i in value_token_ids(model.tokenizer, 123456789))
