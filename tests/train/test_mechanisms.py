"""The planted mechanisms: the interchange student loop against a plain-hook oracle, the twins'
counterfactual targets, the echo control's inert twins and copy targets, and the pause control's constant
fed latent."""

import pytest
import torch


def _batch(examples, model, n=6):
    from codi_probe.train.data import collate

    s = model.special
    return collate(examples[:n], pad=s.pad, bot=s.bot, eot=s.eot)


def _oracle(model, batch, k: int, vectors: torch.Tensor):
    """The plain loop with prj's k-th output replaced by ``vectors`` (a forward hook, no interchange code)."""
    from codi_probe.train.losses import student_forward

    calls = []

    def swapped(module, args, output):
        calls.append(1)
        return vectors if len(calls) == k else output

    handle = model.prj.register_forward_hook(swapped)
    try:
        return student_forward(model, batch.encoder_ids, batch.encoder_mask, batch.decoder_ids)
    finally:
        handle.remove()


@pytest.mark.parametrize("k", [1, 3, 6])
def test_interchange_twins_equal_the_plain_loop_with_the_donor_latent(make_tiny, examples, k):
    from codi_probe.tolerance import tolerance
    from codi_probe.train.losses import Interchange, student_forward

    model = make_tiny(seed=3)
    batch = _batch(examples, model)
    b = batch.encoder_ids.shape[0]
    donor = torch.tensor([3, 0, 5, 1, 2, 4])
    use = torch.tensor([True, True, False, True, True, True])
    twin_dec = batch.decoder_ids.flip(0)  # any decoder sequences: the twins' own targets
    with torch.no_grad():
        out = student_forward(model, batch.encoder_ids, batch.encoder_mask, batch.decoder_ids,
                              interchange=Interchange(at=k, swaps={k: (donor, use)}, decoder_ids=twin_dec))
        clean = student_forward(model, batch.encoder_ids, batch.encoder_mask, batch.decoder_ids)
        e_k = clean.latent_post[:, k - 1]
        want_e = torch.where(use.unsqueeze(-1), e_k[donor], e_k)
        ref = _oracle(model, type(batch)(**{**vars(batch), "decoder_ids": twin_dec}), k, want_e)
    tol = tolerance(torch.float32)
    assert out.logits.shape[0] == 2 * b
    assert tol.close(out.logits[:b], clean.logits)  # the clean rows are untouched
    assert tol.close(out.latent_post[b:, k - 1], want_e)
    assert tol.close(out.logits[b:], ref.logits)  # twins == the oracle loop
    assert not torch.allclose(out.logits[b:][use], clean.logits.flip(0)[use], atol=1e-3)  # the swap acts


def test_twins_carry_the_donor_implied_answers(examples, split):
    from codi_probe.design import implied_answer
    from codi_probe.loading import load_tokenizer
    from codi_probe.model import SpecialIds
    from codi_probe.train.data import collate
    from codi_probe.train.mechanisms import PlantedCarriers

    tok = load_tokenizer("codi-tiny-arith")
    problems = list(split.train)[::7][:12]
    s = SpecialIds.for_vocab(len(tok), (tok.eos_token_id,))
    batch = collate(examples[:12], pad=s.pad, bot=s.bot, eot=s.eot)
    torch.manual_seed(0)
    swap, labels, answers = PlantedCarriers({"step1": 2, "step2": 4}).twins(batch, problems, tok)
    (d1, u1), (d2, u2) = swap.swaps[2], swap.swaps[4]
    assert swap.at == 2 and (u1 | u2).all()  # every twin swaps something
    for i, p in enumerate(problems):
        s1 = problems[int(d1[i])].intermediates[0] if u1[i] else p.intermediates[0]
        s2 = problems[int(d2[i])].intermediates[1] if u2[i] else None
        want = implied_answer(p, "step1", s1) if s2 is None else s1 + s2
        assert answers[i] == want
        at = int(batch.student_pos[i]) + 1
        assert tok.decode([int(labels[i, at])]).strip() == str(int(want))
        assert torch.equal(labels[i, :at], batch.decoder_labels[i, :at])  # only the answer token changes


def test_exclusive_twins_hold_inert_sites_at_the_base_answer(examples, split):
    """Exclusive map step1=P3, step2=P5: every twin kind targets what its swap implies; held positions
    take the row's own clean latent (donor = itself); a twin's swaps all sit at or after ``at``."""
    from codi_probe.design import counterfactual_answer
    from codi_probe.loading import load_tokenizer
    from codi_probe.model import SpecialIds
    from codi_probe.train.data import collate
    from codi_probe.train.mechanisms import PlantedCarriers

    tok = load_tokenizer("codi-tiny-arith")
    problems = list(split.train)[::7][:48]
    s = SpecialIds.for_vocab(len(tok), (tok.eos_token_id,))
    batch = collate(examples[:48], pad=s.pad, bot=s.bot, eot=s.eot)
    torch.manual_seed(0)
    swap, labels, answers = PlantedCarriers({"step1": 3, "step2": 5}, exclusive=True).twins(batch, problems, tok)
    assert swap.at == min(swap.swaps)
    kinds = set()
    for i, p in enumerate(problems):
        used = {k: int(d[i]) for k, (d, u) in swap.swaps.items() if u[i]}
        moved = {k: d for k, d in used.items() if d != i}  # swapped from another row (not held)
        s1, s2 = p.intermediates[:2]
        z = p.meta["Z"]
        free = [k for k in moved if k not in (3, 5)]
        if free:  # an inert twin: one non-carrier swapped, the base answer
            assert len(moved) == 1 and answers[i] == counterfactual_answer(s1, z)
            j = free[0]
            held = sorted(k for k in used if k > j)
            assert held in ([], list(range(j + 1, 7)))  # total or direct
            kinds.add("inert-direct" if held else "inert-total")
            continue
        v1 = problems[used[3]].intermediates[0] if 3 in used else s1
        if 3 in moved and sorted(used) == [3, 4, 5, 6] and 5 not in moved:  # direct: later held clean
            assert answers[i] == counterfactual_answer(s1, z, step1_value=v1, step2_value=s2)
            kinds.add("direct")
            continue
        v2 = problems[used[5]].intermediates[1] if 5 in used else None
        assert answers[i] == counterfactual_answer(s1, z, step1_value=v1, step2_value=v2)
        at = int(batch.student_pos[i]) + 1
        assert tok.decode([int(labels[i, at])]).strip() == str(int(answers[i]))
        kinds.add("carrier")
    assert kinds == {"inert-direct", "inert-total", "direct", "carrier"}


def test_pause_control_feeds_one_constant(make_tiny):
    from codi_probe.train.mechanisms import pause_control

    model = make_tiny(seed=4)
    pause_control(model)
    h = torch.randn(5, model.d_model)
    e = model.prj(h)
    assert torch.equal(e, e[:1].expand_as(e))  # exactly one vector whatever h
    trainable = sorted(n for n, p in model.prj.named_parameters() if p.requires_grad)
    assert trainable == ["ln.bias"]


def test_echo_twins_keep_the_base_answer_and_copy_the_question_words(examples, split):
    """The echo control: every twin swaps one fed latent (later ones held or recomputed) or all six from one
    donor, and keeps the row's own answer; the copy targets are the question's words (X op Y Z X op).
    With carriers, the whole-transplant twin is never drawn (it would contradict the carriers)."""
    from codi_probe.design import ECHO_SURFACE, surface_word
    from codi_probe.loading import load_tokenizer
    from codi_probe.train.mechanisms import EchoSurface, ExclusiveTwins

    tok = load_tokenizer("codi-tiny-arith")
    problems = list(split.train)[::7][:64]
    torch.manual_seed(0)
    swaps, answers = ExclusiveTwins({}).draw(problems)
    assert answers == [p.answer for p in problems]
    moved = [{k for k, (d, u) in swaps.items() if u[i] and int(d[i]) != i} for i in range(len(problems))]
    assert {1, 6} <= {len(m) for m in moved} <= {0, 1, 6}  # 0: the random donor happened to be the row itself
    for k, ids in EchoSurface().targets(problems, tok).items():
        words = [surface_word(p, ECHO_SURFACE[k]) for p in problems]
        assert tok.convert_ids_to_tokens(ids.tolist()) == words
        assert all(w in p.question.split() or w + "." in p.question.split() for w, p in zip(words, problems))
    torch.manual_seed(0)
    swaps, _ = ExclusiveTwins({"step1": 3, "step2": 5}).draw(problems)
    assert all(sum(bool(u[i]) and int(d[i]) != i for d, u in swaps.values()) < 6 for i in range(len(problems)))


@pytest.mark.parametrize("name", ["planted", "pause", "echo"])
def test_recipes_are_bit_reproducible_and_store_their_design(name, tmp_path):
    """Two short runs of the same recipe give identical weights; the design lands in the sidecar."""
    import json
    from dataclasses import replace

    from codi_probe.train.recipe import make_recipe, train_organism

    recipe = replace(make_recipe(name), codi_steps=2, batch_size=8, checkpoint_every=1)
    for run in ("a", "b"):
        train_organism(tmp_path / run, recipe=recipe, progress=False, evaluate=False)
    a, b = (torch.load(tmp_path / r / "pytorch_model.bin", weights_only=True) for r in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((tmp_path / "a" / "codi_config.json").read_text())
    assert config["design"]["mechanism"] == name and config["tokenizer"] == "codi-tiny-arith"
    if name == "planted":
        assert config["design"]["carriers"] == {"step1": "P2", "step2": "P4"}


def test_make_recipe_rejects_bad_maps():
    from codi_probe.train.recipe import make_recipe

    with pytest.raises(ValueError, match="earlier position"):
        make_recipe("planted", carriers="step1=P5,step2=P3")
    with pytest.raises(ValueError, match="applies to the planted recipe"):
        make_recipe("pause", carriers="step1=P2")
    with pytest.raises(ValueError, match="--exclusive applies to the planted recipe"):
        make_recipe("pause", exclusive=True)
    assert make_recipe("planted", carriers="step1=P1,step2=P2", exclusive=True).design().exclusive
    with pytest.raises(ValueError, match="unknown recipe"):
        make_recipe("magic")
