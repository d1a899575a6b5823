"""The engine's loop against a hand-written reference, a full recompute, and single-question runs."""

import pytest
import torch

from codi_probe.engine import CodiEngine, Record
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.tolerance import tokens_agree, tolerance
from codi_reference import official_reference, reference_loop

TOL = tolerance(torch.float32, "batch_vs_alone")  # other call shapes than the reference: not bit-identical


def test_engine_matches_hand_written_reference(tiny, engine, questions):
    for q in questions:
        ref_h, ref_tokens = reference_loop(tiny, q)
        trace = engine.run([q], max_new_tokens=12)
        assert trace.latent_pre.shape == (1, 7, tiny.d_model)
        assert TOL.close(trace.latent_pre[0], ref_h)
        assert trace.answer_ids[0] == ref_tokens


def test_exactly_six_latents_are_fed(engine, questions):
    trace = engine.run(questions[:1])
    assert trace.latent_post.shape[1] == 6 and trace.latent_pre.shape[1] == 7
    # the input at P_k is prj(h_{k-1}) — not a token embedding (F-01, F-13)
    for k in range(1, 7):
        expected = engine._project(trace.latent_pre[:, k - 1])
        torch.testing.assert_close(trace.inputs[:, k], expected, atol=1e-6, rtol=1e-6)
    assert torch.equal(trace.inputs[0, 0], engine.model.embed.weight[engine.model.special.bot])


def test_cached_loop_equals_full_recompute(engine, questions):
    trace = engine.run(questions, record=Record(attention=True))
    final, attn = engine.replay(trace, attention=True)
    assert TOL.close(final[:, :7], trace.latent_pre)
    # the loop's attention rows equal the recompute's rows at the same absolute columns (F-07, F-12)
    t = trace.prefix_len
    for q_i, name in enumerate(LATENT_POSITIONS):
        row = attn[:, :, :, t + q_i, :]
        assert TOL.close(row, trace.attn[:, :, :, q_i, : row.shape[-1]]), name


def test_batch_of_mixed_lengths_equals_single_runs(engine, questions):
    batch = engine.run(questions, max_new_tokens=8)
    for i, q in enumerate(questions):
        alone = engine.run([q], max_new_tokens=8)
        assert TOL.close(alone.latent_pre[0], batch.latent_pre[i])
        assert alone.answer_ids[0] == batch.answer_ids[i]
        assert TOL.close(alone.answer_logits[0], batch.answer_logits[i])


def test_official_padding_equals_the_hand_written_official_loop(tiny, questions):
    """The official mode against the released evaluation written out by hand (batched, left padding,
    no mask after the prefill), on both the padded rows and the longest one."""
    tol = tolerance(tiny.base_dtype, "batch_vs_alone")
    ref_h, ref_tokens = official_reference(tiny, questions, max_new_tokens=8)
    trace = CodiEngine(tiny, padding="official").run(questions, max_new_tokens=8)
    assert tol.close(trace.latent_pre, ref_h)
    for r in range(len(questions)):
        assert tokens_agree(trace.answer_ids[r], ref_tokens[r], None, tol).agree


def test_recording_attention_does_not_change_the_run(tiny, questions):
    """Exact padding: recording attention (eager kernels) computes the same run as without (sdpa).
    Official padding: the combination is refused, since eager and sdpa treat the fully masked pad rows
    differently and later steps attend to them."""
    tol = tolerance(tiny.base_dtype, "batch_vs_alone")
    plain = CodiEngine(tiny).run(questions, max_new_tokens=6)
    recorded = CodiEngine(tiny).run(questions, record=Record(attention=True), max_new_tokens=6)
    assert tol.close(recorded.latent_pre, plain.latent_pre)
    assert recorded.answer_ids == plain.answer_ids
    with pytest.raises(ValueError, match="attention=True.*official.*refused"):
        CodiEngine(tiny, padding="official").run(questions, record=Record(attention=True))


def test_official_padding_reproduces_the_pad_bug(tiny, questions):
    exact = CodiEngine(tiny, padding="exact").run(questions, max_new_tokens=4)
    official = CodiEngine(tiny, padding="official").run(questions, max_new_tokens=4)
    lengths = [len(x) for x in exact.question_ids]
    longest = lengths.index(max(lengths))
    shorter = [i for i in range(len(questions)) if lengths[i] < max(lengths)]
    # the longest question has no pads: both modes agree on it
    assert TOL.close(exact.latent_pre[longest], official.latent_pre[longest])
    # padded rows attend to pads and have shifted positions in official mode
    assert all((exact.latent_pre[i] - official.latent_pre[i]).abs().max() > 1e-3 for i in shorter)


def test_block_output_convention_and_logit_lens(tiny, engine, questions):
    """resid_post[i] (the hook) == HF hidden_states[i+1] for i < L-1; the last block's hook output is
    pre-norm and final_norm(it) == hidden_states[L] == h; logit lens applies the final norm once."""
    trace = engine.run(questions[:1])
    q = questions[0]
    ids = tiny.tokenizer(q)["input_ids"] + [tiny.special.bot]
    with torch.no_grad():
        hs = tiny.codi(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    n = tiny.n_layers
    assert len(hs) == n + 1
    for i in range(n - 1):
        assert (trace.resid(i)[0, 0] - hs[i + 1][0, -1]).abs().max() <= 1e-5
    last = trace.resid(n - 1)[:, 0]
    assert (tiny.final_norm(last)[0] - hs[n][0, -1]).abs().max() <= 1e-5
    assert (last[0] - hs[n][0, -1]).abs().max() > 1e-3  # the raw last block output is not post-norm
    for k, name in enumerate(LATENT_POSITIONS):
        lens = engine.logit_lens(trace, n - 1, name)
        direct = engine.logits(trace.latent_pre[:, k])
        torch.testing.assert_close(lens, direct, atol=1e-4, rtol=1e-5)
        twice = engine.logits(tiny.final_norm(trace.latent_pre[:, k]))  # the F-21 double-norm bug
        assert not torch.allclose(lens, twice, atol=1e-3)


def test_teacher_forcing_scores_the_greedy_answer(engine, questions):
    gen = engine.run(questions, max_new_tokens=6)
    forced = engine.run(questions, teacher_force=gen.answer_ids)
    for r in range(len(questions)):
        n = len(gen.answer_ids[r])
        assert TOL.close(forced.answer_logits[r], gen.answer_logits[r][:n])
        assert forced.answer_logits[r].argmax(-1).tolist()[:n] == gen.answer_ids[r]


def test_fewer_latent_iterations(tiny, questions):
    trace = CodiEngine(tiny, num_latent=2).run(questions[:1], record=Record(attention=True))
    assert trace.latent_pre.shape[1] == 3 and trace.key_column("EOT") == trace.prefix_len + 3
    final, _ = CodiEngine(tiny, num_latent=2).replay(trace)
    assert TOL.close(final[:, :3], trace.latent_pre)


def test_skip_thinking_feeds_eot_right_after_the_prompt(tiny, questions):
    """CYW's skip_thinking (ACC-03's k = 0): prompt, then EOT, no BOT. Every greedy answer token equals the
    backbone's own greedy step on the prompt + EOT + the answer so far (the official vocabulary cut)."""
    engine = CodiEngine(tiny, num_latent=0, skip_thinking=True)
    trace = engine.run(questions[:1], max_new_tokens=3)
    ids = engine.encode(questions[:1])[0] + [tiny.special.eot]
    with torch.no_grad():
        for tok in trace.answer_ids[0]:
            final = tiny.backbone(input_ids=torch.tensor([ids]).to(tiny.device)).last_hidden_state[:, -1]
            assert int(engine.logits(final)[0, : tiny.vocab_size - 1].argmax()) == tok
            ids.append(tok)
    with_bot = CodiEngine(tiny, num_latent=0).run(questions[:1], max_new_tokens=3)
    assert torch.count_nonzero(trace.latent_pre) == 0 and torch.count_nonzero(with_bot.latent_pre) > 0
    with pytest.raises(ValueError, match="needs num_latent=0"):
        CodiEngine(tiny, skip_thinking=True)
    with pytest.raises(ValueError, match="clean rows only"):
        engine.run(questions[:1], record=Record(attention=True))


def test_answer_budget_caps_generation_only(tiny, questions):
    """Issue 32 item 13: the catalogue gives the random tiny models (which never emit EOS) a short answer
    budget. Greedy answers stop at the budget and are the first tokens of the uncapped run; the latents
    are untouched; a derived engine (``with_latents``) keeps the budget."""
    full = CodiEngine(tiny).run(questions, record=Record(sites=()), max_new_tokens=8)
    capped_engine = CodiEngine(tiny, answer_budget=3)
    capped = capped_engine.run(questions, record=Record(sites=()), max_new_tokens=8)
    assert all(len(ids) == 3 for ids in capped.answer_ids)  # random weights: no EOS before the budget
    for r, (a, b) in enumerate(zip(capped.answer_ids, full.answer_ids)):
        assert tokens_agree(a, b[:3], full.answer_logits[r], TOL).agree
    assert TOL.close(capped.latent_pre, full.latent_pre)
    assert all(len(ids) == 2 for ids in capped_engine.run(questions, record=Record(sites=()), max_new_tokens=2).answer_ids)
    fewer = capped_engine.with_latents(2)
    assert (fewer.num_latent, fewer.answer_budget, fewer.padding) == (2, 3, capped_engine.padding)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="answer_budget must be a positive integer"):
            CodiEngine(tiny, answer_budget=bad)


def test_bad_input_errors(tiny):
    with pytest.raises(ValueError, match="unknown padding mode"):
        CodiEngine(tiny, padding="left")
    with pytest.raises(ValueError, match="no questions"):
        CodiEngine(tiny).run([])
    with pytest.raises(ValueError, match="question index 3 out of range"):
        CodiEngine(tiny).run(["x"], variants=[(3, ())])


def test_answer_queries_have_attention_rows(engine, questions):
    gen = engine.run(questions, record=Record(attention=True), max_new_tokens=5)
    longest = max(len(x) for x in gen.answer_ids)
    assert gen.attn.shape[3] == 7 + longest and gen.attn.shape[4] == gen.prefix_len + 7 + longest
    for r, ids in enumerate(gen.answer_ids):
        sums = gen.attn[r, :, :, : 7 + len(ids)].sum(-1)  # P0..P6, EOT and each fed answer token
        torch.testing.assert_close(sums, torch.ones_like(sums), atol=1e-5, rtol=0)
    forced = engine.run(questions, teacher_force=gen.answer_ids, record=Record(attention=True))
    r = max(range(len(questions)), key=lambda i: len(gen.answer_ids[i]))
    n = 7 + len(gen.answer_ids[r])
    torch.testing.assert_close(forced.attn[r, :, :, :n, : gen.prefix_len + n],
                               gen.attn[r, :, :, :n, : gen.prefix_len + n], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ["tiny-random-gpt2", "tiny-random-llama"])
def test_bf16_batched_rows_equal_single_runs_within_the_bf16_tolerance(arch, questions):
    """bf16 (the released evaluation's numerics) is a tested precision: batched rows agree with single runs
    within the bf16 tolerance of codi_probe.tolerance, and greedy tokens agree (exactly, or at a tie)."""
    from codi_probe.loading import load_codi

    model = load_codi(arch, dtype="bf16")
    engine = CodiEngine(model)
    tol = tolerance(torch.bfloat16, "batch_vs_alone")
    batch = engine.run(questions, max_new_tokens=6)
    for i, q in enumerate(questions):
        alone = engine.run([q], max_new_tokens=6)
        assert tol.deviation(alone.latent_pre[0], batch.latent_pre[i]) <= 1.0
        assert tokens_agree(alone.answer_ids[0], batch.answer_ids[i], batch.answer_logits[i], tol).agree
    # and bf16 is really bf16: the fp32 run of the same model differs by far more than fp32 round-off
    fp32 = CodiEngine(load_codi(arch)).run(questions, max_new_tokens=1)
    assert not tolerance(torch.float32).close(batch.latent_pre, fp32.latent_pre)


def test_position_limit_counts_the_tokens_fed(engine):
    """Defect (issue 32 item 12): the limit counted the last answer token, which is never fed: a 497-token
    question with 8 new tokens on a 512-position model was refused as needing 513. Fed are the question,
    BOT, the 6 latents, EOT and the answer tokens but the last: 497 + 1 + 6 + 1 + 7 = 512. At the boundary
    the run goes through (the 8th teacher-forced token is scored from position 511, the last there is), and
    one token more is refused with one line."""
    limit = engine.model.max_positions
    assert limit == 512
    question = "a" + " a" * (limit - 16)
    (ids,) = engine.encode([question])
    assert len(ids) == limit - 15 == 497
    target = (engine.encode(["1 2 3 4"])[0] * 9)[:9]
    out = engine.run([question], record=Record(sites=()), teacher_force=[target[:8]])
    assert len(out.meta["target_logprobs"][0]) == 8
    assert engine.run([question], record=Record(sites=()), max_new_tokens=8).answer_ids[0]
    with pytest.raises(ValueError, match="question 0 has 497 tokens; .* 9 answer tokens .* needs 513 positions, "
                                         "but the model has 512"):
        engine.run([question], record=Record(sites=()), max_new_tokens=9)
    with pytest.raises(ValueError, match="needs 513 positions"):
        engine.run([question], record=Record(sites=()), teacher_force=[target[:9]])
