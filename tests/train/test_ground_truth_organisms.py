"""The ground-truth organisms: codi-tiny-planted (a planted carrier map), codi-tiny-mcyw (an exclusive
planted map: step 1 in e_3, step 2 in e_5, every other fed latent inert), codi-tiny-adjacent (an exclusive
map with adjacent carriers: step 1 in e_1, step 2 in e_2), codi-tiny-pause (the negative
control) and codi-tiny-echo (fed latents copy question words and are inert). They share codi-tiny-arith's frozen base tensor for tensor, carry their design in the sidecar,
and the shipped weights still show the design their model card measured."""

import json

import pytest
import torch

from codi_probe.data.loaders import fixtures_dir

MODELS = fixtures_dir() / "models"
PLANTED = ("codi-tiny-planted", "codi-tiny-mcyw", "codi-tiny-adjacent")
ORGANISMS = PLANTED + ("codi-tiny-pause", "codi-tiny-echo")


def _load(name):
    from codi_probe.loading import load_codi

    return load_codi(name)


@pytest.fixture(scope="module")
def heldout():
    from codi_probe.train.data import organism_split

    return list(organism_split().heldout)[::10]  # 100 held-out problems, every template and family


def test_all_shipped_models_stay_under_30_mb():
    """Issue 29's bound on fixtures/models."""
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    assert total <= 30e6, f"{total / 1e6:.1f} MB"


@pytest.mark.parametrize("name", ORGANISMS)
def test_same_frozen_base_as_codi_tiny_arith(name):
    from codi_probe.design import design_for_spec

    model, ref = _load(name), _load("codi-tiny-arith")
    ref_params = dict(ref.named_parameters())
    frozen = [n for n, _ in model.named_parameters() if ".lora_" not in n and not n.startswith("prj.")]
    assert frozen and all(torch.equal(dict(model.named_parameters())[n], ref_params[n]) for n in frozen)
    card = (MODELS / name / "MODEL_CARD.md").read_text()
    design = design_for_spec(name)
    assert design.mechanism == {"codi-tiny-pause": "pause", "codi-tiny-echo": "echo"}.get(name, "planted")
    metrics = json.loads((MODELS / name / "metrics.json").read_text())
    assert metrics["design"] == design.to_json()
    assert "**Planted map**" in card


def test_pause_feeds_one_vector_to_every_problem(heldout):
    from codi_probe.engine import CodiEngine, Record

    trace = CodiEngine(_load("codi-tiny-pause")).run([p.question for p in heldout[:20]],
                                                      record=Record(sites=(), logits=False), max_new_tokens=1)
    e = trace.latent_post  # [20, 6, D]
    assert torch.equal(e, e[:1, :1].expand_as(e))  # exactly: prj(h) is prj.ln.bias whatever h


def test_echo_latents_copy_question_words_and_move_no_answer(heldout):
    """codi-tiny-echo: each fed latent is within a few percent of its question word's embedding (relative
    squared error), and single-donor patches at fed latents move no answer (the card's 0.0)."""
    from codi_probe.engine import CodiEngine, Record
    from codi_probe.experiments.carriers import donor_patching
    from codi_probe.loading import load_tokenizer
    from codi_probe.train.mechanisms import EchoSurface

    model = _load("codi-tiny-echo")
    problems = heldout[:40]
    engine = CodiEngine(model)
    trace = engine.run([p.question for p in problems], record=Record(sites=(), logits=False), max_new_tokens=1)
    for k, ids in EchoSurface().targets(problems, load_tokenizer("codi-tiny-arith")).items():
        word = model.embed.weight[ids].detach()
        e = trace.latent_post[:, k - 1]
        rel = float(((e - word) ** 2).sum(-1).mean() / (word ** 2).sum(-1).mean())
        assert rel < 0.05, (k, rel)
    card = json.loads((MODELS / "codi-tiny-echo" / "metrics.json").read_text())["design_evidence"]
    for s, k in (("step1", 3), ("step2", 5)):
        moved = float(donor_patching(engine, problems, trace, s, k).mean())
        assert card["donor"][s][f"P{k}"] == 0.0 and moved <= 0.05, (s, k, moved)  # up to 2 of 40 problems


@pytest.mark.parametrize("name", PLANTED)
def test_planted_carriers_still_move_the_answer(name):
    """Single-donor patching on the card's 200 held-out problems reproduces the card at each carrier: the
    total effect and, on an exclusive map, the direct effect (later fed latents held)."""
    from codi_probe.design import design_for_spec
    from codi_probe.engine import CodiEngine, Record
    from codi_probe.experiments.carriers import donor_patching
    from codi_probe.train.data import organism_split
    from codi_probe.train.evaluate import patch_subset

    card = json.loads((MODELS / name / "metrics.json").read_text())["design_evidence"]
    problems = patch_subset(organism_split().heldout, card["n_patch"])
    engine = CodiEngine(_load(name))
    trace = engine.run([p.question for p in problems], record=Record(sites=(), logits=False), max_new_tokens=1)
    design = design_for_spec(name)
    for s, k in design.carriers.items():
        moved = float(donor_patching(engine, problems, trace, s, k).mean())
        assert moved > 0.5, (s, k, moved)  # most donor pairs move the answer to the donor-implied one
        assert moved == pytest.approx(card["donor"][s][f"P{k}"], abs=0.011), (s, k)  # up to 2 problems
    if not design.exclusive:
        return
    for s, k in design.carriers.items():  # the other ten sites: CARRY-DIRECT in the catalogue's validity run
        moved = float(donor_patching(engine, problems, trace, s, k, hold_later=True).mean())
        assert moved > 0.5, (s, k, moved)  # the carrier is read directly
        assert moved == pytest.approx(card["donor_direct"][s][f"P{k}"], abs=0.011), (s, k)
