"""A claim's declared hypothesis and the one rule that turns its evidence into a verdict.

A claim declares, before it runs (in its ``@pytest.mark.claim(hypothesis=...)`` marker):

- one or more :class:`Prediction` s: a statistic, a direction (``greater``, ``less`` or
  ``equivalent``) and a threshold (for ``equivalent``, the margin around 0);
- how they combine: ``all`` (the claim needs every prediction) or ``any`` (one suffices);
- its minimum number of problems, and where that number comes from;
- the controls and preconditions whose failure makes a measurement ``invalid``;
- the family of parameterized claims it shares a multiplicity correction with.

The statistics (:mod:`codi_probe.stats`) test each prediction against its own threshold and
return :class:`Evidence`: the estimate, its interval and two one-sided p-values,

- ``p_support``: of the null "the prediction is false" (small: evidence for the claim);
- ``p_refute``: of the null "the prediction is true" (small: evidence against it).

:func:`decide` is the only place a verdict is made:

1. fewer problems than the declared minimum → ``inconclusive`` ("n below minimum"); problems an
   evidence excluded as non-finite (``Evidence.excluded``) do not count towards it;
2. a failed control or precondition → ``invalid`` (the measurement cannot speak to the claim);
3. the predictions combine into one ``(p_support, p_refute)`` pair. ``all``: the claim is
   supported when every prediction is (an intersection-union test, so the largest ``p_support``)
   and refuted when any one is refuted (the smallest ``p_refute``, Holm/Bonferroni-adjusted over
   the predictions). ``any`` mirrors it;
4. inside a parameterized family both p-values are adjusted over the members (Holm, or
   Benjamini-Hochberg when declared) with :func:`adjust_family`;
5. ``supported`` when ``p_support < ALPHA``, ``refuted`` when ``p_refute < ALPHA``, else
   ``inconclusive``. An evidence's ``reason`` (a test that could not decide, excluded problems) is
   appended to the verdict's reason, so it reaches the report.

``ALPHA`` is one-sided 0.025, so a single directional prediction is supported exactly when its
two-sided 95% interval lies beyond the threshold, and an equivalence is supported when the 95%
interval lies inside the margins (TOST at 2.5% per side: stricter than the usual 5%, so the
interval shown in the report always agrees with the verdict). Every interval in
:mod:`codi_probe.stats` is the inversion of the test that decided (``tests/test_stats.py`` checks
each), except the within-problem permutation test's, which is the bootstrap interval of the mean
per-problem correlation and is descriptive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache

ALPHA = 0.025  # one-sided level of every deciding test; two one-sided tests make a 95% interval
DIRECTIONS = ("greater", "less", "equivalent")
COMBINE = ("all", "any")
CORRECTIONS = ("holm", "fdr_bh")
MIN_N_SIGNIFICANCE = 50  # claims.md F-05: problem-level n >= 50 for any significance claim
MIN_N_SOURCE = "claims.md F-05: problem-level n >= 50 for any significance claim"
EQUIVALENCE_MIN_N = 500  # claims.md IMP-13 / COR-03: TOST within +-3pp on >= 500 problems
EQUIVALENCE_MIN_N_SOURCE = "claims.md IMP-13 (b) and COR-03: equivalence (TOST) on >= 500 problems"


@dataclass(frozen=True)
class Prediction:
    """``statistic`` is ``greater`` / ``less`` than ``threshold``, or within ``±threshold`` of 0
    (``equivalent``; the statistic is then a difference). Units are the statistic's own (a share of
    problems, a difference of accuracies as a fraction, nats)."""

    statistic: str
    direction: str
    threshold: float
    effect: float | None = None  # the distance beyond the threshold that the power is computed for

    def __post_init__(self):
        if self.effect is not None and not self.effect > 0:
            raise ValueError(f"prediction {self.statistic!r}: an effect for the power must be > 0")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"prediction {self.statistic!r}: direction must be one of {DIRECTIONS}, "
                             f"got {self.direction!r}")
        if self.direction == "equivalent" and not self.threshold > 0:
            raise ValueError(f"prediction {self.statistic!r}: an equivalence margin must be > 0")

    def describe(self) -> str:
        sign = {"greater": ">", "less": "<", "equivalent": "within ±"}[self.direction]
        return f"{self.statistic} {sign} {self.threshold:g}" if self.direction != "equivalent" else \
            f"{self.statistic} {sign}{self.threshold:g}"


@dataclass(frozen=True)
class Hypothesis:
    """What a claim predicts, declared in its marker before it runs."""

    predictions: tuple[Prediction, ...]
    min_n: int = MIN_N_SIGNIFICANCE
    min_n_source: str = MIN_N_SOURCE
    combine: str = "all"
    controls: tuple[str, ...] = ()  # named positive controls and preconditions; one failing → invalid
    family: str | None = None  # parameterized claims sharing a multiplicity correction (default: the id)
    correction: str = "holm"

    def __post_init__(self):
        if isinstance(self.predictions, Prediction):
            object.__setattr__(self, "predictions", (self.predictions,))
        object.__setattr__(self, "predictions", tuple(self.predictions))
        object.__setattr__(self, "controls", tuple(self.controls))
        if not self.predictions:
            raise ValueError("a hypothesis needs at least one prediction")
        if self.combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got {self.combine!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        if self.min_n < 1:
            raise ValueError("min_n must be >= 1")
        names = [p.statistic for p in self.predictions]
        if len(set(names)) != len(names):
            raise ValueError(f"prediction statistics must be distinct, got {names}")

    def to_dict(self) -> dict:
        predictions = [{k: v for k, v in asdict(p).items() if k != "effect" or v is not None}
                       for p in self.predictions]  # an undeclared effect is left out (reports stay as they were)
        return {**asdict(self), "predictions": predictions, "alpha": ALPHA,
                "statement": f" {self.combine.upper()} ".join(p.describe() for p in self.predictions)}


@dataclass(frozen=True)
class Evidence:
    """One prediction tested: the estimate with its two-sided ``level`` interval, the problems it
    rests on, and the two one-sided p-values against the prediction's own threshold."""

    statistic: str
    value: float
    lo: float
    hi: float
    n: int
    p_support: float
    p_refute: float
    method: str
    level: float = 0.95
    reason: str | None = None  # why the test could not decide (both p-values are then 1), or a note
    excluded: int = 0  # problems left out as non-finite before testing (``n`` counts those kept)
    power: float | None = None  # the test's power at its threshold against ``effect``
    effect: float | None = None  # the alternative of ``power``: a distance beyond the threshold

    @property
    def ci(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    """The combined p-values of one claim, before or after the family adjustment. ``reason`` is set
    when the claim did not test (invalid, or n below its minimum)."""

    p_support: float | None
    p_refute: float | None
    n: int
    verdict: str | None = None  # set only for claims that did not test
    reason: str | None = None
    raw: tuple[float | None, float | None] = (None, None)  # before the family adjustment
    notes: tuple[str, ...] = ()  # the evidence's reasons (a degenerate test, excluded problems)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    reason: str
    p_support: float | None = None
    p_refute: float | None = None
    family: dict = field(default_factory=dict)


def _holm_min(p: Sequence[float]) -> float:
    """The smallest Holm-adjusted p-value of ``p`` (Holm's first step: Bonferroni on the minimum)."""
    return min(1.0, len(p) * min(p))


def combine(hypothesis: Hypothesis, evidence: Sequence[Evidence], n: int,
            controls: Mapping[str, bool] | None = None) -> Outcome:
    """Steps 1 to 3 of the rule (module docstring): controls, minimum n, and the predictions combined."""
    controls = dict(controls or {})
    missing = [c for c in hypothesis.controls if c not in controls]
    extra = [c for c in controls if c not in hypothesis.controls]
    if missing or extra:
        raise ValueError(f"controls must match the declared ones {list(hypothesis.controls)}: "
                         f"missing {missing}, undeclared {extra}")
    excluded = max((e.excluded for e in evidence), default=0)
    if n - excluded < hypothesis.min_n:  # first: a control cannot be judged on too few problems either
        after = f" after excluding {excluded} non-finite" if excluded else ""
        return Outcome(None, None, n, "inconclusive",
                       f"n below minimum ({n - excluded}{after} < {hypothesis.min_n})")
    failed = [c for c in hypothesis.controls if not controls[c]]
    if failed:
        return Outcome(None, None, n, "invalid", "failed control: " + ", ".join(failed))
    declared = [p.statistic for p in hypothesis.predictions]
    given = [e.statistic for e in evidence]
    if sorted(declared) != sorted(given):
        raise ValueError(f"evidence must cover the declared predictions {declared}, got {given}")
    sup = [e.p_support for e in evidence]
    ref = [e.p_refute for e in evidence]
    if hypothesis.combine == "all":
        ps, pr = max(sup), _holm_min(ref)
    else:
        ps, pr = _holm_min(sup), max(ref)
    notes = tuple(f"{e.statistic}: {e.reason}" for e in evidence if e.reason)
    return Outcome(ps, pr, n, raw=(ps, pr), notes=notes)


@lru_cache(maxsize=1024)
def adjusted_p_values(p_values: tuple[float, ...], correction: str = "holm") -> tuple[float, ...]:
    """``p_values`` adjusted for multiplicity with ``correction`` (statsmodels ``multipletests``: ``holm``
    or ``fdr_bh``). Cached: every member of a family asks for the same adjustment, and statsmodels' Holm
    runs a full garbage collection on each call (about 0.3 s in a process holding a model)."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return ()
    return tuple(float(x) for x in multipletests(list(p_values), method=correction)[1])


def adjust_family(outcomes: Mapping[str, Outcome], correction: str = "holm") -> dict[str, Outcome]:
    """Adjust the ``p_support`` and the ``p_refute`` of a family's members (those that tested) over
    the family, each with ``correction`` (:func:`adjusted_p_values`)."""
    tested = [k for k, o in outcomes.items() if o.verdict is None]
    out = dict(outcomes)
    if len(tested) < 2:
        return out
    adj = {}
    for which in ("p_support", "p_refute"):
        adj[which] = adjusted_p_values(tuple(float(getattr(outcomes[k], which)) for k in tested), correction)
    for i, k in enumerate(tested):
        o = outcomes[k]
        out[k] = Outcome(float(adj["p_support"][i]), float(adj["p_refute"][i]), o.n, raw=o.raw, notes=o.notes)
    return out


def decide(outcome: Outcome, *, family_size: int = 1, correction: str = "holm") -> Verdict:
    """Step 5: the verdict of one (family-adjusted) outcome."""
    fam = {"size": family_size, "correction": correction} if family_size > 1 else {}
    if outcome.verdict is not None:
        return Verdict(outcome.verdict, outcome.reason or outcome.verdict, family=fam)
    ps, pr = outcome.p_support, outcome.p_refute
    if ps < ALPHA:
        verdict, reason = "supported", f"p_support={ps:.3g} < {ALPHA}"
    elif pr < ALPHA:
        verdict, reason = "refuted", f"p_refute={pr:.3g} < {ALPHA}"
    else:
        verdict, reason = "inconclusive", f"neither test rejects (p_support={ps:.3g}, p_refute={pr:.3g})"
    if family_size > 1:
        reason += f" after {correction} over {family_size} family members"
    if outcome.notes:
        reason += "; " + "; ".join(outcome.notes)
    return Verdict(verdict, reason, ps, pr, fam)


def shown(evidence: Evidence) -> bool:
    """A control's effect is shown: its prediction is supported at ``ALPHA`` (a positive control passes
    only when the data show it, not when its point estimate merely points the right way)."""
    return evidence.p_support < ALPHA


def any_shown(evidence: Sequence[Evidence]) -> bool:
    """At least one of several alternative controls is shown (Holm over them: ``k · min p < ALPHA``)."""
    evidence = list(evidence)
    return bool(evidence) and _holm_min([e.p_support for e in evidence]) < ALPHA


def invariant_verdict(holds: bool) -> str:
    """An invariant is an exact check, not a test: it is supported when it holds and refuted when not."""
    return "supported" if holds else "refuted"


__all__ = ["ALPHA", "COMBINE", "CORRECTIONS", "DIRECTIONS", "EQUIVALENCE_MIN_N", "EQUIVALENCE_MIN_N_SOURCE",
           "Evidence", "Hypothesis", "MIN_N_SIGNIFICANCE", "MIN_N_SOURCE", "Outcome", "Prediction", "Verdict",
           "adjust_family", "adjusted_p_values", "any_shown", "combine", "decide", "invariant_verdict", "shown"]
