"""A clean trace stored per problem and assembled from chunks equals the trace of one batched run."""

import pytest
import torch

from codi_probe.engine import Intervention, Record, Zero
from codi_probe.engine.trace_rows import from_problem_tensors, problem_tensors
from codi_probe.tolerance import tolerance

TOL = tolerance(torch.float32, "batch_vs_alone")


def test_chunks_assemble_into_the_batched_trace(engine, questions):
    record = Record(sites=("resid_post", "attn_out"), attention=True, question=True)
    whole = engine.run(questions, record=record, max_new_tokens=5)
    # chunks of different prefix lengths: the short question alone, the two others together
    parts = [problem_tensors(engine.run(questions[:2], record=record, max_new_tokens=5)),
             problem_tensors(engine.run(questions[2:], record=record, max_new_tokens=5))]
    built = from_problem_tensors(engine, questions, [row for part in parts for row in part])
    assert built.prefix_len == whole.prefix_len and built.n_pad == whole.n_pad
    assert built.question_ids == whole.question_ids and built.answer_ids == whole.answer_ids
    assert built.answer_text == whole.answer_text and built.answer == whole.answer
    for name in ("inputs", "latent_pre", "latent_post", "attn", "question_resid"):
        a, b = getattr(built, name), getattr(whole, name)
        assert a.shape == b.shape, name
        if name == "question_resid":  # the states at pad tokens mean nothing: stored as zeros
            a, b = [torch.cat([x[r, :, whole.n_pad[r]:] for r in range(len(questions))], 1) for x in (a, b)]
        assert TOL.close(a, b), name
    assert set(built.sites) == set(whole.sites)
    for key in whole.sites:
        assert TOL.close(built.sites[key], whole.sites[key]), key
    for a, b in zip(built.answer_logits, whole.answer_logits):
        assert TOL.close(a, b)
    assert TOL.close(built.latent_attention(), whole.latent_attention())


def test_only_clean_traces_are_stored_per_problem(engine, questions):
    rows = [(0, ()), (0, [Intervention("resid_post", ("P2",), Zero(), layer=0)])]
    with pytest.raises(ValueError, match="only a clean trace"):
        problem_tensors(engine.run(questions, rows, max_new_tokens=2))
    forced = engine.run(questions, teacher_force=[[5, 6]] * 3)
    with pytest.raises(ValueError, match="teacher-forced"):
        problem_tensors(forced)
