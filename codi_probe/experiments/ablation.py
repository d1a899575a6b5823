"""Ablating explicit *sets* of latent positions (IMP-04, IMP-07, IMP-10), each effect labelled by its set,
under zero, mean or resample ablation.

A position set is always named by its members (``{P0,P1,P2}``), never by one position: the seeds' "step
importance of position 5" zeroed five positions (claims.md 7 F-15). :func:`mislabelled` is the guard: it
lists every effect whose label does not name exactly the set that was ablated.

Sites follow the CCTA design: ``resid_post`` of block ``layer`` at P0..P6, one intervention per position
in the set, all applied in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..engine import CodiEngine, Intervention, Patch, Set, Zero
from ..engine.positions import LATENT_POSITIONS, position_index
from .common import golds, run_conditions


def set_label(positions: Sequence[str]) -> str:
    """The canonical name of a position set: its members in loop order, e.g. ``{P0,P1,P2}``."""
    members = sorted(set(positions), key=position_index)
    return "{" + ",".join(members) + "}"


@dataclass(frozen=True)
class SetEffect:
    """One ablated set's effect on the problems: ``failure`` = baseline correct and ablated wrong."""

    label: str
    positions: tuple[str, ...]
    failure: np.ndarray  # [n] bool
    correct: np.ndarray  # [n] bool

    @property
    def set_size(self) -> int:
        return len(self.positions)

    def summary(self) -> dict:
        return {"positions": list(self.positions), "set size": self.set_size,
                "failure rate": float(self.failure.mean()) if len(self.failure) else None,
                "accuracy": float(self.correct.mean()) if len(self.correct) else None}


@dataclass
class SetAblation:
    """The baseline and every set's effect, on the same problems in one batched run."""

    layer: int
    method: str
    baseline_correct: np.ndarray
    effects: dict[str, SetEffect] = field(default_factory=dict)

    def __getitem__(self, positions: Sequence[str] | str) -> SetEffect:
        """The effect of the set ``positions`` (one position may be given as a string)."""
        return self.effects[set_label((positions,) if isinstance(positions, str) else positions)]


METHODS = ("zero", "mean", "resample")


def set_ablation(engine: CodiEngine, problems, sets: Sequence[Sequence[str]], *, layer: int,
                 max_new_tokens: int = 16, method: str = "zero", clean=None, seed: int = 0) -> SetAblation:
    """Ablate ``resid_post`` of block ``layer`` at every position of each set (one condition per set, all
    batched with the baseline). ``method``: ``zero``; ``mean``, the position's mean over ``clean`` (a trace of
    these problems recording ``resid_post``); or ``resample``, another problem's value from ``clean`` (a
    seeded donor per problem, never itself)."""
    problems = list(problems)
    if method not in METHODS:
        raise ValueError(f"unknown ablation method {method!r} (use {', '.join(METHODS)})")
    if method != "zero" and (clean is None or clean.n_rows != len(problems)):
        raise ValueError(f"{method} ablation needs the clean trace of the same problems (clean=...)")
    labels = {}
    for s in sets:
        if not s or not set(s) <= set(LATENT_POSITIONS):
            raise ValueError(f"a position set holds latent positions P0..P6, got {list(s)}")
        labels[set_label(s)] = tuple(sorted(set(s), key=position_index))
    n = len(problems)
    rng = np.random.default_rng(seed)
    donors = [(i + 1 + int(rng.integers(max(1, n - 1)))) % n for i in range(n)]

    def op(i: int):
        if method == "zero":
            return Zero()
        if method == "mean":
            return Set({p: clean.mean_value("resid_post", layer, p) for p in LATENT_POSITIONS})
        return Patch(clean, donors[i])

    ops = [op(i) for i in range(n)] if method != "mean" else [op(0)] * n
    conds = {label: [[Intervention("resid_post", members, ops[i], layer=layer)] for i in range(n)]
             for label, members in labels.items()}
    runs = run_conditions(engine, [p.question for p in problems], conds, max_new_tokens=max_new_tokens)
    gold = golds(problems)
    base = runs.correct("baseline", gold)
    out = SetAblation(layer, method, base)
    for label, members in labels.items():
        correct = runs.correct(label, gold)
        out.effects[label] = SetEffect(label, members, base & ~correct, correct)
    return out


def mislabelled(effects: Mapping[str, SetEffect]) -> list[str]:
    """The keys whose effect is not labelled by exactly its ablated set (F-15): a key or label that names
    one position while more were ablated, or any other mismatch. The label is read back by parsing it
    (``{P0,P1}`` -> {P0, P1}), not by rebuilding it with :func:`set_label`, so a wrong labeller is caught."""
    def named(label: str) -> set[str] | None:
        if not (label.startswith("{") and label.endswith("}")):
            return None
        return set(label[1:-1].split(",")) if len(label) > 2 else set()

    return [key for key, e in effects.items()
            if not (key == e.label and named(e.label) == set(e.positions) and len(e.positions) == len(set(e.positions)))]


__all__ = ["METHODS", "SetAblation", "SetEffect", "mislabelled", "set_ablation", "set_label"]
