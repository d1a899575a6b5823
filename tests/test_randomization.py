"""``randomize_weights``: the model-randomization check's twin re-draws every weight, seeded and deterministic,
keeping the architecture, tokenizer, dtypes and each tensor's scale."""

from __future__ import annotations

import torch

from codi_probe.tolerance import max_abs, tolerance
from codi_probe.randomization import randomize_weights
from codi_probe.tiny import build_tiny


def test_every_weight_is_redrawn_with_its_own_scale_and_the_rest_is_kept() -> None:
    model = build_tiny("tiny-random-gpt2")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    config, tokenizer = model.config, model.tokenizer
    twin = randomize_weights(model, seed=7)
    assert twin is model and twin.config is config and twin.tokenizer is tokenizer
    params = dict(twin.named_parameters())
    assert set(params) == set(before)
    parts = {"lora": 0, "prj": 0, "base": 0}
    for name, old in before.items():
        new = params[name]
        assert new.shape == old.shape and new.dtype == old.dtype
        if old.numel() > 1 and old.std() > 0:  # base, LoRA A and B, prj, norms: all re-drawn
            assert not torch.equal(new, old), name
        else:  # a constant tensor (an initial zero bias) has no structure to destroy: its draws are its value
            assert torch.equal(new, old), name
        if old.numel() > 100:  # the tensor's own scale is kept (a sample of its mean and std)
            assert abs(new.float().std() - old.float().std()) < 0.2 * old.float().std() + 1e-6, name
            assert abs(new.float().mean() - old.float().mean()) < 0.2 * old.float().std() + 1e-6, name
        parts["lora" if ".lora_" in name else "prj" if name.startswith("prj.") else "base"] += 1
    assert all(parts.values()), parts
    assert twin.lm_head.weight is twin.embed.weight  # a tied tensor stays tied (re-drawn once)
    assert twin.source["randomized"]["seed"] == 7 and twin.fingerprint()["name"] == "tiny-random-gpt2+randomized"


def test_the_twin_is_a_function_of_the_seed() -> None:
    same = [randomize_weights(build_tiny("tiny-random-gpt2"), seed=3).weights_sha256() for _ in range(2)]
    other = randomize_weights(build_tiny("tiny-random-gpt2"), seed=4).weights_sha256()
    assert same[0] == same[1] != other


def test_the_twin_changes_what_the_model_computes() -> None:
    model = build_tiny("tiny-random-gpt2")
    ids = torch.tensor([[464, 3290, 318]])
    with torch.no_grad():
        before = model.codi(input_ids=ids).logits
        after = randomize_weights(model, seed=0).codi(input_ids=ids).logits
    assert torch.isfinite(after).all()
    assert max_abs(before, after) > 100 * tolerance(after.dtype).margin(before)
