"""Selection helpers (steps, operation, family, template) and seeded stratified sampling.

Each criterion is applied as its own logged filter (see ``ProblemSet.filters``); pairs are selected
by their clean side.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

import numpy as np

from .problemset import PairSet, Problem, ProblemPair, ProblemSet

S = TypeVar("S", ProblemSet, PairSet)


def _problem(item: Problem | ProblemPair) -> Problem:
    return item.clean if isinstance(item, ProblemPair) else item


def _allowed(value: Any) -> tuple[Any, ...]:
    if isinstance(value, (str, int)) or value is None:
        return (value,)
    return tuple(value)


def select(
    collection: S,
    *,
    steps: int | Iterable[int] | None = None,
    operation: str | Iterable[str] | None = None,
    family: str | Iterable[str] | None = None,
    template: int | Iterable[int] | None = None,
) -> S:
    """Keep the items whose field is (one of) the given value(s); None means "any". Logs each filter."""
    criteria = {"steps": steps, "operation": operation, "family": family, "template": template}
    for name, wanted in criteria.items():
        if wanted is None:
            continue
        allowed = _allowed(wanted)
        collection = collection.where(
            lambda item, n=name, a=allowed: getattr(_problem(item), n) in a, name, values=list(allowed)
        )
    return collection


def steps_stratum(steps: int | None, top: int = 5) -> str:
    """Stratum label by number of steps: ``"0"`` ... ``"{top-1}"``, ``"{top}+"``, ``"none"``."""
    if steps is None:
        return "none"
    return f"{top}+" if steps >= top else str(steps)


def stratify(
    collection: S,
    per_stratum: int,
    *,
    seed: int = 0,
    key: Callable[[Problem], Hashable] = lambda p: steps_stratum(p.steps),
    key_name: str = "steps_stratum",
) -> S:
    """At most ``per_stratum`` items per stratum, drawn with ``numpy`` seed ``seed``; original order kept."""
    strata: dict[Hashable, list[int]] = {}
    for index, item in enumerate(collection):
        strata.setdefault(key(_problem(item)), []).append(index)
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    counts: dict[str, int] = {}
    for label in sorted(strata, key=str):
        members = strata[label]
        if len(members) > per_stratum:
            members = rng.choice(members, size=per_stratum, replace=False).tolist()
        keep.extend(members)
        counts[str(label)] = len(members)
    record = {"filter": "stratify", "key": key_name, "per_stratum": per_stratum, "seed": seed, "counts": counts}
    return collection.derive((collection[i] for i in sorted(keep)), record)
