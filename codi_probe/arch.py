"""One declarative table per architecture (pyvene style).

Every module path is relative to the *HF causal LM* (``PeftModel.get_base_model()``); block-relative
paths (``attn``, ``mlp``) are relative to ``<layers>[i]``. Adding a family means adding a row here,
and ``tests/test_arch.py`` checks every row against a freshly built tiny model, so a transformers
upgrade that renames a module fails loudly instead of silently hooking nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn


@dataclass(frozen=True)
class ArchSpec:
    """Where the parts of one decoder family live inside an HF causal LM."""

    name: str
    model_types: tuple[str, ...]
    backbone: str  # the decoder without lm_head: returns last_hidden_state post final norm
    layers: str  # ModuleList of decoder blocks
    embed: str  # token embedding
    final_norm: str
    lm_head: str
    attn: str  # attention module inside a block (output[0] is its residual contribution)
    attn_proj: str  # the attention output projection inside ``attn``; its input is the heads' outputs, concatenated
    mlp: str  # MLP module inside a block
    lora_targets: tuple[str, ...]  # the official CODI LoRA target_modules for this family
    key_marker: str  # substring that identifies this family in checkpoint keys
    bos_stripped_answer_shift: int  # +1 for LLaMA-style pre-tokenisation of ": 18" (codi-spec 4.2)

    def get(self, lm: nn.Module, path: str) -> nn.Module:
        """Resolve a dotted path below the HF causal LM."""
        mod = lm
        for part in path.split("."):
            mod = getattr(mod, part)
        return mod

    def blocks(self, lm: nn.Module) -> nn.ModuleList:
        return self.get(lm, self.layers)

    def block_part(self, lm: nn.Module, layer: int, part: str) -> nn.Module:
        """``part`` is ``"block"``, ``"attn"``, ``"mlp"`` or ``"attn_proj"`` (the attention's output projection)
        of block ``layer``."""
        block = self.blocks(lm)[layer]
        if part == "attn_proj":
            return getattr(getattr(block, self.attn), self.attn_proj)
        return block if part == "block" else getattr(block, getattr(self, part))


GPT2 = ArchSpec(
    name="gpt2",
    model_types=("gpt2",),
    backbone="transformer",
    layers="transformer.h",
    embed="transformer.wte",
    final_norm="transformer.ln_f",
    lm_head="lm_head",
    attn="attn",
    attn_proj="c_proj",
    mlp="mlp",
    lora_targets=("c_attn", "c_proj", "c_fc"),
    key_marker=".transformer.h.",
    bos_stripped_answer_shift=0,
)

LLAMA = ArchSpec(
    name="llama",
    model_types=("llama", "qwen2", "mistral"),
    backbone="model",
    layers="model.layers",
    embed="model.embed_tokens",
    final_norm="model.norm",
    lm_head="lm_head",
    attn="self_attn",
    attn_proj="o_proj",
    mlp="mlp",
    lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"),
    key_marker=".model.layers.",
    bos_stripped_answer_shift=1,
)

ARCHITECTURES: tuple[ArchSpec, ...] = (GPT2, LLAMA)


def arch_for_model_type(model_type: str) -> ArchSpec:
    for spec in ARCHITECTURES:
        if model_type in spec.model_types:
            return spec
    known = ", ".join(t for s in ARCHITECTURES for t in s.model_types)
    raise ValueError(f"unsupported base model_type {model_type!r} (supported: {known})")


def arch_for_keys(keys) -> ArchSpec | None:
    """Guess the family of a checkpoint from its state-dict keys (None if no family matches)."""
    for spec in ARCHITECTURES:
        if any(spec.key_marker in k for k in keys):
            return spec
    return None
