"""The model-randomization sanity check's twin: the same CODI with every weight re-drawn.

Adebayo et al., "Sanity checks for saliency maps" (NeurIPS 2018): a measurement that comes out the same on
a model and on its weight-randomized twin says nothing about what training put into the weights. The twin
keeps the architecture, the tokenizer, the config (special ids, loop variant, problem family, design) and
every tensor's dtype and device; only the values change.

Re-drawing: each parameter tensor (base, LoRA A and B, ``prj``, norms; a tied tensor once) is replaced by
i.i.d. normal draws with that tensor's own mean and standard deviation (over its elements, in fp32). The
scale of every tensor is kept, so the twin is as well-conditioned as the model (a norm gain stays near its
mean, an embedding keeps its norm), while all structure learned across elements is gone. Buffers (masks,
rotary frequencies) are not weights and stay. Draws come from one CPU ``torch.Generator`` seeded with
``seed``, tensor by tensor in sorted name order: the twin is a function of the model's shapes, moments and
the seed, identical on every machine.
"""

from __future__ import annotations

from typing import Any

import torch

METHOD = "every parameter tensor re-drawn i.i.d. normal with its own mean and std (seeded, sorted by name)"


def randomize_weights(model: Any, seed: int) -> Any:
    """Re-draw every parameter of ``model`` in place (see the module docstring); returns ``model``, with
    ``source['randomized'] = {"seed", "method"}`` and its name suffixed ``+randomized``."""
    gen = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for _, p in sorted(model.named_parameters(), key=lambda item: item[0]):  # a tied tensor appears once
            values = p.detach().float().cpu()
            mean = values.mean() if values.numel() else torch.tensor(0.0)
            std = values.std() if values.numel() > 1 else torch.tensor(0.0)
            drawn = torch.randn(p.shape, generator=gen) * std + mean
            p.copy_(drawn.to(dtype=p.dtype, device=p.device))
    source = getattr(model, "source", None)
    if isinstance(source, dict):
        source["name"] = f"{source.get('name', model.config.name)}+randomized"
        source["randomized"] = {"seed": int(seed), "method": METHOD}
    return model


__all__ = ["METHOD", "randomize_weights"]
