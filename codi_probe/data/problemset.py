"""Problem records and provenance-carrying collections of them.

A collection never shrinks silently: every filter that produced it is logged in ``filters`` as
``{"filter": name, ..., "before": n, "after": m}``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload


@dataclass(frozen=True)
class Problem:
    """One problem. ``answer`` is the gold answer as a float (None: none/unparsable).

    ``steps`` is the number of reasoning steps (GSM8K: number of ``<<...>>`` annotations);
    ``intermediates`` are the ground-truth values of those steps, in order, the last being the answer
    when the chain ends there. ``template`` is the template index of synthetic items.
    """

    id: str
    question: str
    answer: float | None
    steps: int | None = None
    family: str | None = None
    operation: str | None = None
    intermediates: tuple[float, ...] = ()
    template: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ProblemPair:
    """A clean problem and its corrupted twin; ``changed_number`` reads ``"16 -> 17"``."""

    pair_id: str
    clean: Problem
    corrupted: Problem
    changed_number: str
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


T = TypeVar("T", Problem, ProblemPair)
C = TypeVar("C", bound="_Collection[Any]")


class _Collection(Sequence[T], Generic[T]):
    """Immutable sequence with a name, a source and a filter provenance log."""

    def __init__(
        self,
        items: Iterable[T],
        name: str = "",
        filters: Iterable[dict[str, Any]] = (),
        source: str | None = None,
    ) -> None:
        self._items: tuple[T, ...] = tuple(items)
        self.name = name
        self.filters: list[dict[str, Any]] = [dict(f) for f in filters]
        self.source = source

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        return list(self._items[index]) if isinstance(index, slice) else self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n={len(self)}, filters={len(self.filters)})"

    def derive(self: C, items: Iterable[T], record: dict[str, Any]) -> C:
        """A new collection of ``items`` whose provenance is this one's plus ``record`` (with sizes)."""
        kept = tuple(items)
        entry = {**record, "before": len(self), "after": len(kept)}
        return type(self)(kept, name=self.name, filters=[*self.filters, entry], source=self.source)

    def where(self: C, predicate: Callable[[T], bool], filter_name: str, **params: Any) -> C:
        """Keep the items satisfying ``predicate``; the filter is logged under ``filter_name``."""
        return self.derive((x for x in self if predicate(x)), {"filter": filter_name, **params})

    def fingerprint(self) -> str:
        """sha256 (hex) over the ordered ids, questions and answers."""
        digest = hashlib.sha256()
        for row in self._identity_rows():
            digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
        return digest.hexdigest()

    def _identity_rows(self) -> Iterator[list[Any]]:
        raise NotImplementedError


def _identity(problem: Problem) -> list[Any]:
    return [problem.id, problem.question, None if problem.answer is None else repr(float(problem.answer))]


class ProblemSet(_Collection[Problem]):
    """An ordered set of problems with provenance."""

    def _identity_rows(self) -> Iterator[list[Any]]:
        return (_identity(p) for p in self)


class PairSet(_Collection[ProblemPair]):
    """An ordered set of clean/corrupted pairs with provenance."""

    def _identity_rows(self) -> Iterator[list[Any]]:
        return ([p.pair_id, *_identity(p.clean), *_identity(p.corrupted), p.changed_number] for p in self)

    def problems(self, variant: str = "clean") -> ProblemSet:
        """The clean (or corrupted) side of every pair, as a ProblemSet."""
        if variant not in ("clean", "corrupted"):
            raise ValueError(f"variant must be 'clean' or 'corrupted', got {variant!r}")
        return ProblemSet((getattr(p, variant) for p in self), name=f"{self.name}:{variant}",
                          filters=self.filters, source=self.source)
