"""codi_probe.experiments.carriers: grouped-fold decoding on latents whose content is set by hand."""

from __future__ import annotations

import numpy as np
import torch

from codi_probe.data.templates import cyw_template_problems
from codi_probe.experiments.carriers import (decode_accuracy, grouped_folds, intermediate_values, operand_group,
                                             scorable)

PROBLEMS = list(cyw_template_problems(prompts_per_template=20))


def test_folds_hold_out_whole_operand_groups() -> None:
    folds = grouped_folds(PROBLEMS)
    by_group: dict = {}
    for p, f in zip(PROBLEMS, folds):
        by_group.setdefault(operand_group(p), set()).add(int(f))
    assert all(len(fs) == 1 for fs in by_group.values())
    assert len(set(folds.tolist())) == 5


def test_a_latent_holding_the_value_decodes_it() -> None:
    values = intermediate_values(PROBLEMS, "step1")
    emb = torch.randn(40, 16, generator=torch.Generator().manual_seed(0))
    latents = emb[torch.tensor(values, dtype=torch.long)] + 0.01 * torch.randn(len(values), 16)
    folds = grouped_folds(PROBLEMS)
    right = decode_accuracy(latents, values, folds)
    ok = scorable(values, folds)
    assert 0 < (~ok).sum() < len(values) // 4
    assert np.array_equal(right, ok)  # right exactly where another fold holds the value


def test_a_constant_latent_decodes_nothing_beyond_one_value() -> None:
    values = intermediate_values(PROBLEMS, "step1")
    right = decode_accuracy(torch.ones(len(values), 8), values, grouped_folds(PROBLEMS))
    assert right.mean() <= np.unique(values, return_counts=True)[1].max() / len(values)


def test_operand_echoes_do_not_decode_under_grouped_folds_but_do_under_random_ones() -> None:
    """A random network's latent is a random function of the operand tokens: grouped folds must stop it
    scoring (planted bug: random folds let it recognise the same operands seen in training)."""
    values = intermediate_values(PROBLEMS, "step1")
    keys = sorted({operand_group(p) for p in PROBLEMS}, key=repr)
    code = torch.randn(len(keys), 32, generator=torch.Generator().manual_seed(1))
    latents = torch.stack([code[keys.index(operand_group(p))] for p in PROBLEMS])
    grouped = decode_accuracy(latents, values, grouped_folds(PROBLEMS)).mean()
    random_folds = np.random.default_rng(0).integers(0, 5, len(PROBLEMS))
    leaky = decode_accuracy(latents, values, random_folds).mean()
    assert grouped < 0.2 and leaky > 0.7
