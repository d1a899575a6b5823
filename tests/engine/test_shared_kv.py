"""The shared-prefix layout (``kv="shared"``, the default) against per-row copies (``kv="per_row"``).

Every row reads its question's prefix, and the trunk's latent columns before its first intervened step,
from one shared copy; these tests run the same rows both ways: interventions joining at every step,
knock-outs of question and latent keys, both padding modes, attention recording, teacher forcing,
rows that stop at different answer steps, and a question with no rows.
"""

import dataclasses

import pytest
import torch

from codi_probe.engine import CodiEngine, Intervention, Record, Zero, knockout
from codi_probe.engine import shared_kv
from codi_probe.engine.positions import FED_POSITIONS
from codi_probe.tolerance import tokens_agree, tolerance

TOL = tolerance(torch.float32, "batch_vs_alone")


def _variants(n_questions: int, layer: int) -> list:
    """Per question: no intervention, a zero at every fed position (joins P1..P6), at P0 and at EOT, and
    knock-outs of the question, of P0 and of P2 (different queries)."""
    rows = []
    for q in range(n_questions):
        rows.append((q, ()))
        rows += [(q, [Intervention("resid_post", (p,), Zero(), layer=layer)]) for p in ("P0", *FED_POSITIONS, "EOT")]
        rows += [(q, [knockout(("P3",), ("Q",))]), (q, [knockout(("EOT",), ("P0",))]),
                 (q, [knockout(("P5", "P6"), ("P2",))])]
    return rows


def _assert_same(a, b, tol=TOL):
    assert tol.close(a.latent_pre, b.latent_pre)
    assert tol.close(a.latent_post, b.latent_post)
    for r in range(a.n_rows):
        assert tokens_agree(a.answer_ids[r], b.answer_ids[r], b.answer_logits[r] if b.answer_logits else None,
                            tol).agree, r
        if a.answer_logits:
            assert tol.close(a.answer_logits[r], b.answer_logits[r])


@pytest.mark.parametrize("padding", ["exact", "official"])
def test_shared_prefix_equals_per_row_copies(tiny, questions, padding):
    variants = _variants(len(questions), layer=0)
    shared = CodiEngine(tiny, padding=padding, kv="shared").run(questions, variants, max_new_tokens=6)
    copied = CodiEngine(tiny, padding=padding, kv="per_row").run(questions, variants, max_new_tokens=6)
    _assert_same(shared, copied)


def test_shared_attention_probabilities_equal_per_row(tiny, questions):
    """The probabilities keep the absolute key layout (prefix, P0..P6, EOT, answers), trunk columns included."""
    variants = _variants(len(questions), layer=1)
    rec = Record(sites=("resid_post",), attention=True)
    shared = CodiEngine(tiny, kv="shared").run(questions, variants, record=rec, max_new_tokens=3)
    copied = CodiEngine(tiny, kv="per_row").run(questions, variants, record=rec, max_new_tokens=3)
    _assert_same(shared, copied)
    assert shared.attn.shape == copied.attn.shape
    assert TOL.close(shared.attn, copied.attn)
    assert TOL.close(shared.sites[("resid_post", 1)], copied.sites[("resid_post", 1)])


def test_shared_teacher_forcing_with_readout(tiny, questions):
    variants = _variants(len(questions), layer=0)
    targets = [[5, 6, 7, 8][: 2 + r % 3] for r in range(len(variants))]
    readout = [len(t) - 1 for t in targets]
    shared = CodiEngine(tiny, kv="shared").run(questions, variants, teacher_force=targets, readout=readout)
    copied = CodiEngine(tiny, kv="per_row").run(questions, variants, teacher_force=targets, readout=readout)
    for r in range(len(variants)):
        assert TOL.close(shared.answer_logits[r], copied.answer_logits[r])


def test_rows_stopping_at_different_steps(tiny, questions, monkeypatch):
    """Rows that emit a stop id leave the batch (the cache drops them) while others go on; a trunk row
    that stops early must not take its question's shared latent columns with it."""
    variants = _variants(len(questions), layer=0)
    free = CodiEngine(tiny, kv="per_row").run(questions, variants, max_new_tokens=8)
    # stop ids: tokens some rows emit at their 2nd and 4th step, so rows stop at different steps
    stops = {free.answer_ids[0][1], free.answer_ids[len(variants) // 2][3]}
    monkeypatch.setattr(tiny, "special", dataclasses.replace(tiny.special, eos=tuple(sorted(stops))))
    shared = CodiEngine(tiny, kv="shared").run(questions, variants, max_new_tokens=8)
    copied = CodiEngine(tiny, kv="per_row").run(questions, variants, max_new_tokens=8)
    lengths = {len(x) for x in copied.answer_ids}
    assert len(lengths) > 1, "the test needs rows that stop at different steps"
    _assert_same(shared, copied)


def test_a_question_without_rows_and_no_trunk_sharing(tiny, questions):
    """Rows of questions 0 and 2 only; and with share_trunk=False every row owns every latent column."""
    variants = [v for v in _variants(len(questions), layer=0) if v[0] != 1]
    copied = CodiEngine(tiny, kv="per_row").run(questions, variants, max_new_tokens=4)
    _assert_same(CodiEngine(tiny, kv="shared").run(questions, variants, max_new_tokens=4), copied)
    _assert_same(CodiEngine(tiny, share_trunk=False, kv="shared").run(questions, variants, max_new_tokens=4), copied)


def test_fewer_latent_steps(tiny, questions):
    variants = [(q, [Intervention("resid_post", ("P2",), Zero(), layer=0)]) for q in range(len(questions))]
    for n in (0, 3):
        shared = CodiEngine(tiny, num_latent=n, kv="shared").run(questions, variants if n >= 2 else None, max_new_tokens=4)
        copied = CodiEngine(tiny, num_latent=n, kv="per_row").run(questions, variants if n >= 2 else None,
                                                                  max_new_tokens=4)
        _assert_same(shared, copied)


def test_rows_own_only_the_columns_they_compute(tiny, questions, monkeypatch):
    """Memory: a row joining at P_k stores latent columns k.. only, and no row stores the prefix. Every
    latent step's own columns are checked as the cache writes them."""
    seen = []
    update = shared_kv.SuffixLayer.update

    def spy(self, k, v, *args, **kwargs):
        out = update(self, k, v, *args, **kwargs)
        if self.layer == 0:
            seen.append((len(self.latent_k), self.rows, [c.shape[0] for c in self.latent_k], self.answer.length))
        return out

    monkeypatch.setattr(shared_kv.SuffixLayer, "update", spy)
    variants = [(0, [Intervention("resid_post", (p,), Zero(), layer=0)]) for p in FED_POSITIONS] + [(0, ())]
    CodiEngine(tiny, kv="shared").run(questions[:1], variants, max_new_tokens=3)
    # P0: the trunk (the no-intervention row) alone; at P_k the row joining there is added
    assert [s[2] for s in seen[:7]] == [[1], [1, 2], [1, 2, 3], [1, 2, 3, 4], [1, 2, 3, 4, 5],
                                        [1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6, 7]]
    assert all(s[3] == 0 for s in seen[:7]) and seen[-1][3] == 3  # EOT, A0, A1 (the 3rd token is never fed)


def test_planted_missing_trunk_column_is_caught(tiny, questions, monkeypatch):
    """Planted bug: the trunk's latent columns never reach the shared buffer, so joining rows read zeros
    for P0..P_{k-1}. The comparison with per-row copies must fail."""
    variants = _variants(len(questions), layer=0)
    copied = CodiEngine(tiny, kv="per_row").run(questions, variants, max_new_tokens=4)

    def no_trunk(self, key_states, value_states, *args, **kwargs):
        if len(self.latent_k) < self.shared.n_lat:
            self.latent_k.append(key_states[:, :, 0].contiguous())
            self.latent_v.append(value_states[:, :, 0].contiguous())
        else:
            self.answer.update(key_states, value_states)
        return key_states, value_states

    monkeypatch.setattr(shared_kv.SuffixLayer, "update", no_trunk)
    broken = CodiEngine(tiny, kv="shared").run(questions, variants, max_new_tokens=4)
    with pytest.raises(AssertionError):
        _assert_same(broken, copied)


def test_shared_attention_outside_a_run_is_an_error():
    class Module:
        layer_idx = 0

    x = torch.zeros(1, 1, 1, 4)
    with pytest.raises(RuntimeError, match="outside an engine run"):
        shared_kv.shared_prefix_attention(Module(), x, x, x)


def test_auto_shares_only_when_a_question_has_several_rows(tiny, questions, monkeypatch):
    calls = []
    monkeypatch.setattr(shared_kv.SharedPrefix, "set_call", lambda self, *a: calls.append(1) or None)
    CodiEngine(tiny).run(questions, max_new_tokens=2)
    assert not calls
    with pytest.raises(Exception):  # the spy breaks the shared path: it is taken
        CodiEngine(tiny).run(questions, [(0, ()), (0, [Intervention("resid_post", ("P3",), Zero(), layer=0)])],
                             max_new_tokens=2)
    assert calls


def test_unknown_kv_layout(tiny):
    with pytest.raises(ValueError, match="unknown kv layout 'paged'"):
        CodiEngine(tiny, kv="paged")


@pytest.mark.parametrize("kv", ["shared", "per_row"])
def test_prefix_in_several_calls_equals_one_call(tiny, questions, monkeypatch, kv):
    """The prefix runs at most PREFIX_TOKENS question tokens per call; one question per call gives the
    run (and the recorded question states) of one call for all."""
    from codi_probe.engine import loop

    variants = _variants(len(questions), layer=0)
    record = Record(sites=("resid_post",), question=True)
    one = CodiEngine(tiny, kv=kv).run(questions, variants, record=record, max_new_tokens=4)
    monkeypatch.setattr(loop, "PREFIX_TOKENS", 1)
    several = CodiEngine(tiny, kv=kv).run(questions, variants, record=record, max_new_tokens=4)
    _assert_same(several, one)
    assert TOL.close(several.question_resid, one.question_resid)
