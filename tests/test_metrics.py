"""Metrics agree with SciPy, and the F-04 batchmean artifact is caught."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import entropy

from codi_probe.metrics import (accuracy, answer_logprob, answer_readout_index, js_divergence, kl_divergence,
                                logit_difference)

logit_vectors = st.lists(st.floats(-20, 20, allow_nan=False), min_size=2, max_size=40)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_kl_and_js_match_scipy(data):
    p = data.draw(logit_vectors)
    q = data.draw(st.lists(st.floats(-20, 20, allow_nan=False), min_size=len(p), max_size=len(p)))
    pt, qt = torch.tensor(p, dtype=torch.float64), torch.tensor(q, dtype=torch.float64)
    pp, qq = torch.softmax(pt, 0).numpy(), torch.softmax(qt, 0).numpy()
    assert kl_divergence(pt, qt).item() == pytest.approx(entropy(pp, qq), rel=1e-6, abs=1e-9)
    # scipy's jensenshannon is a distance (the square root); for near-identical p and q the divergence
    # under it rounds below 0 and the root is nan, so the reference divergence is built from entropy()
    m = 0.5 * (pp + qq)
    assert js_divergence(pt, qt).item() == pytest.approx(0.5 * (entropy(pp, m) + entropy(qq, m)), rel=1e-5, abs=1e-9)
    if jensenshannon(pp, qq) == jensenshannon(pp, qq):  # and it agrees with the distance where that is defined
        assert js_divergence(pt, qt).item() == pytest.approx(jensenshannon(pp, qq) ** 2, rel=1e-5, abs=1e-9)


def test_kl_self_is_zero_and_positive_when_the_answer_changes():
    v = 50260
    clean = torch.randn(v)
    clean[1248] += 15.0  # a confident answer token
    assert kl_divergence(clean, clean).item() == 0.0
    changed = clean.clone()
    changed[1248] -= 30.0  # the answer is no longer chosen
    assert kl_divergence(clean, changed).item() > 0.1


def test_batchmean_on_a_vocabulary_vector_is_the_f04_artifact():
    """The seeds' KL: kl_div(log q, p, 'batchmean') on 1-D tensors divides by V and reads ≈ 0."""
    v = 128259
    p, q = torch.randn(v) * 3, torch.randn(v) * 3
    planted = torch.nn.functional.kl_div(torch.log_softmax(q, 0), torch.log_softmax(p, 0), reduction="batchmean",
                                         log_target=True)
    ours = kl_divergence(p, q)
    assert ours.item() == pytest.approx(planted.item() * v, rel=1e-3)
    assert planted.item() < 1e-3 < ours.item()  # the guard: the right KL is not ≈ 0


def test_logit_difference_and_logprob():
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, 0.0, 3.0]])
    assert logit_difference(logits, 1, 2).tolist() == [3.0, -3.0]
    assert logit_difference(logits, [1, 2], [0, 0]).tolist() == [2.0, 2.0]
    assert answer_logprob([torch.tensor([-1.0, -0.5]), torch.tensor([-2.0])]).tolist() == [-1.5, -2.0]


def test_accuracy_uses_official_equality():
    assert accuracy([18.0, None, 3.0], [18.0, 5.0, 4.0]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        accuracy([], [])


def test_readout_is_the_number_token_not_the():
    from codi_probe.loading import load_tokenizer

    tok = load_tokenizer("gpt2")
    ids = tok("The answer is: 18")["input_ids"] + [50256]
    idx = answer_readout_index(tok, ids, "18")
    assert tok.decode([ids[idx]]) == " 18" and idx == 4
    with pytest.raises(ValueError, match="does not occur"):
        answer_readout_index(tok, ids, "7")


@pytest.mark.parametrize("text, number, token", [("The answer is: 18", "8", None), ("The answer is: 80", "8", None),
                                                 ("The answer is: 8.5", "8", None), ("8 then 18", "8", "8"),
                                                 ("The answer is: -8", "8", "8"), ("The answer is: 8", "8", " 8")])
def test_readout_matches_whole_numbers_only(text, number, token):
    """Defect: "8" was found inside "18". A number matches only where no digit or decimal point is next
    to it; the final whole occurrence wins."""
    from codi_probe.loading import load_tokenizer

    tok = load_tokenizer("gpt2")
    ids = tok(text)["input_ids"]
    if token is None:
        with pytest.raises(ValueError, match="whole number"):
            answer_readout_index(tok, ids, number)
    else:
        idx = answer_readout_index(tok, ids, number)
        assert tok.decode(ids[: idx + 1]).endswith(token) and number in tok.decode([ids[idx]])
