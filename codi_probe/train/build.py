"""Stage 1 (a plain HF causal LM pretrained from scratch) and building a CODI around a pretrained base."""

from __future__ import annotations

from typing import Any

import torch

from ..model import CodiConfig, CodiModel


def gpt2_base_config(vocab_size: int, eos_id: int, *, n_layer: int = 4, n_embd: int = 128, n_head: int = 4,
                     n_positions: int = 512, dropout: float = 0.0) -> dict[str, Any]:
    """An HF GPT-2 config dict (tied embeddings, ``gelu_new``) with the given original vocabulary."""
    return {"model_type": "gpt2", "vocab_size": vocab_size, "n_positions": n_positions, "n_embd": n_embd,
            "n_layer": n_layer, "n_head": n_head, "activation_function": "gelu_new", "resid_pdrop": dropout,
            "embd_pdrop": dropout, "attn_pdrop": dropout, "bos_token_id": eos_id, "eos_token_id": eos_id,
            "tie_word_embeddings": True}


def build_base_lm(base: dict[str, Any], seed: int):
    """A freshly initialised HF causal LM (no LoRA, original vocabulary) for stage-1 pretraining."""
    from transformers import AutoModelForCausalLM

    from ..model import _hf_config

    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(_hf_config(base), attn_implementation="sdpa")


def codi_from_base(config: CodiConfig, base_lm, *, seed: int = 0) -> CodiModel:
    """A ``CodiModel`` whose frozen base carries ``base_lm``'s weights.

    The first V embedding rows are copied; PAD/BOT/EOT (rows V..V+2) keep the mean-resized values the
    constructor drew (CODI's ``resize_token_embeddings`` with ``mean_resizing``), and stay untrained.
    LoRA (peft default init: B = 0) and ``prj`` are freshly initialised from ``seed``. Base tensors map
    onto peft's wrapped names (``<module>.base_layer.<param>``)."""
    model = CodiModel(config, seed=seed)
    src = base_lm.state_dict()
    v = config.base_vocab
    dst = dict(model.lm.named_parameters(remove_duplicate=False))
    dst.update(dict(model.lm.named_buffers()))
    embed_key = next(k for k in src if k.endswith("wte.weight") or k.endswith("embed_tokens.weight"))
    with torch.no_grad():
        # recompute the mean-resized rows from the *pretrained* embeddings, as CODI resizes a trained base
        old = src[embed_key].float()
        gen = torch.Generator().manual_seed(seed + 7)
        mean = old.mean(0)
        cov = torch.cov(old.T) * 1e-9
        dist = torch.distributions.MultivariateNormal(mean, covariance_matrix=cov + 1e-12 * torch.eye(len(mean)))
        state = torch.get_rng_state()
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        new_rows = dist.sample((3,))
        torch.set_rng_state(state)
        for key, t in src.items():
            target = key if key in dst else _wrapped(key)
            if target not in dst:
                if key.endswith("lm_head.weight") and config.base.get("tie_word_embeddings", True):
                    continue
                raise KeyError(f"base tensor {key} has no place in the CODI model")
            p = dst[target]
            if key == embed_key or key.endswith("lm_head.weight"):
                p[:v].copy_(t)
                p[v:].copy_(new_rows.to(p.dtype))
            else:
                p.copy_(t)
    for name, p in model.named_parameters():
        p.requires_grad_(".lora_" in name or name.startswith("prj."))
    return model


def _wrapped(key: str) -> str:
    module, param = key.rsplit(".", 1)
    return f"{module}.base_layer.{param}"
