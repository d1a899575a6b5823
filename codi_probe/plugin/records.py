"""The claim record (what one claim test measured) and the ``claim`` marker that starts it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from collections.abc import Mapping
from typing import Any

import pytest

from .jsonable import to_plain

VERDICTS = ("supported", "refuted", "inconclusive", "invalid")  # invalid: a failed control or precondition
KINDS = ("invariant", "empirical")
PROPERTY = "codi_claim"  # the user_properties key the record travels under
RECORD_KEY = pytest.StashKey["ClaimRecord"]()
DEVICE_KEY = pytest.StashKey[str]()  # the device of this process's model, once loaded


class ClaimMarkerError(ValueError):
    """A malformed ``@pytest.mark.claim``."""


@dataclass
class ClaimRecord:
    """Identity of a claim (from its marker and parametrization) plus what the test measured."""

    id: str  # base id plus "[param id]" for parametrized tests, e.g. "IMP-01[P5]"
    base_id: str  # the marker's id, e.g. "IMP-01"
    kind: str  # "invariant" | "empirical"
    statement: str
    source: str | None = None
    reported: Any = None  # the number (or text) the source reports
    param_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    statistic: str | None = None  # name of the primary statistic; ``ci`` belongs to it
    value: float | None = None  # its value
    statistics: dict[str, Any] = field(default_factory=dict)  # all named statistics
    effect_size: dict[str, Any] | None = None  # {"name", "value"}
    ci: dict[str, Any] | None = None  # {"lo", "hi", "level"}
    p_value: float | None = None  # p of "the prediction is false" against its threshold (family-adjusted)
    p_refute: float | None = None  # p of "the prediction holds" (family-adjusted); small -> refuted
    n: int | None = None  # number of problems
    min_n: int | None = None  # the claim's declared minimum number of problems
    hypothesis: dict[str, Any] | None = None  # the declared hypothesis (codi_probe.hypothesis.Hypothesis)
    evidence: list[dict[str, Any]] = field(default_factory=list)  # one entry per tested prediction
    family: dict[str, Any] | None = None  # {"name", "size", "correction"} for a parameterized family
    verdict_reason: str | None = None  # why the shared rule gave this verdict
    threshold: Any = None
    verdict: str | None = None  # one of VERDICTS
    details: dict[str, Any] = field(default_factory=dict)
    non_finite: list[str] = field(default_factory=list)  # fields given as NaN/inf (stored as null)
    expected: str | None = None  # expectation profile entry, e.g. "refuted", "record"
    expected_why: str | None = None  # the entry's reason (a planted fact, or "the design decides nothing")
    baseline: dict[str, Any] | None = None  # the matching claim of --codi-baseline
    failures: list[str] = field(default_factory=list)  # expectation / baseline check failures
    worker: str | None = None  # the pytest process that ran it: "main", or the xdist worker id ("gw0", ...)
    device: str | None = None  # the device of that process's model ("cpu", "cuda:1"); None: no model loaded

    def to_dict(self) -> dict[str, Any]:
        return to_plain(asdict(self))

    def brief(self) -> str:
        return brief(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ClaimRecord":
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "n/a" if value is None else str(value)


def brief(rec: Mapping[str, Any]) -> str:
    """A record's key numbers in one line: ``acc_drop=0.031 CI95[0.01, 0.052] p=0.003 n=50/50``
    (n, then the claim's declared minimum n when it has one)."""
    parts = [f"{rec['statistic']}={_num(rec.get('value'))}"] if rec.get("statistic") else []
    if rec.get("ci"):
        level = rec["ci"].get("level") or 0.95
        parts.append(f"CI{100 * level:g}[{_num(rec['ci']['lo'])}, {_num(rec['ci']['hi'])}]")
    if rec.get("p_value") is not None:
        parts.append(f"p={_num(rec['p_value'])}")
    if rec.get("n") is not None:
        parts.append(f"n={rec['n']}" + (f"/{rec['min_n']}" if rec.get("min_n") else ""))
    return " ".join(parts) or "no statistic recorded"


def _marker_args(id: str, statement: str, source: str | None = None, reported: Any = None,
                 kind: str | None = None, hypothesis: Any = None) -> tuple[str, str, str | None, Any, str | None, Any]:
    """The ``claim`` marker's signature."""
    return id, statement, source, reported, kind, hypothesis


def hypothesis_of(item: pytest.Item) -> Any:
    """The ``Hypothesis`` declared in ``item``'s ``claim`` marker, or ``None``. A marker of a
    parametrized test may declare one per parameter set: a mapping from the parameter id to it."""
    marker = item.get_closest_marker("claim")
    if marker is None:
        return None
    declared = _marker_args(*marker.args, **marker.kwargs)[5]
    if isinstance(declared, Mapping):
        callspec = getattr(item, "callspec", None)
        key = callspec.id if callspec is not None else None
        if key not in declared:
            raise ClaimMarkerError(f"{item.nodeid}: the claim's hypothesis mapping has no entry for "
                                   f"parameter id {key!r} (has {sorted(declared)})")
        return declared[key]
    return declared


def claim_from_item(item: pytest.Item) -> ClaimRecord | None:
    """The record stub for ``item``'s ``claim`` marker; ``None`` when it has none."""
    marker = item.get_closest_marker("claim")
    if marker is None:
        return None
    try:
        cid, statement, source, reported, kind, hypothesis = _marker_args(*marker.args, **marker.kwargs)
    except TypeError as exc:
        raise ClaimMarkerError(f"{item.nodeid}: bad @pytest.mark.claim: {exc}") from None
    if not isinstance(cid, str) or not cid:
        raise ClaimMarkerError(f"{item.nodeid}: claim id must be a non-empty string, got {cid!r}")
    marked = [k for k in KINDS if item.get_closest_marker(k) is not None]
    kind = kind or (marked[0] if len(marked) == 1 else None)
    if kind not in KINDS or any(k != kind for k in marked):
        raise ClaimMarkerError(f"{item.nodeid}: claim {cid}: kind must be 'invariant' or 'empirical' "
                               f"(got kind={kind!r}, markers {marked})")
    from ..hypothesis import Hypothesis

    hypothesis = hypothesis_of(item)
    if hypothesis is not None and not isinstance(hypothesis, Hypothesis):
        raise ClaimMarkerError(f"{item.nodeid}: claim {cid}: hypothesis= must be a codi_probe.hypothesis.Hypothesis "
                               f"(or a mapping from parameter id to one)")
    callspec = getattr(item, "callspec", None)
    param_id = callspec.id if callspec is not None else None
    return ClaimRecord(
        id=f"{cid}[{param_id}]" if param_id else cid, base_id=cid, kind=kind, statement=str(statement),
        source=source, reported=to_plain(reported), param_id=param_id,
        params=to_plain(callspec.params) if callspec is not None else {},
        hypothesis=hypothesis.to_dict() if hypothesis is not None else None,
        min_n=hypothesis.min_n if hypothesis is not None else None,
    )
