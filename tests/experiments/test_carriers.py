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


class _Runs:
    """Stands in for ``run_conditions``'s result: every condition answers nothing right."""

    def correct(self, name, expected):
        return np.zeros(len(expected), dtype=bool)


def _captured_patching(monkeypatch, hold_later: bool):
    from types import SimpleNamespace

    import codi_probe.experiments.carriers as carriers

    seen = {}

    def fake_run(engine, questions, conditions, **_):
        seen.update(conditions)
        return _Runs()

    monkeypatch.setattr(carriers, "run_conditions", fake_run)
    problems = PROBLEMS[:30]
    trace = SimpleNamespace(latent_post=torch.randn(len(problems), 6, 4))
    carriers.value_patching(None, problems, trace, [("step1", 2), ("step2", 6)], hold_later=hold_later)
    return problems, trace, seen


def test_direct_patching_holds_every_later_fed_latent_at_its_clean_value(monkeypatch) -> None:
    """hold_later: each patched row (and its random control) also patches P_(k+1)..P6 from its own clean
    row; without it only P_k is touched (the total effect, later latents recomputed)."""
    from codi_probe.engine import Patch

    problems, trace, seen = _captured_patching(monkeypatch, hold_later=True)
    for name in ("step1@P2", "step1@P2/random"):
        for i, ivs in enumerate(seen[name]):
            if not ivs:
                continue
            assert ivs[0].positions == ("P2",)
            held = ivs[1:]
            assert [iv.positions for iv in held] == [("P3", "P4", "P5", "P6")]
            assert isinstance(held[0].op, Patch) and held[0].op.row == i and held[0].op.source is trace
    assert all(len(ivs) <= 1 for ivs in seen["step2@P6"])  # nothing after P6 to hold
    _, _, total = _captured_patching(monkeypatch, hold_later=False)
    assert all(len(ivs) <= 1 for ivs in total["step1@P2"])


def test_direct_answer_keeps_the_other_intermediate() -> None:
    """A set step 1 is carried into step 2 by implied_answer but not by direct_answer."""
    from codi_probe.design import direct_answer, implied_answer

    p = PROBLEMS[0]
    s1, s2 = p.intermediates[:2]
    z = p.meta["Z"]
    assert direct_answer(p, "step1", s1 + 1) == s1 + 1 + s2
    assert implied_answer(p, "step1", s1 + 1) == (s1 + 1) * (1 + z)
    assert direct_answer(p, "step2", 7) == implied_answer(p, "step2", 7) == s1 + 7
