"""Tiny random models: fast, seeded, with adapters that matter."""

import time

import pytest

from codi_probe.loading import load_codi
from codi_probe.tiny import TINY_CONFIGS, build_tiny


def test_tiny_models_build_fast_and_deterministically():
    build_tiny("tiny-random-gpt2")  # warm imports
    for name in TINY_CONFIGS:
        start = time.perf_counter()
        a = build_tiny(name)
        assert time.perf_counter() - start < 2.0
        assert a.weights_sha256() == build_tiny(name).weights_sha256()
        assert a.weights_sha256() != build_tiny(name, seed=99).weights_sha256()
        assert a.special.pad == 50257 and a.special.bot == 50258 and a.special.eot == 50259


def test_lora_adapters_change_the_output(engine):
    from codi_probe.engine import CodiEngine

    model = engine.model
    with_lora = engine.run(["What is 7 plus 8?"], max_new_tokens=2)
    with model.codi.disable_adapter():
        without = CodiEngine(model).run(["What is 7 plus 8?"], max_new_tokens=2)
    assert (with_lora.latent_pre - without.latent_pre).abs().max() > 1e-3


def test_tokenizer_pad_is_the_model_pad(tiny):
    assert tiny.tokenizer.pad_token_id == tiny.special.pad
    assert tiny.tokenizer.decode([464, 3280, 318, 25, 1248]) == "The answer is: 18"


def test_precision_modes():
    m = load_codi("tiny-random-llama", dtype="bf16")
    assert set(m.dtype_mix()) == {"bfloat16"}
    m.set_precision("mixed")
    mix = m.dtype_mix()
    assert mix["float32"] == sum(1 for k in m.state_dict() if ".lora_" in k or k.startswith("prj."))


def test_the_ambiguous_dtype_name_official_is_refused_with_the_two_meanings():
    """Defect: dtype 'official' named the storage mix, not the released evaluation's all-bf16 numerics."""
    with pytest.raises(ValueError, match="'bf16' for the released evaluation.*'mixed' for the storage"):
        load_codi("tiny-random-gpt2", dtype="official")


def test_the_catalogue_caps_answers_on_random_models_only():
    """Issue 32 item 13: the tiny random models (which never emit EOS) get a short answer budget in the
    catalogue's engine; every other model generates what each run asks."""
    from types import SimpleNamespace

    from codi_probe.tiny import TINY_ANSWER_BUDGET, answer_budget

    for name in TINY_CONFIGS:
        assert answer_budget(SimpleNamespace(config=SimpleNamespace(name=name))) == TINY_ANSWER_BUDGET
    assert answer_budget(SimpleNamespace(config=SimpleNamespace(name="codi-tiny-arith"))) is None
    assert 1 <= TINY_ANSWER_BUDGET < 16  # below the catalogue's 16- and 32-token runs
