"""The declarative architecture table resolves every part on freshly built models of each family."""

import pytest
import torch.nn as nn

from codi_probe.arch import ARCHITECTURES, arch_for_keys, arch_for_model_type


def test_every_row_resolves_on_a_tiny_model(tiny):
    arch = tiny.arch
    lm = tiny.lm
    assert isinstance(arch.blocks(lm), nn.ModuleList) and len(arch.blocks(lm)) == 4
    for layer in range(tiny.n_layers):
        for part in ("block", "attn", "mlp"):
            assert isinstance(arch.block_part(lm, layer, part), nn.Module)
    assert arch.get(lm, arch.embed).weight.shape[0] == tiny.config.base_vocab + 3
    assert arch.get(lm, arch.lm_head) is tiny.lm_head
    assert isinstance(arch.get(lm, arch.final_norm), nn.Module)
    targets = {name.rsplit(".", 1)[-1] for name, _ in lm.named_modules() if name.endswith(arch.lora_targets)}
    assert targets == set(arch.lora_targets)


def test_lookup_by_model_type_and_keys():
    assert arch_for_model_type("qwen2").name == "llama"
    with pytest.raises(ValueError, match="unsupported base model_type 'bert'"):
        arch_for_model_type("bert")
    assert arch_for_keys(["codi.base_model.model.transformer.h.0.ln_1.weight"]).name == "gpt2"
    assert arch_for_keys(["prj.1.weight"]) is None
    assert len({a.name for a in ARCHITECTURES}) == len(ARCHITECTURES)
