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


# ---- LENS-10: the source's top-k test with its "while step1/step2 are found" half ----------------------------

def _lens10_verdict(top: dict) -> str:
    from codi_probe.experiments.lens import lens10_evidence, lens10_predictions
    from codi_probe.hypothesis import Hypothesis, combine, decide

    hyp = Hypothesis(lens10_predictions())
    ev = lens10_evidence(top, hyp.predictions)
    return decide(combine(hyp, ev, len(top["answer"]))).verdict


def _former_lens10_verdict(answer_top1: np.ndarray) -> str:
    """The procedure LENS-10 used before: the answer's top-1 rate < 10% at every position, nothing else."""
    from codi_probe import stats
    from codi_probe.hypothesis import Hypothesis, Prediction, combine, decide

    hyp = Hypothesis(tuple(Prediction(f"top-1 rate of the answer at {p}", "less", 0.10) for p in LATENT_POSITIONS))
    ev = [stats.proportion_evidence(int(answer_top1[:, j].sum()), len(answer_top1), pred)
          for j, pred in enumerate(hyp.predictions)]
    return decide(combine(hyp, ev, len(answer_top1))).verdict


def _rows(n: int, rates: dict, seed: int = 0) -> np.ndarray:
    """``[n, 7]`` bool with exactly round(rate * n) hits at each named position (a fixed seed places them)."""
    rng = np.random.default_rng(seed)
    m = np.zeros((n, len(LATENT_POSITIONS)), dtype=bool)
    for pos, rate in rates.items():
        m[rng.permutation(n)[:round(rate * n)], LATENT_POSITIONS.index(pos)] = True
    return m


def test_lens10_a_lens_that_reads_nothing_refutes_it_where_the_top1_rule_supported_it():
    n = 200
    nothing = {name: _rows(n, {}) for name in ("answer", "step1", "step2")}
    assert _former_lens10_verdict(nothing["answer"]) == "supported"  # every rate 0: passed by construction
    assert _lens10_verdict(nothing) == "refuted"  # step1 / step2 are not found: the second half fails


def test_lens10_reads_the_top_k_not_the_top_1():
    n = 200
    top1 = _rows(n, {})  # the answer is never the top-1 ...
    topk = {"answer": _rows(n, {"P4": 0.4}), "step1": _rows(n, {"P2": 0.9}), "step2": _rows(n, {"P4": 0.9})}
    assert _former_lens10_verdict(top1) == "supported"
    assert _lens10_verdict(topk) == "refuted"  # ... but in the top-k at P4 for 40%


def test_lens10_is_supported_when_the_steps_are_found_and_the_answer_is_not():
    n = 200
    top = {"answer": _rows(n, {"P6": 0.01}), "step1": _rows(n, {"P2": 0.9}), "step2": _rows(n, {"P4": 0.85})}
    assert _lens10_verdict(top) == "supported"
    top["step2"] = _rows(n, {"P3": 0.9})  # step2 found, but not at LENS-02's position P4
    assert _lens10_verdict(top) == "refuted"


def test_lens10_shows_the_answer_s_worst_position_first():
    from codi_probe.experiments.lens import lens10_evidence, lens10_predictions

    top = {"answer": _rows(100, {"P3": 0.05, "P5": 0.08}), "step1": _rows(100, {}), "step2": _rows(100, {})}
    ev = lens10_evidence(top, lens10_predictions())
    assert ev[0].statistic.endswith("at P5") and ev[0].value == pytest.approx(0.08)
    assert len(ev) == len(LATENT_POSITIONS) + 2
