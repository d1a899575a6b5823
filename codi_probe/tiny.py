"""Tiny random CODI models that build offline in well under 2 s, for CI and unit tests.

They use the real GPT-2 tokenizer from ``fixtures/tokenizers/gpt2`` (base vocabulary 50257, so PAD/BOT/EOT
are 50257/50258/50259 exactly as in CODI-GPT2), few layers and a small width. Weights are seeded, and
the LoRA B matrices are re-drawn non-zero so that the adapters change the output (peft initialises
B to zero, which would make every LoRA test vacuous). Norm gains and biases are perturbed away from
(1, 0) too: an untrained LayerNorm is idempotent, which would hide a doubled final norm (F-21).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .model import CodiConfig, CodiModel

GPT2_EOS = 50256
TINY_SEED = 1234
# Answer tokens the catalogue generates on a tiny random model (CodiEngine(answer_budget=...)). Random
# weights never emit EOS, so every answer runs to the budget, and each answer token costs an lm_head and an
# argmax over the 50k GPT-2 vocabulary: at the catalogue's 16 and 32 tokens that was about a third of the CPU
# time of `pytest hypotheses --codi-model tiny-random-gpt2`. The claims' rows, problem counts, statistics
# and thresholds are unchanged; only how long a random answer runs.
TINY_ANSWER_BUDGET = 4

TINY_CONFIGS: dict[str, CodiConfig] = {
    "tiny-random-gpt2": CodiConfig(
        base={"model_type": "gpt2", "vocab_size": 50257, "n_positions": 512, "n_embd": 64, "n_layer": 4,
              "n_head": 4, "activation_function": "gelu_new", "bos_token_id": GPT2_EOS,
              "eos_token_id": GPT2_EOS, "tie_word_embeddings": True},
        prj_dim=64, lora_r=8, lora_alpha=2, eos_token_ids=(GPT2_EOS,), tokenizer="gpt2",
        name="tiny-random-gpt2"),
    "tiny-random-llama": CodiConfig(
        base={"model_type": "llama", "vocab_size": 50257, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
              "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "tie_word_embeddings": True, "bos_token_id": GPT2_EOS, "eos_token_id": GPT2_EOS},
        prj_dim=64, lora_r=8, lora_alpha=2, eos_token_ids=(GPT2_EOS,), tokenizer="gpt2",
        name="tiny-random-llama"),
}


def build_tiny(name: str, *, seed: int = TINY_SEED, lora_b_std: float = 0.05,
               lora_alpha: int | None = None) -> CodiModel:
    """Build a seeded tiny random CODI (fp32) by name; see ``TINY_CONFIGS``. ``lora_alpha`` overrides
    the config's (to build checkpoints trained with another alpha in tests)."""
    if name not in TINY_CONFIGS:
        raise ValueError(f"unknown tiny model {name!r} (known: {', '.join(TINY_CONFIGS)})")
    config = TINY_CONFIGS[name] if lora_alpha is None else replace(TINY_CONFIGS[name], lora_alpha=lora_alpha)
    model = CodiModel(config, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for pname, p in sorted(model.named_parameters()):
            if ".lora_B." in pname:
                p.copy_(torch.randn(p.shape, generator=gen) * lora_b_std)
            elif _is_norm(pname):
                p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    return model


def answer_budget(model) -> int | None:
    """The answer budget of ``model``'s catalogue engine: ``TINY_ANSWER_BUDGET`` for a tiny random model (by its
    config name), ``None`` (each run's own ``max_new_tokens``) for every other model."""
    return TINY_ANSWER_BUDGET if model.config.name in TINY_CONFIGS else None


def _is_norm(name: str) -> bool:
    leaf = name.rsplit(".", 2)[-2]
    return leaf.startswith("ln") or leaf.endswith("norm")
