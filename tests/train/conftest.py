"""Shared helpers for the training tests: a tiny random CODI on the organism's word-level tokenizer."""

import pytest
import torch

ORGANISM_TOKENIZER = "codi-tiny-arith"


def _make_tiny(seed: int = 0, lora_b_std: float = 0.05):
    """A 2-layer, 32-wide CODI on the organism tokenizer with random base, prj and non-zero LoRA B."""
    from codi_probe.loading import load_tokenizer
    from codi_probe.model import CodiConfig, attach_tokenizer
    from codi_probe.train.build import build_base_lm, codi_from_base, gpt2_base_config

    tok = load_tokenizer(ORGANISM_TOKENIZER)
    base = gpt2_base_config(len(tok), tok.eos_token_id, n_layer=2, n_embd=32, n_head=2, n_positions=128)
    cfg = CodiConfig(base=base, prj_dim=32, lora_r=4, lora_alpha=4, lora_dropout=0.0,
                     eos_token_ids=(tok.eos_token_id,), tokenizer=ORGANISM_TOKENIZER, name="tiny-test")
    model = codi_from_base(cfg, build_base_lm(base, seed), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if ".lora_B." in name:
                p.copy_(torch.randn(p.shape, generator=gen) * lora_b_std)
    return attach_tokenizer(model, tok)


@pytest.fixture(scope="module")
def split():
    from codi_probe.train.data import organism_split

    return organism_split()


@pytest.fixture(scope="module")
def examples(split):
    from codi_probe.loading import load_tokenizer
    from codi_probe.train.data import encode_examples

    tok = load_tokenizer(ORGANISM_TOKENIZER)
    return encode_examples(tok, list(split.train)[::7], tok.eos_token_id)


@pytest.fixture(scope="session")
def make_tiny():
    """Factory for a tiny random CODI on the organism tokenizer (``make_tiny(seed=...)``)."""
    return _make_tiny
