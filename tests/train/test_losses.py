"""The CODI objective: distillation positions and std scaling, the six-latent student loop (equal to the
engine's), the sequence layout and the held-out split."""

import pytest
import torch
import torch.nn.functional as F



def test_distill_is_mean_over_entries_of_smoothl1_over_teacher_std():
    from codi_probe.train.losses import distill_loss

    g = torch.Generator().manual_seed(0)
    s = [torch.randn(3, 5, 8, generator=g) for _ in range(4)]
    t = [torch.randn(3, 9, 8, generator=g) * (i + 1) for i in range(4)]
    sp, tp = torch.tensor([1, 4, 0]), torch.tensor([8, 2, 5])
    rows = torch.arange(3)
    want = sum(F.smooth_l1_loss(a[rows, sp], b[rows, tp]) / b[rows, tp].std() for a, b in zip(s, t)) / 4
    assert torch.allclose(distill_loss(s, t, sp, tp), want)
    # without the division the value differs (the teachers' spreads are 1..4, not 1)
    raw = sum(F.smooth_l1_loss(a[rows, sp], b[rows, tp]) for a, b in zip(s, t)) / 4
    assert not torch.allclose(distill_loss(s, t, sp, tp), raw, rtol=1e-2)
    # one entry whose selected teacher values have std exactly 2: the loss is SmoothL1 / 2
    t2 = torch.zeros(2, 3, 1)
    t2[:, 1, 0] = torch.tensor([0.0, 2.0 * 2 ** 0.5])  # unbiased std of {0, 2*sqrt(2)} = 2
    s2 = torch.full((2, 1, 1), 10.0)
    got = distill_loss([s2], [t2], torch.tensor([0, 0]), torch.tensor([1, 1]))
    assert torch.allclose(got, F.smooth_l1_loss(s2[:, 0], t2[:, 1]) / 2)


def test_distill_reads_only_the_given_positions():
    from codi_probe.train.losses import distill_loss

    g = torch.Generator().manual_seed(1)
    t = [torch.randn(2, 6, 4, generator=g) for _ in range(3)]
    sp, tp = torch.tensor([2, 3]), torch.tensor([4, 1])
    s = [torch.randn(2, 5, 4, generator=g) for _ in range(3)]
    for a, b in zip(s, t):
        a[torch.arange(2), sp] = b[torch.arange(2), tp]
    assert distill_loss(s, t, sp, tp).item() == 0.0
    s[1][0, 0] += 5.0  # another position: ignored
    t[2][1, 0] += 5.0
    assert distill_loss(s, t, sp, tp).item() == 0.0
    s[0][1, 3] += 1.0  # the selected one: counted
    assert distill_loss(s, t, sp, tp).item() > 0.0


def test_distilled_token_predicts_the_first_answer_token(examples):
    from codi_probe.loading import load_tokenizer

    tok = load_tokenizer("codi-tiny-arith")
    colon = tok.convert_tokens_to_ids(":")
    for e in examples[:50]:
        teacher = e.question + e.cot + e.answer
        decoder = [-1] + e.answer  # index 0 is EOT
        assert teacher[e.teacher_pos] == colon and decoder[e.student_pos] == colon
        assert teacher[e.teacher_pos + 1] == decoder[e.student_pos + 1]
        assert tok.decode([teacher[e.teacher_pos + 1]]).isdigit()
        assert e.student_pos == 4  # EOT The answer is :


def test_sequence_layout(examples):
    from codi_probe.train.data import collate

    b = collate(examples[:4], pad=291, bot=292, eot=293)
    e = examples[0]
    assert b.encoder_ids[0, -1].item() == 292  # Q + BOT, left-padded
    assert (b.encoder_mask.sum(1) == torch.tensor([len(x.question) + 1 for x in examples[:4]])).all()
    assert b.decoder_ids[0, 0].item() == 293 and b.decoder_ids[0, 1:len(e.answer) + 1].tolist() == e.answer
    n = len(e.question)
    assert (b.teacher_labels[0, :n] == -100).all()  # question masked in the teacher CE
    assert b.teacher_labels[0, n:n + len(e.cot) + len(e.answer)].tolist() == e.cot + e.answer


def test_heldout_combinations_never_in_training(split):
    key = lambda p: (p.meta["X"], p.meta["Y"], p.meta["Z"])
    train = {key(p) for p in split.train}
    held = {key(p) for p in split.heldout}
    assert held and train and not train & held
    in_range = sum(p.meta["X"] <= 8 for p in split.train)
    assert len(split.heldout) == 1000 and in_range == 3480 and len(split.train) == 3480 + 2 * 10 * 8 * 8
    assert all(p.meta["X"] <= 8 for p in split.heldout)


def test_every_heldout_fact_is_taught_and_the_in_range_split_would_not():
    """X up to 9 in training supplies every step1 x Z and step1 + step2 fact the held-out set needs."""
    from codi_probe.train.data import organism_split, uncovered_facts

    assert uncovered_facts(organism_split()) == []
    narrow = uncovered_facts(organism_split(train_max_x=8))
    assert len(narrow) == 80 and all(i.startswith("cyw-addition") for i in narrow)
    with pytest.raises(ValueError, match="train_max_x"):
        organism_split(train_max_x=7)


@pytest.fixture(scope="module")
def tiny(make_tiny):
    torch.manual_seed(0)
    return make_tiny()


def test_student_feeds_exactly_six_prj_latents_and_matches_the_engine(tiny, split):
    from codi_probe.engine import CodiEngine, Record
    from codi_probe.loading import load_tokenizer
    from codi_probe.train.data import collate, encode_examples
    from codi_probe.train.losses import student_forward

    tok = load_tokenizer("codi-tiny-arith")
    probs = [split.heldout[i] for i in (0, 1, 120, 777)]  # different scenarios: different lengths
    ex = encode_examples(tok, probs, tok.eos_token_id)
    assert len({len(e.question) for e in ex}) > 1
    sp = tiny.special
    b = collate(ex, pad=sp.pad, bot=sp.bot, eot=sp.eot)
    calls = []
    handle = tiny.prj.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    try:
        with torch.no_grad():
            out = student_forward(tiny, b.encoder_ids, b.encoder_mask, b.decoder_ids)
    finally:
        handle.remove()
    assert len(calls) == 6 and out.latent_pre.shape[1] == 7 and out.latent_post.shape[1] == 6
    trace = CodiEngine(tiny).run([p.question for p in probs], record=Record(sites=()),
                                 teacher_force=[e.answer for e in ex])
    assert torch.allclose(out.latent_pre, trace.latent_pre, atol=1e-5)
    assert torch.allclose(out.latent_post, trace.latent_post, atol=1e-5)
    for r, e in enumerate(ex):  # decoder logits = the engine's teacher-forced answer logits (EOT first)
        n = len(e.answer)
        assert torch.allclose(out.logits[r, :n], trace.answer_logits[r][:n].float(), atol=1e-4)


def test_losses_are_finite_and_total_is_their_sum(tiny, examples):
    from codi_probe.train.data import collate
    from codi_probe.train.losses import codi_losses

    sp = tiny.special
    b = collate(examples[:8], pad=sp.pad, bot=sp.bot, eot=sp.eot)
    with torch.no_grad():
        out = codi_losses(tiny, b, distill_factor=2.0, ref_factor=0.5)
    assert all(torch.isfinite(v) for v in out.values())
    assert torch.allclose(out["loss"], out["ce_student"] + 2.0 * out["distill"] + 0.5 * out["ce_teacher"])
