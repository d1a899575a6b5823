"""Where each intermediate lives: decodability and causal use of the fed latents, per (intermediate, P_k).

Three readings, one position at a time, each measuring a different property (only the third says
that ``e_k`` is *the* carrier):

- ``decode_accuracy``: can the intermediate's value be read from the fed latent ``e_k`` of problems whose
  *operand pair* was never seen? A nearest-class-mean classifier (Euclidean, on ``e_k`` centred by the
  training folds' mean) with grouped folds: every problem with the same (operation, X, Y) sits in one
  fold, so a latent that merely echoes the operand tokens (as a random network's does) cannot score by
  recognising them; it has to carry the computed value. Accuracy is the share of problems whose
  predicted value is right, over the problems whose value some training fold holds (a classifier cannot
  name a class it never saw; the others are left out and counted).
- ``value_patching``: set ``e_k`` to the mean ``e_k`` of the problems whose intermediate has another
  value ``v'`` (the problem itself never belongs to that group) and score whether the answer becomes
  the one ``v'`` implies under the CYW chain (``codi_probe.design.implied_answer``: a set step 1 is
  carried into step 2). The null control replaces ``e_k`` by a norm-matched random direction
  (``Randomize``) and is scored against the same implied answer. By default the later fed latents are
  recomputed, so this is the *total* effect of ``e_k``: a position upstream of a carrier moves the answer
  by changing what the carrier computes. With ``hold_later`` every later fed latent ``e_j`` (j > k) is
  held at the problem's own clean value (``Patch`` from the clean trace) and the answer is scored
  against the one implied with every *other* intermediate at its own value
  (``codi_probe.design.direct_answer``): the *direct* effect of ``e_k``, the path that does not run
  through a later fed latent.

Positions: ``k`` in 1..6 is the fed latent ``e_k`` at ``P_k`` (``trace.latent_post[:, k - 1]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..data import Problem
from ..design import INTERMEDIATES, direct_answer, implied_answer
from ..engine import CodiEngine, Intervention, Patch, Randomize, Set, Trace
from .common import run_conditions

N_FOLDS = 5


def intermediate_values(problems: Sequence[Problem], intermediate: str) -> np.ndarray:
    return np.array([p.intermediates[INTERMEDIATES.index(intermediate)] for p in problems], dtype=float)


def operand_group(p: Problem) -> tuple:
    """The fold key: problems sharing (operation, X, Y) are held out together."""
    m = p.meta
    return (p.operation, m.get("X"), m.get("Y")) if "X" in m else (p.id,)


def grouped_folds(problems: Sequence[Problem], n_folds: int = N_FOLDS, seed: int = 0) -> np.ndarray:
    """Fold index per problem; whole operand groups are assigned to folds in a seeded order."""
    keys = sorted({operand_group(p) for p in problems}, key=repr)
    order = np.random.default_rng(seed).permutation(len(keys))
    fold_of = {keys[j]: i % n_folds for i, j in enumerate(order)}
    return np.array([fold_of[operand_group(p)] for p in problems])


def scorable(values: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Per problem: does some other fold hold its value (so that a classifier could name it)?"""
    return np.array([bool(np.any(values[folds != f] == v)) for v, f in zip(values, folds)])


def decode_accuracy(latents: torch.Tensor, values: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Per problem: is its value the nearest class mean's (classes and means from the other folds)?
    ``latents``: ``[N, D]`` fed latents at one position. Ties go to the smallest value, so a constant
    latent predicts one value for everyone. A problem that is not ``scorable`` is always wrong here;
    score over ``scorable`` problems."""
    x = latents.double().cpu().numpy()
    right = np.zeros(len(values), dtype=bool)
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        if not train.any():  # a single fold (one problem): nothing to learn from, its problems stay wrong
            continue
        classes = np.unique(values[train])
        mu = x[train].mean(0)
        means = np.stack([x[train][values[train] == c].mean(0) for c in classes]) - mu
        d = ((x[test] - mu)[:, None, :] - means[None]) ** 2
        pred = classes[np.argmin(d.sum(-1), axis=1)]
        right[test] = pred == values[test]
    return right


@dataclass
class PatchRun:
    rows: list[int]  # problem indices that got a target value
    moved: np.ndarray  # [n] answer == the implied answer after the value-mean patch
    control: np.ndarray  # [n] the same under the random-direction control
    baseline_correct: np.ndarray  # [n]


def value_patching(engine: CodiEngine, problems: Sequence[Problem], trace: Trace,
                   sites: Sequence[tuple[str, int]], *, seed: int = 0, max_new_tokens: int = 16,
                   hold_later: bool = False) -> dict[tuple[str, int], PatchRun]:
    """Patch ``e_k`` with the mean of another value's group, for every ``(intermediate, k)`` site, in one
    batched engine call (one clean baseline row per problem); see the module docstring. ``trace`` holds
    the clean runs of ``problems`` (its ``latent_post``). Every problem with another value in the set
    gets one target value per intermediate (seeded), the same at every position. ``hold_later``: the
    direct effect (later fed latents held at their clean values, in the patch and in its control)."""
    answer_of = direct_answer if hold_later else implied_answer
    conditions: dict[str, list] = {}
    expected: dict[tuple[str, int], list] = {}
    rows: dict[str, list[int]] = {}
    for name in dict.fromkeys(s for s, _ in sites):
        values = intermediate_values(problems, name)
        groups: dict[float, list[int]] = {}
        for i, v in enumerate(values):
            groups.setdefault(float(v), []).append(i)
        rng = np.random.default_rng([seed, INTERMEDIATES.index(name)])
        targets = {}
        for i in range(len(problems)):
            others = sorted(v for v in groups if v != values[i])
            if others:
                targets[i] = others[int(rng.integers(len(others)))]
        rows[name] = sorted(targets)
        for s, k in sites:
            if s != name:
                continue
            position = f"P{k}"
            patched, random = [], []
            later = tuple(f"P{j}" for j in range(k + 1, trace.latent_post.shape[1] + 1)) if hold_later else ()
            for i in range(len(problems)):
                if i in targets:
                    mean = trace.latent_post[groups[targets[i]], k - 1].mean(0)
                    held = [Intervention("latent_post_prj", later, Patch(trace, i))] if later else []
                    patched.append([Intervention("latent_post_prj", (position,), Set(mean)), *held])
                    random.append([Intervention("latent_post_prj", (position,), Randomize(seed * 1000 + i)), *held])
                else:  # no target value: a row that is not scored
                    patched.append([])
                    random.append([])
            conditions[f"{name}@{position}"] = patched
            conditions[f"{name}@{position}/random"] = random
            expected[(name, k)] = [answer_of(problems[i], name, targets[i]) if i in targets else None
                                   for i in range(len(problems))]
    runs = run_conditions(engine, [p.question for p in problems], conditions, max_new_tokens=max_new_tokens)
    base = runs.correct("baseline", [p.answer for p in problems])
    out = {}
    for s, k in sites:
        keep = rows[s]
        moved = runs.correct(f"{s}@P{k}", expected[(s, k)])[keep]
        control = runs.correct(f"{s}@P{k}/random", expected[(s, k)])[keep]
        out[(s, k)] = PatchRun(keep, moved, control, base[keep])
    return out


def donor_patching(engine: CodiEngine, problems: Sequence[Problem], trace: Trace, intermediate: str, k: int,
                   *, max_new_tokens: int = 16, hold_later: bool = False) -> np.ndarray:
    """Per problem (with a donor): patch ``e_k`` from the next problem in order whose value differs and
    score whether the answer becomes the donor-implied one. A single donor's latent, not a group mean:
    the model card's direct measurement of causal use (``hold_later``: the direct effect, as in
    ``value_patching``)."""
    answer_of = direct_answer if hold_later else implied_answer
    later = tuple(f"P{j}" for j in range(k + 1, trace.latent_post.shape[1] + 1)) if hold_later else ()
    values = intermediate_values(problems, intermediate)
    n = len(problems)
    rows, ivs, expected = [], [], []
    for i, p in enumerate(problems):
        j = next((j % n for j in range(i + 1, i + n) if values[j % n] != values[i]), None)
        if j is None:
            continue
        rows.append(i)
        held = [Intervention("latent_post_prj", later, Patch(trace, i))] if later else []
        ivs.append([Intervention("latent_post_prj", (f"P{k}",), Patch(trace, j)), *held])
        expected.append(answer_of(p, intermediate, values[j]))
    if not rows:
        return np.zeros(0, dtype=bool)
    runs = run_conditions(engine, [problems[i].question for i in rows], {"donor": ivs},
                          max_new_tokens=max_new_tokens)
    return runs.correct("donor", expected)
