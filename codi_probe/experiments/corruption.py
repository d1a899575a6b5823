"""Corrupting one latent position at one layer (the CCTA design of IMP-01/02, COR-01/02, ATT-01/02).

For every problem, method and position, one row of a batched run: generation scores failures
(baseline correct ∧ corrupted wrong) and answer changes; a second, teacher-forced run on each
problem's clean greedy answer reads the KL at the first answer-number token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from ..engine import CodiEngine, Intervention, Noise, Op, Patch, Record, Shuffle, Zero
from ..engine.positions import LATENT_POSITIONS
from .common import golds, number_text, readout_kl, run_conditions

OpFactory = Callable[[int, str], Op]  # (problem index, position) -> op


def gs_methods(clean, n_problems: int, seed: int = 0) -> dict[str, OpFactory]:
    """The seven CCTA corruption methods of the seeds (IMP-01): zero, absolute Gaussian noise
    σ ∈ {0.1, 0.5, 1, 2}, replacement by another problem's activation, and a position shuffle (the
    value of another latent position of the same problem). Seeded per problem."""
    rng = np.random.default_rng(seed)
    donors = [(i + 1 + int(rng.integers(max(1, n_problems - 1)))) % n_problems for i in range(n_problems)]
    others = {p: [q for q in LATENT_POSITIONS if q != p] for p in LATENT_POSITIONS}
    swap = {(i, p): others[p][int(rng.integers(len(others[p])))] for i in range(n_problems) for p in LATENT_POSITIONS}
    methods: dict[str, OpFactory] = {"zero": lambda i, p: Zero()}
    for sigma in (0.1, 0.5, 1.0, 2.0):
        methods[f"noise_{sigma:g}"] = lambda i, p, s=sigma: Noise(s, seed=seed * 7919 + i)
    methods["random"] = lambda i, p: Patch(clean, donors[i])
    methods["shuffle"] = lambda i, p: Shuffle(clean, i, {p: swap[(i, p)]})
    return methods


def relative_noise(sigmas: Sequence[float], seed: int = 0) -> dict[str, OpFactory]:
    """Gaussian noise with per-element std σ·‖h‖/√D (so E‖ε‖ ≈ σ‖h‖), the same direction for every σ."""
    return {f"rel_noise_{s:g}": (lambda i, p, s=s: Noise(s, relative=True, seed=seed * 7919 + i)) for s in sigmas}


@dataclass
class CorruptionResult:
    """Per-problem outcomes; ``failure[m][p]``, ``changed[m][p]``, ``kl[m][p]`` are arrays over problems."""

    layer: int
    positions: tuple[str, ...]
    methods: tuple[str, ...]
    baseline_correct: np.ndarray
    failure: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    changed: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    kl: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    readout_fallbacks: int = 0

    def per_position(self, metric: str, method: str | None = None) -> np.ndarray:
        """``[n_problems, n_positions]``: the metric for one method, or its mean over methods."""
        table = getattr(self, metric)
        names = [method] if method else list(self.methods)
        return np.mean([[table[m][p] for p in self.positions] for m in names], axis=0).T


def corruption_grid(engine: CodiEngine, problems, *, layer: int, methods: Mapping[str, OpFactory] | None = None,
                    positions: Sequence[str] = LATENT_POSITIONS, seed: int = 0, clean=None,
                    max_new_tokens: int = 16, site: str = "resid_post") -> CorruptionResult:
    """Run every (method, position) corruption of ``site`` at block ``layer`` on every problem."""
    questions = [p.question for p in problems]
    n = len(questions)
    if clean is None:
        clean = engine.run(questions, record=Record(sites=(site,)), max_new_tokens=max_new_tokens)
    methods = dict(methods) if methods is not None else gs_methods(clean, n, seed)
    conditions = {f"{m}@{p}": [[Intervention(site, (p,), make(i, p), layer=layer)] for i in range(n)]
                  for m, make in methods.items() for p in positions}
    gen = run_conditions(engine, questions, conditions, max_new_tokens=max_new_tokens)
    gold = golds(problems)
    base = gen.correct("baseline", gold)
    targets, readout, fallbacks = clean_targets(engine, clean)
    forced = run_conditions(engine, questions, conditions, teacher_force=targets, readout=readout)
    res = CorruptionResult(layer, tuple(positions), tuple(methods), base, readout_fallbacks=fallbacks)
    for m in methods:
        res.failure[m], res.changed[m], res.kl[m] = {}, {}, {}
        for p in positions:
            name = f"{m}@{p}"
            res.failure[m][p] = base & ~gen.correct(name, gold)
            res.changed[m][p] = gen.changed(name)
            res.kl[m][p] = readout_kl(forced, name)
    return res


def clean_targets(engine: CodiEngine, clean) -> tuple[list[list[int]], list[int], int]:
    """Each problem's clean greedy answer tokens, and the index of its answer-number token (the first
    token when the clean answer has no number; those fallbacks are counted)."""
    from ..metrics import answer_readout_index

    targets, readout, fallbacks = [], [], 0
    for r in range(len(clean.questions)):
        ids = list(clean.answer_ids[r]) or [engine.model.special.eos[0]]
        value = clean.answer[r]
        try:
            if value is None:
                raise ValueError("no number")
            idx = answer_readout_index(engine.model.tokenizer, ids, number_text(value))
        except ValueError:
            idx, fallbacks = 0, fallbacks + 1
        targets.append(ids)
        readout.append(idx)
    return targets, readout, fallbacks
