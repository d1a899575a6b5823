"""Shared fixtures for ``pytest benchmarks`` (never collected by ``pytest tests`` / ``pytest hypotheses``).

Sizes come from environment variables so the same files serve a quick smoke run and the measured one:
``BENCH_MODEL`` (``gpt2-124m``, ``llama-1b-d2`` or a tiny name), ``BENCH_PROBLEMS`` (engine problems),
``BENCH_NAIVE`` (naive interventions actually timed; the naive rate is extrapolated from them).
"""

from __future__ import annotations

import os
import resource

import pytest
import torch

from codi_probe.loading import load_tokenizer
from codi_probe.model import CodiConfig, CodiModel, attach_tokenizer

EOS = 50256
SHAPES: dict[str, dict] = {
    "gpt2-124m": {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
                  "n_head": 12, "activation_function": "gelu_new", "bos_token_id": EOS, "eos_token_id": EOS,
                  "tie_word_embeddings": True},
    # LLaMA-3.2-1B widths (hidden 2048, 32 heads / 8 kv, d_ff 8192) with 2 of its 16 layers and the
    # GPT-2 vocabulary (50257) so that the GPT-2 tokenizer fits.
    "llama-1b-d2": {"model_type": "llama", "vocab_size": 50257, "hidden_size": 2048, "intermediate_size": 8192,
                    "num_hidden_layers": 2, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
                    "max_position_embeddings": 1024, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
                    "tie_word_embeddings": True, "bos_token_id": EOS, "eos_token_id": EOS},
}


def build(name: str) -> CodiModel:
    """A seeded random fp32 CODI of one of ``SHAPES`` (or a tiny model by name)."""
    if name not in SHAPES:
        from codi_probe.loading import load_codi

        return load_codi(name)
    d = SHAPES[name].get("n_embd") or SHAPES[name]["hidden_size"]
    cfg = CodiConfig(base=SHAPES[name], prj_dim=d, lora_r=128, lora_alpha=32, eos_token_ids=(EOS,),
                     tokenizer="gpt2", name=name)
    return attach_tokenizer(CodiModel(cfg, seed=0), load_tokenizer("gpt2"))


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="session")
def model():
    torch.set_num_threads(env_int("BENCH_THREADS", 2))
    return build(os.environ.get("BENCH_MODEL", "gpt2-124m"))


@pytest.fixture(scope="session")
def questions(model):
    """GSM8K test questions of 70..90 tokens (80-token-ish)."""
    from codi_probe.data import load_gsm8k

    tok = model.tokenizer
    out = [p.question for p in load_gsm8k("test") if 70 <= len(tok(p.question)["input_ids"]) <= 90]
    return out[: max(env_int("BENCH_PROBLEMS", 2), 2)]
