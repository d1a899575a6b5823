"""``ClaimRecorder``: what the ``claim`` fixture hands a test to record its measurement with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .jsonable import to_float, to_plain
from .records import VERDICTS, ClaimRecord


def _ci_bounds(ci: Any) -> tuple[Any, Any]:
    """(lo, hi) from a pair or from an object with ``low``/``high`` (scipy's ConfidenceInterval)."""
    if hasattr(ci, "low") and hasattr(ci, "high"):
        return ci.low, ci.high
    lo, hi = ci
    return lo, hi


class ClaimRecorder:
    """Records one claim's numbers. Record before asserting: a failing test still reports them.

    Every method merges into the record (a field given as ``None`` is left as it was) and returns
    the recorder, so calls chain. Values may be numpy or torch scalars; they are stored as plain
    Python, NaN/inf as ``null`` with the field named in ``non_finite``.
    """

    def __init__(self, record: ClaimRecord, hypothesis: Any = None):
        self._record = record
        self._hypothesis = hypothesis

    @property
    def id(self) -> str:
        """The claim id, with the parameter id for parametrized tests (``IMP-01[P5]``)."""
        return self._record.id

    @property
    def kind(self) -> str:
        return self._record.kind

    @property
    def verdict(self) -> str | None:
        return self._record.verdict

    @property
    def record_data(self) -> dict[str, Any]:
        """A plain-dict copy of everything recorded so far."""
        return self._record.to_dict()

    def record(self, statistic: str | None = None, value: Any = None, *, ci: Any = None,
               ci_level: float | None = None, p_value: Any = None, effect_size: Any = None,
               effect_size_name: str | None = None, n: int | None = None, threshold: Any = None,
               verdict: str | None = None, statistics: Mapping[str, Any] | None = None,
               details: Mapping[str, Any] | None = None) -> "ClaimRecorder":
        """Record the primary ``statistic`` (name) and its ``value``, its ``ci`` (lo, hi) at
        ``ci_level`` (default 0.95), ``p_value``, ``effect_size`` (named ``effect_size_name``),
        ``n`` (problems), ``threshold``, ``verdict``, extra named ``statistics`` and ``details``."""
        rec = self._record
        if statistic is not None:
            rec.statistic = str(statistic)
        if value is not None:
            if rec.statistic is None:
                raise ValueError(f"{rec.id}: a statistic value needs a statistic name")
            rec.value = self._number("value", value)
            rec.statistics[rec.statistic] = rec.value
        if ci is not None:
            lo, hi = _ci_bounds(ci)
            rec.ci = {"lo": self._number("ci.lo", lo), "hi": self._number("ci.hi", hi),
                      "level": float(ci_level if ci_level is not None else 0.95)}
        elif ci_level is not None and rec.ci is not None:
            rec.ci["level"] = float(ci_level)
        if p_value is not None:
            rec.p_value = self._number("p_value", p_value)
            if rec.p_value is not None and not 0.0 <= rec.p_value <= 1.0:
                raise ValueError(f"{rec.id}: p_value must lie in [0, 1], got {rec.p_value}")
        if effect_size is not None:
            rec.effect_size = {"name": effect_size_name, "value": self._number("effect_size", effect_size)}
        if n is not None:
            rec.n = int(to_plain(n))
        if threshold is not None:
            rec.threshold = to_plain(threshold)
        if verdict is not None:
            self.set_verdict(verdict)
        for name, val in (statistics or {}).items():
            self.stat(name, val)
        if details:
            self.detail(**details)
        return self

    def stat(self, name: str, value: Any) -> "ClaimRecorder":
        """Record a secondary named statistic (a number, or anything JSON-able)."""
        plain = to_plain(value)
        if plain is None and value is not None:
            self._note_non_finite(f"statistics.{name}")
        self._record.statistics[str(name)] = plain
        return self

    def detail(self, **items: Any) -> "ClaimRecorder":
        """Add free-form JSON-able details (arrays and tensors become lists)."""
        self._record.details.update(to_plain(items))
        return self

    def set_verdict(self, verdict: str) -> "ClaimRecorder":
        """Set the verdict: ``supported``, ``refuted``, ``inconclusive`` or ``invalid``."""
        if verdict not in VERDICTS:
            raise ValueError(f"{self.id}: unknown verdict {verdict!r} (use {', '.join(VERDICTS)})")
        self._record.verdict = verdict
        return self

    @property
    def hypothesis(self):
        """The ``Hypothesis`` declared in the claim marker (``None`` when it declares none)."""
        return self._hypothesis

    def decide(self, evidence: Any = (), *, n: int, controls: Mapping[str, bool] | None = None,
               family: Mapping[str, Any] | None = None, member: str | None = None) -> str:
        """Record the evidence and set the verdict by the shared rule (:mod:`codi_probe.hypothesis`).

        ``evidence``: the :class:`~codi_probe.hypothesis.Evidence` of every declared prediction (may be
        empty when a control failed or n is below the minimum: the rule then decides without it).
        ``n``: the problems the claim rests on. ``controls``: the declared controls, each True when it
        passed. ``family`` and ``member``: for a parameterized family, every member's
        :class:`~codi_probe.hypothesis.Outcome` (from :func:`~codi_probe.hypothesis.combine`) and this
        test's key among them; the p-values are then adjusted over the family.
        """
        from ..hypothesis import Evidence, adjust_family, combine, decide

        hyp = self._hypothesis
        if hyp is None:
            raise ValueError(f"{self.id}: decide() needs a hypothesis= in the claim marker")
        evidence = [evidence] if isinstance(evidence, Evidence) else list(evidence)
        if family is not None:
            if member not in family:
                raise ValueError(f"{self.id}: member {member!r} is not in the family {list(family)}")
            outcome = adjust_family(family, hyp.correction)[member]
            size = sum(o.verdict is None for o in family.values())
        else:
            outcome, size = combine(hyp, evidence, n, controls), 1
        result = decide(outcome, family_size=size, correction=hyp.correction)
        rec = self._record
        first = evidence[0] if evidence else None  # the primary statistic: the first evidence given
        primary = next((p for p in hyp.predictions if first is not None and p.statistic == first.statistic),
                       hyp.predictions[0])
        rec.statistic, rec.threshold = primary.statistic, primary.threshold
        if first is not None:
            self.record(value=first.value, ci=(first.lo, first.hi), ci_level=first.level)
        for e in evidence:
            if e is not first:
                self.stat(e.statistic, e.value)
        rec.evidence = [to_plain(e.to_dict()) for e in evidence]
        rec.n, rec.min_n = int(n), hyp.min_n
        rec.p_value = result.p_support
        rec.p_refute = result.p_refute
        rec.family = ({"name": hyp.family or rec.base_id, **result.family} if result.family else None)
        rec.verdict_reason = result.reason
        if outcome.raw[0] is not None and result.family:
            self.stat("unadjusted p_support", outcome.raw[0])
        if controls:
            self.stat("controls", dict(controls))
        self.set_verdict(result.verdict)
        return result.verdict

    def check(self, holds: bool) -> bool:
        """Set an invariant's verdict (an exact check: supported when it holds) and return ``holds``."""
        from ..hypothesis import invariant_verdict

        self.set_verdict(invariant_verdict(bool(holds)))
        return bool(holds)

    def _number(self, what: str, value: Any) -> float | None:
        number = to_float(value, f"{self.id}: {what}")
        if number is None:
            self._note_non_finite(what)
        return number

    def _note_non_finite(self, what: str) -> None:
        if what not in self._record.non_finite:
            self._record.non_finite.append(what)

    def __repr__(self) -> str:
        return f"<ClaimRecorder {self.id} verdict={self.verdict}>"
