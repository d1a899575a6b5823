"""Claim-level calibration: each empirical claim's false-supported rate at its null boundary, measured
through the claim's own evidence function, prediction (statistic, direction, threshold), combination
and family, on synthetic per-problem data of several shapes.

Entry points:

- ``python -m codi_probe.calibration [--reps 200] [--budget SECONDS] [--out docs/calibration.md] [pytest args]`` runs the
  catalogue once on the default model with the evidence functions wrapped (:func:`capture`), so every
  claim's exact evidence calls are recorded (function, prediction, data, options such as the position
  index), then replays each claim at its null boundary (:func:`calibrate`) and writes the table;
  ``--power`` lists instead the claims whose recorded power (``Evidence.power``, when the statistics
  provide it) at the run's n is below 0.8 (:func:`low_power`);
- :func:`calibrate` on hand-built :class:`ClaimCase` s (the fast subset in
  ``tests/test_calibration.py``: IMP-01 and the KL-shaped "less" claims).

The null boundary, per kind of evidence function (every function is looked up by name in
:mod:`codi_probe.stats` / :mod:`codi_probe.extremes` at replay time, so a fix there is measured):

- ``proportion``: ``k ~ Binomial(n, threshold)`` (shape ``binomial``);
- ``paired_binary``: gained/lost problems with ``q01 − q10 = threshold`` (shapes ``rare``: 1% of
  problems discordant the other way, ``common``: 20%);
- ``mean``: per-problem values of shape ``normal``, ``skewed`` (lognormal(0, 1)), ``skewed-left``
  (its negative), ``heavy`` (t with 3 df), ``tied`` (Binomial(7, 0.15)/7: IMP-01-like rates), ``kl``
  (zero-inflated: half uniform(0, 1e-3), half lognormal(−1, 1.5)) and ``observed`` (the claim's own
  values, resampled), moved to mean = threshold: scaled when the shape is non-negative and the
  threshold > 0 (a KL stays a KL), shifted otherwise. Equivalence claims alternate ``±margin``;
  A claim that declares the support of its values (``mean_evidence(..., support=(lo, hi))``) gets
  data of that support instead: bounded, the shapes ``beta`` (beta(2u, 2(1 − u))), ``u-shaped``
  (beta(0.5u, 0.5(1 − u))), ``zero-inflated`` (half within 1e-3 of the near end, half beta(m, 1 − m):
  KL-like but bounded), ``tied``, ``binary`` and ``observed`` (the claim's values moved by an affine
  map that keeps them inside), at ``u = (threshold − lo) / (hi − lo)`` and mapped onto ``[lo, hi]``;
  one open end (``(0, inf)``, a KL): ``skewed``, ``tied``, ``kl`` and ``observed`` from the closed end;
- ``rows`` (``stats.rows_evidence`` and :mod:`codi_probe.extremes`): independent columns
  (``bernoulli`` for binary rows, ``binomial7`` for rates in [0, 1], ``observed``: the claim's rows
  resampled, each column shifted) whose population column means ``μ`` put the claim's population
  statistic exactly at the threshold. ``μ`` is found by a 1-D root search from the observed means
  (scaling their spread, then shifting one column); where none exists the row says so;
- ``spearman``: independent positions within each problem (threshold 0 only); ``page``: exchangeable
  binary columns.
- ``bootstrap_evidence`` with an arbitrary statistic of two paired 1-D samples (INTERP-02's Spearman): a
  Gaussian copula whose correlation puts the claim's own statistic of the population (a sample of 40,000
  pairs) at the threshold, with ``normal``, ``skewed`` (lognormal), ``heavy`` (t, 3 df) and ``tied`` (7
  levels) marginals; other samples (e.g. problem indices into closed-over data) are not constructed;
- ``scaled_binary`` (``extremes.scaled_binary_evidence``, PATCH-02's "moved > 10x the random control"):
  independent binary ``a``, ``b`` with ``P(a) − scale · P(b) = threshold`` (shapes ``rare``, ``common``,
  ``observed``: :func:`scaled_binary_at`);
- ``argmax_share`` (``experiments.patching.band_share_evidence``, LAY-01): per-pair recovery rows whose
  argmax layer (of the pooled recovery of n pairs) lands in the band with probability exactly the
  threshold (:class:`ArgmaxNull`; independent, correlated, heavy-tailed or the observed pairs' noise, or
  a single layer outside the band competing);
- ``centroid_cosine`` (``experiments.probes.centroid_cosine_evidence``, PROBE-03): two tasks' vectors whose
  population centroids have cosine exactly the threshold, their norms the unbiased estimates of the
  observed centroids' (:class:`CentroidNull`).

Evidence that decides nothing on the default model (both p-values 1 with a reason, made outside the wrapped
functions) is not replayed as itself: "supports nothing whatever the data" would report a rate of 0 without
calibrating the claim's real statistic. A surface baseline no probe can beat by its margin (OP-01/NEW-09) is
replaced by :func:`synthetic_case`'s construction; any other such prediction (no trained Activation Oracle,
OP-02) gets a row without a rate ("null boundary not constructed", with the reason).

A claim that does not run on the default model (PROBE-01/02: one outcome only), or whose baseline prediction
decides nothing on it (OP-01, NEW-09), is replayed from :func:`synthetic_case`: its own evidence function on
synthetic per-problem data, captured the same way (the table notes it).

A claim combining predictions with ``all`` (an intersection-union test) is at its least favourable
null when one prediction sits at its boundary and the others are true, so each prediction is replayed
alone and the claim's rate is the largest; ``any`` replays all of them at their boundaries and combines
them with :func:`~codi_probe.hypothesis.combine`. The rate reported and checked is the claim's own
(before its family); ``after family`` also adjusts by Holm with the other members clearly false
(Bonferroni by the family size). Members of one family with the same signature are replayed once.
A claim passes when its rate ≤ ``ALPHA + 3 SE`` (binomial SE of the nominal rate over the row's data sets).
Replays skip the exact Tango interval (:func:`verdict_only`: the verdict reads only p-values); the exact
tests at n = 500 still take about a second a call, so ``--budget`` caps a row's seconds (at least
:data:`MIN_REPS` data sets; the table's ``reps`` column is the count each row ran). The run writes, after
the table, the claims whose recorded power is below 0.8 (:func:`power_section`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import math
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from .hypothesis import ALPHA, Evidence, Hypothesis, Prediction, combine

MEAN_SHAPES = ("normal", "skewed", "skewed-left", "heavy", "tied", "kl", "observed")
# a mean whose claim declares a bounded support (``mean_evidence(..., support=(lo, hi))``): data of that support
BOUNDED_SHAPES = ("beta", "u-shaped", "zero-inflated", "tied", "binary", "observed")
# a support with one open end (a KL: ``(0, inf)``): the non-negative shapes, from the closed end
HALF_BOUNDED_SHAPES = ("skewed", "tied", "kl", "observed")
# the skew that makes a one-sided mean test anti-conservative is the one against the prediction: a long
# right tail for "less", a long left tail for "greater"; equivalence claims get both
_SKEW_AGAINST = {"less": ("skewed",), "greater": ("skewed-left",), "equivalent": ("skewed", "skewed-left")}
PAIRED_SHAPES = ("rare", "common")
_DEDICATED = ("bootstrap", "argmax_share", "centroid_cosine")  # kinds whose boundary_parameter is found per row
DEFAULT_REPS = 200
POWER_TARGET = 0.8

# evidence function name -> kind; the functions themselves are looked up at replay time
KINDS = {"stats.proportion_evidence": "proportion", "stats.paired_binary_evidence": "paired_binary",
         "stats.mean_evidence": "mean", "stats.rows_evidence": "rows", "stats.bootstrap_evidence": "bootstrap",
         "stats.permutation_spearman": "spearman", "stats.page_evidence": "page",
         "extremes.every_pair_evidence": "rows", "extremes.some_pair_evidence": "rows",
         "extremes.spread_evidence": "rows", "extremes.scaled_binary_evidence": "scaled_binary",
         "patching.band_share_evidence": "argmax_share", "probes.centroid_cosine_evidence": "centroid_cosine",
         "undecided": "undecided"}
# the shapes of the kinds with a dedicated construction (docstring)
SCALED_BINARY_SHAPES = ("rare", "common", "observed")
COPULA_SHAPES = ("normal", "skewed", "heavy", "tied")
ARGMAX_SHAPES = ("normal", "correlated", "heavy", "one-competitor", "observed")
CENTROID_SHAPES = ("normal", "heavy", "observed")


@dataclass
class Call:
    """One evidence call a claim makes: ``function`` (``"stats.mean_evidence"``), its ``prediction``,
    its data arrays (``args``, the prediction removed) and keyword options (``k``, ``scale``, ``fn``...)."""

    function: str
    prediction: Prediction
    args: tuple
    options: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return KINDS.get(self.function, "unknown")

    @property
    def n(self) -> int:
        if self.kind == "proportion":
            return int(self.args[1])
        if self.kind == "bootstrap":  # a tuple of samples, problems along axis 0
            return int(len(np.asarray(self.args[0][0])))
        if self.kind == "argmax_share":  # a LayerPatching
            return int(len(self.args[0].ld_clean))
        if self.kind == "undecided":
            return int(self.options["n"])
        return int(len(np.asarray(self.args[0])))


@dataclass
class ClaimCase:
    """One claim (family member) as the catalogue decided it: its id, hypothesis, calls and family size."""

    claim: str
    hypothesis: Hypothesis
    calls: list[Call]
    family_size: int = 1
    power: list[float | None] = field(default_factory=list)  # Evidence.power per call, when provided
    note: str = ""  # why there is nothing to replay (no evidence on this model, an unwrapped function)
    source: str = ""  # where the calls come from when not the default model's run (:func:`synthetic_case`)

    @property
    def base(self) -> str:
        return self.claim.split("[")[0]


@dataclass
class Row:
    """One line of the table."""

    claim: str
    statistic: str
    direction: str
    shape: str
    n: int
    reps: int
    rate: float | None  # claim-level false-supported rate (None: boundary not constructible)
    rate_family: float | None
    note: str = ""

    @property
    def se(self) -> float:
        return math.sqrt(ALPHA * (1 - ALPHA) / max(self.reps, 1))

    @property
    def passed(self) -> bool | None:
        return None if self.rate is None else self.rate <= ALPHA + 3 * self.se


# ---- capture: the catalogue's own evidence calls ------------------------------------------------------

_DATA = {"stats.proportion_evidence": ("k", "n"), "stats.paired_binary_evidence": ("before", "after"),
         "stats.mean_evidence": ("values",), "stats.rows_evidence": ("rows",),
         "stats.bootstrap_evidence": ("samples",), "stats.permutation_spearman": ("x", "y"),
         "stats.page_evidence": ("matrix",), "extremes.every_pair_evidence": ("rows",),
         "extremes.some_pair_evidence": ("rows",), "extremes.spread_evidence": ("rows",),
         "extremes.scaled_binary_evidence": ("a", "b"), "patching.band_share_evidence": ("result", "band"),
         "probes.centroid_cosine_evidence": ("a", "b")}
_AS_IS = {"stats.bootstrap_evidence", "patching.band_share_evidence"}  # data kept as passed (tuples, dataclasses)


def _modules() -> dict:
    """The modules whose evidence functions are wrapped and looked up at replay time, by prefix."""
    from . import extremes, stats
    from .experiments import patching, probes

    return {"stats": stats, "extremes": extremes, "patching": patching, "probes": probes}


_JOINED = {"extremes.all_of": "all", "extremes.any_of": "any"}


@contextlib.contextmanager
def capture() -> Iterator[list[ClaimCase]]:
    """Wrap the evidence functions of :mod:`codi_probe.stats` and :mod:`codi_probe.extremes` and the
    claim recorder's ``decide``: yields the list that fills with one :class:`ClaimCase` per decided
    claim. Evidence is matched to its call by object identity."""
    from . import extremes
    from .plugin.recorder import ClaimRecorder

    modules = _modules()
    made: dict[int, tuple[Evidence, Call]] = {}
    cases: list[ClaimCase] = []
    saved = []

    def wrap(module, qual: str):
        name = qual.split(".")[1]
        original = getattr(module, name)
        signature = inspect.signature(original)

        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            bound = dict(signature.bind(*args, **kwargs).arguments)
            pred = bound.pop("prediction")
            data = tuple(bound.pop(a) for a in _DATA[qual])
            data = tuple(d if isinstance(d, (int, np.integer)) or qual in _AS_IS else np.array(d, copy=True)
                         for d in data)
            made[id(out)] = (out, Call(qual, pred, data, bound))
            return out

        saved.append((module, name, original))
        setattr(module, name, wrapper)

    for qual in _DATA:
        wrap(modules[qual.split(".")[0]], qual)
    for how in ("all", "any"):  # a composite: its members' calls, joined by `how`
        def joined(evidence, prediction, value=None, _how=how, _original=getattr(extremes, f"{how}_of")):
            evidence = list(evidence)
            out = _original(evidence, prediction, value)
            members = [made.get(id(e), (None, None))[1] for e in evidence]
            if all(members):
                made[id(out)] = (out, Call(f"extremes.{_how}_of", prediction, tuple(members)))
            return out

        saved.append((extremes, f"{how}_of", getattr(extremes, f"{how}_of")))
        setattr(extremes, f"{how}_of", joined)
    decide = ClaimRecorder.decide

    def recording_decide(self, evidence=(), *, n, controls=None, family=None, member=None):
        ev = [evidence] if isinstance(evidence, Evidence) else list(evidence)
        calls = [made[id(e)][1] if id(e) in made and made[id(e)][0] is e else
                 _undecided_call(e, self._hypothesis) for e in ev]
        if self._hypothesis is not None:
            size = sum(o.verdict is None for o in family.values()) if family else 1
            note = ("no evidence on this model (did not test)" if not ev else "" if all(calls) else
                    "evidence not made by a wrapped function")
            hyp = self._hypothesis
            if not note and len(calls) == 1 and calls[0].function in _JOINED:
                members = list(calls[0].args)  # one composite prediction: replayed as its members, joined
                if any(m.function in _JOINED for m in members):
                    note = "nested all/any combination: null boundary not constructed"
                else:
                    hyp = Hypothesis(tuple(m.prediction for m in members), min_n=hyp.min_n,
                                     combine=_JOINED[calls[0].function])
                    calls = members
            cases.append(ClaimCase(self.id, hyp, [] if note else list(calls), max(size, 1),
                                   [getattr(e, "power", None) for e in ev], note))
        return decide(self, evidence, n=n, controls=controls, family=family, member=member)

    ClaimRecorder.decide = recording_decide
    try:
        yield cases
    finally:
        ClaimRecorder.decide = decide
        for module, name, original in saved:
            setattr(module, name, original)


def _undecided_call(evidence: Evidence, hypothesis: Hypothesis | None) -> Call | None:
    """Evidence that decides nothing (both p-values 1, with its reason: a baseline no probe can beat, no
    trained oracle shipped) made outside the wrapped functions: a call that replays as itself (it supports
    nothing, whatever the data); None for any other unwrapped evidence (the row says so)."""
    if not (evidence.p_support == 1.0 and evidence.p_refute == 1.0 and evidence.reason):
        return None
    preds = [p for p in (hypothesis.predictions if hypothesis else ()) if p.statistic == evidence.statistic]
    pred = preds[0] if preds else Prediction(evidence.statistic, "greater", 0.0)
    return Call("undecided", pred, (), {"reason": evidence.reason, "n": int(evidence.n)})


def capture_catalogue(pytest_args: Sequence[str] = ()) -> list[ClaimCase]:
    """Run ``pytest hypotheses`` in-process (``pytest_args`` appended) under :func:`capture`."""
    import pytest

    with capture() as cases:
        pytest.main(["hypotheses", "-q", "-p", "no:cacheprovider", *pytest_args])
    return cases


# claims whose probe-beats-a-surface-baseline predictions do not decide on the default model (the claim does not
# run, PROBE-01/02; its baseline reads the label perfectly, OP-01/NEW-09): their own evidence function on
# synthetic per-problem data (claim id -> catalogue module, hypothesis, floor, rows per problem, the indices of
# its baseline predictions); see :func:`synthetic_case`
SYNTHETIC = {"PROBE-01": ("test_probes", "PROBE01", "PROBE01_FLOOR", 1, (0,)),
             "PROBE-02": ("test_probes", "PROBE02", "PROBE02_FLOOR", 1, (0,)),
             "OP-01": ("test_probes", "OP01", "OP01_FLOOR", 1, tuple(range(6))),
             "NEW-09": ("test_probes", "NEW09", "NEW09_FLOOR", 6, (0,))}


def _baseline_call(claim: str, prediction: Prediction, floor: float, n: int, per_problem: int,
                   rng: np.random.Generator, seed: int) -> Call:
    """One ``beats_baseline_evidence`` call on synthetic probe outcomes (``n`` problems of ``per_problem`` rows,
    binary labels; the latent probe right 2 pp above ``floor``, the baseline probe at 0.6), captured as the
    catalogue run captures it."""
    from .experiments import probes
    from .plugin.recorder import ClaimRecorder
    from .plugin.records import ClaimRecord

    labels = rng.random(n * per_problem) < 0.5

    def result(accuracy: float):
        correct = rng.random(len(labels)) < accuracy
        return probes.ProbeResult(correct, labels, probes._balanced(correct, labels), 1.0)

    with capture() as cases:
        ev = probes.beats_baseline_evidence(result(min(0.99, floor + 0.02)), result(0.6), floor, prediction, seed,
                                            per_problem=per_problem)
        record = ClaimRecord(id=claim, base_id=claim, kind="empirical", statement=claim)
        ClaimRecorder(record, Hypothesis((prediction,), min_n=1)).decide([ev], n=n)
    return cases[0].calls[0]


def synthetic_case(claim: str, n: int = 100, seed: int = 0, captured: ClaimCase | None = None) -> ClaimCase:
    """A :class:`ClaimCase` for a claim of :data:`SYNTHETIC` (a probe that beats its surface baseline) whose
    baseline predictions cannot be replayed from the default model: each baseline prediction that did not run
    or was ``captured`` as deciding nothing is a :func:`codi_probe.experiments.probes.beats_baseline_evidence`
    call with the claim's floor and prediction on synthetic per-problem probe outcomes (:func:`_baseline_call`);
    the claim's other captured calls are kept (another prediction that did not run gets a row without a rate).
    The replay then puts that statistic at its threshold (``rows``). ``n``: the captured claim's n, else this;
    at least the claim's minimum."""
    module, name, floor, per_problem, baseline = SYNTHETIC[claim.split("[")[0]]
    mod = catalogue_module(module)
    hyp, floor = getattr(mod, name), float(getattr(mod, floor))
    calls = captured.calls if captured is not None and captured.calls else [
        Call("undecided", p, (), {"n": n, "reason": "the claim did not run on the default model"})
        for p in hyp.predictions]
    n = max(calls[0].n, hyp.min_n)
    rng = np.random.default_rng(seed)
    calls = [_baseline_call(claim, c.prediction, floor, n, per_problem, rng, seed)
             if c.kind == "undecided" and i in baseline else c for i, c in enumerate(calls)]
    size, power = (captured.family_size, captured.power) if captured is not None else (1, [])
    return ClaimCase(claim, hyp, calls, size, power, source=(  # the power of the model's own run, if any
        "synthetic per-problem probe outcomes for the baseline prediction(s) (they decide nothing on the default "
        "model)"))


def catalogue_module(name: str):
    """The catalogue module ``name`` (``"test_importance"``) of this checkout, for hand-built cases:
    ``hypotheses/`` beside the package (a source checkout) or ``codi_probe/hypotheses`` (installed).
    Loaded from its file: in an editable install ``codi_probe.hypotheses`` may name another checkout."""
    import importlib.util
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for folder in (here.parent / "hypotheses", here / "hypotheses"):
        path = folder / f"{name}.py"
        if path.is_file():
            spec = importlib.util.spec_from_file_location(f"_codi_catalogue_{name}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise FileNotFoundError(f"no catalogue module {name!r} beside {here}")


# ---- synthetic data at the null boundary --------------------------------------------------------------

def _boundaries(prediction: Prediction) -> tuple[float, ...]:
    t = float(prediction.threshold)
    return (-t, t) if prediction.direction == "equivalent" else (t,)


def _mean_sample(shape: str, n: int, rng: np.random.Generator, observed: np.ndarray | None) -> tuple[np.ndarray, float, bool]:
    """``(values, population mean, non-negative)`` of one shape."""
    if shape == "normal":
        return rng.normal(0, 1, n), 0.0, False
    if shape == "skewed":
        return rng.lognormal(0, 1, n), math.exp(0.5), True
    if shape == "skewed-left":
        return -rng.lognormal(0, 1, n), -math.exp(0.5), False
    if shape == "heavy":
        return rng.standard_t(3, n), 0.0, False
    if shape == "tied":
        return rng.binomial(7, 0.15, n) / 7, 0.15, True
    if shape == "kl":
        zero = rng.random(n) < 0.5
        return (np.where(zero, rng.uniform(0, 1e-3, n), rng.lognormal(-1, 1.5, n)),
                0.5 * 5e-4 + 0.5 * math.exp(-1 + 1.5 ** 2 / 2), True)
    if shape == "observed" and observed is not None:
        obs = np.asarray(observed, dtype=float)
        obs = obs[np.isfinite(obs)]
        return rng.choice(obs, n), float(obs.mean()), bool(np.all(obs >= 0))
    raise ValueError(f"unknown or unavailable mean shape {shape!r}")


def _bounded_sample(shape: str, n: int, u: float, rng: np.random.Generator, observed: np.ndarray | None) -> np.ndarray:
    """``n`` values in [0, 1] of a bounded ``shape`` with population mean ``u`` (0 < u < 1)."""
    if shape == "beta":  # skewed when u is far from 1/2
        return rng.beta(2 * u, 2 * (1 - u), n)
    if shape == "u-shaped":  # most mass at the ends: nearly binary, with values between
        return rng.beta(0.5 * u, 0.5 * (1 - u), n)
    if shape == "zero-inflated":  # half at the near end (within 1e-3), half beta(m, 1 - m): KL-like, bounded
        if u > 0.5:
            return 1 - _bounded_sample(shape, n, 1 - u, rng, None)
        if u <= 5e-4:  # too small for the two halves: uniform below 2u
            return rng.uniform(0, 2 * u, n)
        m = 2 * u - 5e-4  # the halves' means 5e-4 and m average to u
        return np.where(rng.random(n) < 0.5, rng.uniform(0, 1e-3, n), rng.beta(m, 1 - m, n))
    if shape == "tied":
        return rng.binomial(7, u, n) / 7
    if shape == "binary":
        return (rng.random(n) < u).astype(float)
    if shape == "observed" and observed is not None:  # the claim's values, moved to mean u by an affine map into [0, 1]
        y = np.clip(rng.choice(np.asarray(observed, dtype=float), n), 0, 1)
        mu = float(np.clip(np.mean(observed), 1e-12, 1 - 1e-12))
        return y * (u / mu) if u <= mu else 1 - (1 - y) * ((1 - u) / (1 - mu))
    raise ValueError(f"unknown or unavailable bounded shape {shape!r}")


def mean_at(shape: str, n: int, target: float, rng: np.random.Generator,
            observed: np.ndarray | None = None, support: tuple[float, float] | None = None) -> np.ndarray:
    """``n`` values of ``shape`` with population mean ``target``. Without a finite ``support``: scaled
    when the shape is non-negative and ``target > 0``, else shifted (a one-sided support ``(lo, inf)``:
    the non-negative shape moved by ``lo`` and scaled). With a bounded support ``(lo, hi)``: a
    :data:`BOUNDED_SHAPES` sample in [0, 1] at ``(target − lo) / (hi − lo)``, mapped onto it."""
    lo, hi = support if support is not None else (-math.inf, math.inf)
    if math.isfinite(lo) and math.isfinite(hi):
        u = (target - lo) / (hi - lo)
        if not 0 < u < 1:  # the boundary is the support's end: every value sits there
            return np.full(n, min(max(target, lo), hi))
        obs = None if observed is None else (np.asarray(observed, dtype=float) - lo) / (hi - lo)
        return lo + (hi - lo) * _bounded_sample(shape, n, u, rng, obs if obs is None else obs[np.isfinite(obs)])
    if math.isfinite(lo) or math.isfinite(hi):  # one open end: the non-negative shape from the closed end
        sign = 1.0 if math.isfinite(lo) else -1.0
        end = lo if math.isfinite(lo) else hi
        obs = None if observed is None else sign * (np.asarray(observed, dtype=float) - end)
        return end + sign * mean_at(shape, n, sign * (target - end), rng, obs)
    x, mu, nonneg = _mean_sample(shape, n, rng, observed)
    if nonneg and target > 0 and mu > 0:
        return x * (target / mu)
    return x - mu + target


def paired_at(shape: str, n: int, delta: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(before, after)`` booleans with ``P(gained) − P(lost) = delta``."""
    base = min(0.01 if shape == "rare" else 0.2, (1 - abs(delta)) / 2)  # a large difference leaves less room
    q10 = base + max(0.0, -delta)
    q01 = q10 + delta
    if q01 + q10 > 1:
        raise ValueError(f"no paired outcome has difference {delta}")
    u = rng.random(n)
    gained, lost = u < q01, (u >= q01) & (u < q01 + q10)
    both = rng.random(n) < 0.5
    before = np.where(gained, False, np.where(lost, True, both))
    after = np.where(gained, True, np.where(lost, False, both))
    return before, after


def population_statistic(call: Call) -> Callable[[np.ndarray], float]:
    """The statistic a rows-kind call tests, as a function of population column means ``μ[k]``."""
    from . import extremes

    o = call.options
    if call.function == "stats.rows_evidence":
        return lambda mu: float(o["fn"](np.asarray(mu, dtype=float)))
    if call.function == "extremes.every_pair_evidence":
        return lambda mu: extremes.every_pair_population(mu, o["k"], o.get("others"), o.get("scale", 1.0))
    if call.function == "extremes.some_pair_evidence":
        return lambda mu: extremes.some_pair_population(mu, o["k"], o.get("others"), o.get("scale", 1.0))
    if call.function == "extremes.spread_evidence":
        return lambda mu: float(np.max(mu) - np.min(mu))
    raise ValueError(f"{call.function} has no population statistic")


def boundary_means(stat: Callable[[np.ndarray], float], start: np.ndarray, target: float,
                   bounded: bool) -> np.ndarray | None:
    """Column means ``μ`` near ``start`` with ``stat(μ) = target``: first ``c + λ (start − c)`` (``c``
    the mean of ``start``; the spread scaled), else ``start + s e_j`` for one column ``j``; within
    [0, 1] when ``bounded``. ``None`` when neither path crosses the target."""
    start = np.asarray(start, dtype=float)
    c = float(start.mean())
    ok = (lambda mu: bool(np.all(mu >= 0) and np.all(mu <= 1))) if bounded else (lambda mu: True)
    paths = [lambda s: c + s * (start - c)]
    for j in range(len(start)):
        paths.append(lambda s, j=j: start + s * np.eye(len(start))[j])
    for path in paths:
        grid = [s for s in np.linspace(-4, 4, 321) if ok(path(s))]
        g = [stat(path(s)) - target for s in grid]
        for i in range(len(grid) - 1):
            if g[i] == 0:
                return path(grid[i])
            if g[i] * g[i + 1] < 0:
                s = optimize.brentq(lambda s: stat(path(s)) - target, grid[i], grid[i + 1], xtol=1e-12)
                return path(s)
    return None


def rows_shapes(call: Call) -> tuple[str, ...]:
    rows = np.asarray(call.args[0], dtype=float)
    if np.all((rows == 0) | (rows == 1)):
        return ("bernoulli",)
    if np.all((rows >= 0) & (rows <= 1)):
        return ("binomial7", "observed")
    return ("observed",)


def rows_at(shape: str, n: int, mu: np.ndarray, rng: np.random.Generator,
            observed: np.ndarray | None) -> np.ndarray:
    """``[n, k]`` independent columns with population means ``mu``."""
    if shape == "bernoulli":
        return (rng.random((n, len(mu))) < mu).astype(float)
    if shape == "binomial7":
        return rng.binomial(7, np.clip(mu, 0, 1), (n, len(mu))) / 7
    obs = np.asarray(observed, dtype=float)
    cols = np.stack([rng.choice(obs[:, j], n) for j in range(obs.shape[1])], 1)  # independent columns
    return cols - obs.mean(0) + mu


def shapes_of(call: Call) -> tuple[str, ...]:
    kind = call.kind
    if kind == "proportion":
        return ("binomial",)
    if kind == "paired_binary":
        return PAIRED_SHAPES
    if kind == "mean":
        lo, hi = _support(call)
        if math.isfinite(lo) and math.isfinite(hi):
            return BOUNDED_SHAPES
        if math.isfinite(lo) or math.isfinite(hi):
            return HALF_BOUNDED_SHAPES
        return tuple(sh for sh in MEAN_SHAPES if not sh.startswith("skewed") or sh in _SKEW_AGAINST[
            call.prediction.direction])
    if kind == "rows":
        return rows_shapes(call)
    if kind in ("spearman", "page"):
        return ("independent",)
    if kind == "scaled_binary":
        return SCALED_BINARY_SHAPES
    if kind == "bootstrap" and _copula_call(call):
        return COPULA_SHAPES
    if kind == "argmax_share":
        return ARGMAX_SHAPES
    if kind == "centroid_cosine":
        return CENTROID_SHAPES
    if kind == "undecided":
        return ("any",)
    return ("not constructed",)


def _support(call: Call) -> tuple[float, float]:
    """The support the claim declared for its per-problem values (``support=``), else the real line."""
    support = call.options.get("support")
    return (-math.inf, math.inf) if support is None else (float(support[0]), float(support[1]))


def _declared(call: Call) -> dict:
    """The options a replay passes on to the evidence function (the declared support)."""
    return {"support": call.options["support"]} if call.options.get("support") is not None else {}


def _kind_boundary(call: Call, bounded: bool):
    if call.kind != "rows":
        return None
    rows = np.asarray(call.args[0], dtype=float)
    return boundary_means(population_statistic(call), rows.mean(0), float(call.prediction.threshold), bounded)


# ---- dedicated constructions: scaled binary shares, a bootstrap statistic of paired samples, LAY-01's argmax
# share, PROBE-03's centroid cosine -------------------------------------------------------------------------

def scaled_binary_at(shape: str, n: int, call: Call, target: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Independent binary ``a``, ``b`` with ``P(a) − scale · P(b) = target``: ``P(a)`` 0.1 (``rare``), 0.5
    (``common``) or, ``observed``, ``P(b)`` the claim's own share of ``b`` (else ``P(a)`` its share of ``a``)."""
    s = float(call.options.get("scale", 1.0))
    if shape == "observed":
        pb = float(np.mean(call.args[1]))
        pa = target + s * pb
        if not 0 <= pa <= 1:
            pa = float(np.mean(call.args[0]))
            pb = (pa - target) / s
    else:
        pa = 0.1 if shape == "rare" else 0.5
        pb = (pa - target) / s
    if not (0 <= pa <= 1 and 0 <= pb <= 1):
        raise ValueError(f"no shares with P(a) - {s:g} P(b) = {target:g} on shape {shape!r}")
    return rng.random(n) < pa, rng.random(n) < pb


_MARGINALS = {"normal": lambda z: z, "skewed": np.exp, "heavy": lambda z: _t3(z),
              "tied": lambda z: np.digitize(z, np.linspace(-1.5, 1.5, 6)).astype(float)}


def _t3(z: np.ndarray) -> np.ndarray:
    from scipy import stats as sps

    return sps.t.ppf(sps.norm.cdf(z), 3)


def copula_pairs(shape: str, z: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Paired samples from a Gaussian copula with correlation ``r`` (``z[2, n]`` standard normals) and the
    marginals of ``shape`` (``normal``, ``skewed``: lognormal, ``heavy``: t with 3 df, ``tied``: 7 levels)."""
    m = _MARGINALS[shape]
    return m(z[0]), m(r * z[0] + np.sqrt(1 - r * r) * z[1])


def _copula_call(call: Call) -> bool:
    """A bootstrap call whose samples are two 1-D arrays of one length (the copula construction applies)."""
    samples = call.args[0]
    return (len(samples) == 2 and all(np.ndim(x) == 1 for x in samples)
            and len(samples[0]) == len(samples[1]) and len(samples[0]) > 1)


def _statistic_of(call: Call, x: np.ndarray, y: np.ndarray) -> float:
    st = call.options["statistic"]
    return float(st(x, y, axis=-1) if call.options.get("vectorized") else st(x, y))


def copula_boundary(call: Call, shape: str, big: int = 40_000) -> float:
    """The copula correlation ``r`` at which the claim's own statistic (``call.options["statistic"]``) of the
    population (a sample of ``big`` pairs, common random numbers) equals the threshold."""
    z = np.random.default_rng(12345).standard_normal((2, big))
    t = float(call.prediction.threshold)
    if call.prediction.direction == "equivalent":
        raise ValueError("an equivalence of a bootstrap statistic has no copula construction")
    g = lambda r: _statistic_of(call, *copula_pairs(shape, z, r)) - t
    grid = np.linspace(-0.995, 0.995, 41)
    vals = [g(r) for r in grid]
    for i in range(len(grid) - 1):
        if vals[i] == 0:
            return float(grid[i])
        if vals[i] * vals[i + 1] < 0:
            return float(optimize.brentq(g, grid[i], grid[i + 1], xtol=1e-6))
    raise ValueError(f"no copula correlation puts the statistic at {t:g}")


def _layer_noise(shape: str, size: tuple, rng: np.random.Generator) -> np.ndarray:
    """Per-pair recovery noise ``[..., n, L]``: independent layers, a shared factor (``correlated``: 0.7 of
    the variance), or t with 3 df (``heavy``); unit variance."""
    if shape == "normal":
        return rng.standard_normal(size)
    if shape == "correlated":
        return np.sqrt(0.7) * rng.standard_normal((*size[:-1], 1)) + np.sqrt(0.3) * rng.standard_normal(size)
    if shape == "heavy":
        return rng.standard_t(3, size) / np.sqrt(3)
    raise ValueError(f"unknown layer-noise shape {shape!r}")


class ArgmaxNull:
    """LAY-01's null boundary: per-pair recovery rows ``u[n, L]`` (gap 1 per pair, or the observed pairs'
    gaps) whose population puts the argmax layer of the pooled recovery of ``n`` pairs in the band with
    probability exactly the threshold (0.8): the band's layers raised by ``delta`` over a base profile (0, or
    the observed profile with the band at the best layer outside it), ``delta`` found by a root search over
    Monte-Carlo estimates of that probability (:data:`ARGMAX_DRAWS` data sets, common random numbers).
    ``one-competitor``: normal noise, and a single layer outside the band competes (base 0); every other
    layer outside it lies :data:`FAR_BELOW` noise sds below (never the peak). A review measured this shape
    nearer the least favourable than every outside layer competing (3.2% at 528 data sets)."""

    def __init__(self, call: Call, shape: str, n: int):
        result, band = call.args
        self.shape, self.n, self.band = shape, n, list(band)
        u = np.asarray(result.ld_patched - result.ld_corrupted[:, None], dtype=float)
        gap = np.asarray(result.ld_clean - result.ld_corrupted, dtype=float)
        self.layers = list(result.layers)
        self.L = u.shape[1]
        self.inside = np.zeros(self.L, dtype=bool)
        self.inside[self.band] = True
        if self.inside.all():
            raise ValueError("every layer is in the band")
        if shape == "observed":
            keep = np.all(np.isfinite(u), 1) & np.isfinite(gap)
            u, gap = u[keep], gap[keep]
            if len(u) < 2 or gap.mean() <= 0:
                raise ValueError("the observed pairs have no positive mean clean - corrupted gap")
            self.noise, self.gap = u - u.mean(0), gap
            base = u.mean(0)
            base[self.inside] = base[~self.inside].max()
            self.scale = float(np.sqrt(np.mean(self.noise.var(0))))
        else:
            self.noise, self.gap, base, self.scale = None, None, np.zeros(self.L), 1.0
            if shape == "one-competitor":
                base[~self.inside] = -FAR_BELOW
                base[np.flatnonzero(~self.inside)[0]] = 0.0
        self.base = base
        self.delta = self._search(float(call.prediction.threshold))

    def mu(self, delta: float) -> np.ndarray:
        return self.base + delta * self.inside

    def draw(self, rng: np.random.Generator, size: tuple = ()) -> tuple[np.ndarray, np.ndarray]:
        """``(u[..., n, L] − mu, gap[..., n])`` of fresh data sets."""
        if self.shape == "observed":
            idx = rng.integers(0, len(self.noise), (*size, self.n))
            return self.noise[idx], self.gap[idx]
        noise = "normal" if self.shape == "one-competitor" else self.shape
        return _layer_noise(noise, (*size, self.n, self.L), rng), np.ones((*size, self.n))

    def _search(self, target: float) -> float:
        noise, gap = self.draw(np.random.default_rng(54321), (ARGMAX_DRAWS,))
        total, gsum = noise.sum(1), gap.sum(1)[:, None]

        def share(delta: float) -> float:
            pooled = (total + self.n * self.mu(delta)) / gsum
            return float(self.inside[np.argmax(pooled, 1)].mean()) - target

        hi = 4.0 * self.scale / np.sqrt(self.n)
        while share(hi) <= 0 and hi < 1e3 * self.scale:
            hi *= 2
        if share(0.0) >= 0 or share(hi) <= 0:
            raise ValueError(f"no band raise puts the argmax in the band with probability {target:g}")
        return float(optimize.brentq(share, 0.0, hi, xtol=1e-4 * self.scale / np.sqrt(self.n)))

    def result(self, rng: np.random.Generator):
        from .experiments.patching import LayerPatching

        noise, gap = self.draw(rng)
        u = noise + self.mu(self.delta)
        return LayerPatching(self.layers, np.zeros_like(u), gap, np.zeros(self.n), u)


ARGMAX_DRAWS = 4000
FAR_BELOW = 100.0  # noise sds below the competitor: the other outside layers of ``one-competitor`` never peak


class CentroidNull:
    """PROBE-03's null boundary: two tasks' per-problem vectors ``μ_a + noise``, ``μ_b + noise`` whose population
    centroids have cosine exactly the threshold. ``μ_a`` points along the observed centroid of ``a``, ``μ_b``
    along the observed centroid of ``b`` turned within their plane to that angle; their norms are the unbiased
    estimates of the true centroids' norms, ``|ā|² − tr Σ̂ / n`` (the observed norms carry the noise, which
    would make the null's signal larger than the data's and the null too easy). Noise: the observed centred
    rows resampled (``observed``), or isotropic normal / t with 3 df of the observed mean variance per
    dimension. ``ValueError`` when a centroid's estimated norm is not positive (no boundary to build)."""

    def __init__(self, call: Call, shape: str):
        a, b = (np.asarray(x, dtype=float) for x in call.args)
        keep = np.isfinite(a).all(1) & np.isfinite(b).all(1)
        a, b = a[keep], b[keep]
        ca, cb = a.mean(0), b.mean(0)
        norms = [float(c @ c - x.var(0, ddof=1).sum() / len(x)) for c, x in ((ca, a), (cb, b))]
        if min(norms) <= 0:
            raise ValueError(f"{call.function}: a centroid's estimated squared norm is not positive ({min(norms):.3g}); "
                             "no null boundary to build")
        t = float(call.prediction.threshold)
        ea = ca / np.linalg.norm(ca)
        perp = cb - (cb @ ea) * ea
        if np.linalg.norm(perp) < 1e-12 * np.linalg.norm(cb):
            perp = np.random.default_rng(0).standard_normal(ca.shape)
            perp -= (perp @ ea) * ea
        ep = perp / np.linalg.norm(perp)
        self.mu_a, self.mu_b = np.sqrt(norms[0]) * ea, np.sqrt(norms[1]) * (t * ea + np.sqrt(max(0.0, 1 - t * t)) * ep)
        self.na, self.nb = a - ca, b - cb
        self.sd = float(np.sqrt(np.mean(np.concatenate([self.na, self.nb]).var(0))))
        self.shape = shape

    def draw(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        d = self.mu_a.shape[0]
        if self.shape == "observed":
            na, nb = self.na[rng.integers(0, len(self.na), n)], self.nb[rng.integers(0, len(self.nb), n)]
        elif self.shape == "normal":
            na, nb = self.sd * rng.standard_normal((2, n, d))
        elif self.shape == "heavy":
            na, nb = self.sd * rng.standard_t(3, (2, n, d)) / np.sqrt(3)
        else:
            raise ValueError(f"unknown centroid shape {self.shape!r}")
        return self.mu_a + na, self.mu_b + nb


def boundary_parameter(call: Call, shape: str):
    """What a replay of ``call`` on ``shape`` needs to sit at the null boundary, found once per row: the column
    means (``rows``), the copula correlation (a bootstrap statistic), the :class:`ArgmaxNull` or
    :class:`CentroidNull`; None for the kinds that need nothing. ``ValueError`` when none exists."""
    kind = call.kind
    if kind == "bootstrap":
        if not _copula_call(call):
            raise ValueError(f"{call.function}: null boundary not constructed (samples are not two 1-D arrays)")
        return copula_boundary(call, shape)
    if kind == "argmax_share":
        return ArgmaxNull(call, shape, call.n)
    if kind == "centroid_cosine":
        return CentroidNull(call, shape)
    return None


def simulate_call(call: Call, shape: str, n: int, rng: np.random.Generator, target: float, *, seed: int,
                  mu=None) -> Evidence:
    """One replay of ``call`` on fresh data of ``shape`` at the boundary ``target`` (``mu``: its
    :func:`boundary_parameter`, or the column means of a rows call)."""
    module, name = call.function.split(".")
    fn = getattr(_modules()[module], name)  # by reference: fixes there are measured
    pred = call.prediction
    kind = call.kind
    if kind == "proportion":
        return fn(int(rng.binomial(n, min(max(target, 0.0), 1.0))), n, pred)
    if kind == "paired_binary":
        before, after = paired_at(shape, n, target, rng)
        return fn(before, after, pred)
    if kind == "mean":
        return fn(mean_at(shape, n, target, rng, call.args[0] if shape == "observed" else None,
                          call.options.get("support")), pred, seed=seed, **_declared(call))
    if kind == "rows":
        rows = rows_at(shape, n, mu, rng, call.args[0])
        if call.function == "stats.rows_evidence":
            return fn(rows, call.options["fn"], pred, seed=seed, **_declared(call))
        if call.function == "extremes.spread_evidence":
            return fn(rows, pred, seed=seed)
        opts = {k: v for k, v in call.options.items() if k in ("others", "scale")}
        return fn(rows, call.options["k"], pred, seed=seed, **opts)
    if kind == "scaled_binary":
        a, b = scaled_binary_at(shape, n, call, target, rng)
        return fn(a, b, pred, float(call.options.get("scale", 1.0)))
    if kind == "bootstrap":
        x, y = copula_pairs(shape, rng.standard_normal((2, n)), mu)
        return fn((x, y), call.options["statistic"], pred, vectorized=bool(call.options.get("vectorized")), seed=seed)
    if kind == "argmax_share":
        opts = {k: v for k, v in call.options.items() if k == "resamples"}
        return fn(mu.result(rng), mu.band, pred, seed=seed, **opts)
    if kind == "centroid_cosine":
        return fn(*mu.draw(n, rng), pred, seed=seed)
    if kind == "spearman":
        k = np.asarray(call.args[0]).shape[1]
        return fn(rng.integers(0, 3, (n, k)), rng.integers(0, 3, (n, k)), pred, seed=seed)
    if kind == "page":
        k = np.asarray(call.args[0]).shape[1]
        return fn((rng.random((n, k)) < 0.3).astype(int), pred)
    raise ValueError(f"{call.function}: no null boundary constructed")


def _supported(ps: float, family_size: int) -> tuple[bool, bool]:
    return ps < ALPHA, min(1.0, ps * family_size) < ALPHA


@contextlib.contextmanager
def verdict_only() -> Iterator[None]:
    """Replays skip the exact Tango interval (``paired_binary._bound``: 17 s a call at n = 500 on a shared
    core, 10x the test's own p-values). A verdict reads only the p-values (``combine`` / ``decide``), so the
    rate measured is the claim's own; the interval, the test's inversion, is checked against the test in
    tests/test_paired_binary.py."""
    from . import paired_binary

    original = paired_binary._bound
    paired_binary._bound = lambda *args, **kwargs: float("nan")
    try:
        yield
    finally:
        paired_binary._bound = original


def replay(case: ClaimCase, calls: Sequence[Call], shape: str, reps: int, seed: int = 0,
           progress: Callable[[], None] | None = None, budget_s: float | None = None) -> Row:
    """The false-supported rate of ``calls`` (all of an ``any`` claim, or one prediction of an ``all``
    claim) at their null boundaries, on ``shape``, over ``reps`` data sets (``budget_s``: stop once
    that many seconds have passed and at least :data:`MIN_REPS` data sets are done; the row records
    the data sets it ran, and its SE is theirs)."""
    with verdict_only():
        return _replay(case, calls, shape, reps, seed, progress, budget_s)


MIN_REPS = 20


def _replay(case, calls, shape, reps, seed, progress, budget_s) -> Row:
    try:
        return _replay_rows(case, calls, shape, reps, seed, progress, budget_s)
    except ValueError as err:  # a boundary the shapes cannot reach: the row says so, the run goes on
        first = calls[0]
        return Row(case.claim, first.prediction.statistic, first.prediction.direction, shape, first.n, 0, None, None,
                   f"null boundary not constructed: {err}")


def _replay_rows(case, calls, shape, reps, seed, progress, budget_s) -> Row:
    first = calls[0]
    n = max(first.n, case.hypothesis.min_n)
    note = ""
    mus = []
    for c in calls:
        bounded = shape in ("bernoulli", "binomial7")
        mu = _kind_boundary(c, bounded) if c.kind == "rows" else None
        if c.kind == "rows" and mu is None:
            return Row(case.claim, first.prediction.statistic, first.prediction.direction, shape, n, reps, None,
                       None, "no column means put the statistic at the threshold")
        if c.kind == "unknown" or (c.kind == "bootstrap" and not _copula_call(c)):
            return Row(case.claim, first.prediction.statistic, first.prediction.direction, shape, n, reps, None,
                       None, f"{c.function}: null boundary not constructed")
        if c.kind == "undecided":  # supports nothing whatever the data: a rate of 0 would calibrate nothing
            return Row(case.claim, first.prediction.statistic, first.prediction.direction, shape, n, 0, None, None,
                       f"null boundary not constructed: it decides nothing on this model ({c.options['reason']})")
        if c.kind == "spearman" and c.prediction.threshold != 0:
            return Row(case.claim, first.prediction.statistic, first.prediction.direction, shape, n, reps, None,
                       None, "permutation test only at threshold 0")
        mus.append(mu)
    for i, c in enumerate(calls):
        if c.kind in _DEDICATED:
            mus[i] = boundary_parameter(c, shape if shape in shapes_of(c) else shapes_of(c)[0])
    hits = hits_family = 0
    rng = np.random.default_rng(seed)
    t0 = time.time()
    done = 0
    for r in range(reps):
        if budget_s is not None and r >= MIN_REPS and time.time() - t0 > budget_s:
            break
        done = r + 1
        evs = []
        for c, mu in zip(calls, mus):
            b = _boundaries(c.prediction)
            target = b[r % len(b)]
            shape_c = shape if shape in shapes_of(c) else shapes_of(c)[0]
            evs.append(simulate_call(c, shape_c, n, rng, target, seed=seed + r, mu=mu))
        if len(evs) == 1:
            ps = evs[0].p_support
        else:
            hyp = Hypothesis(tuple(c.prediction for c in calls), min_n=1, combine=case.hypothesis.combine)
            ps = combine(hyp, evs, n).p_support
        a, b_ = _supported(float(ps), case.family_size)
        hits, hits_family = hits + a, hits_family + b_
        if progress:
            progress()
    if first.kind == "rows":
        note = "columns independent, means " + ", ".join(f"{m:.3g}" for m in mus[0])
    elif first.kind == "bootstrap":
        note = f"Gaussian copula, correlation {mus[0]:.4g}"
    elif first.kind == "argmax_share":
        note = f"band raised by {mus[0].delta:.4g} ({mus[0].shape} noise sd {mus[0].scale:.3g}), n = {n}"
    return Row(case.claim, first.prediction.statistic if len(calls) == 1 else " ANY ".join(
        c.prediction.statistic for c in calls), first.prediction.direction, shape, n, done, hits / done,
        hits_family / done, note)


def units(case: ClaimCase) -> list[list[Call]]:
    """What is replayed for one claim: each prediction alone (``all``) or all together (``any``)."""
    if not case.calls:
        return []
    return [[c] for c in case.calls] if case.hypothesis.combine == "all" else [list(case.calls)]


def _signature(case: ClaimCase, calls: Sequence[Call], shape: str) -> tuple:
    def one(c: Call) -> tuple:
        key = (c.function, c.prediction.direction, float(c.prediction.threshold), c.n,
               tuple(sorted((k, repr(v)) for k, v in c.options.items() if k not in ("fn", "seed", "resamples"))))
        if c.kind in _DEDICATED:  # their data (a tuple, a dataclass) set the boundary: one row per claim
            return key + (case.claim, c.prediction.statistic)
        if c.kind == "rows" or shape == "observed":  # the data set the boundary or the shape
            key += (case.base, hashlib.sha1(np.ascontiguousarray(np.asarray(c.args[0], dtype=float))
                                            .tobytes()).hexdigest() if c.kind != "rows" else c.prediction.statistic)
        return key
    return (case.hypothesis.combine, case.family_size, case.hypothesis.min_n, shape, tuple(one(c) for c in calls))


def calibrate(cases: Sequence[ClaimCase], *, reps: int = DEFAULT_REPS, seed: int = 0, shapes: Sequence[str] | None = None,
              log: Callable[[str], None] | None = None, budget_s: float | None = None) -> list[Row]:
    """Every case's rows (one per replayed unit and shape). Units with the same signature (function,
    direction, threshold, n, options, combination, family size; the data for row statistics and the
    ``observed`` shape) are replayed once and their row is repeated under each claim id; for a row
    statistic, members of one family (``IMP-01[P0..P6]``) that differ only in their data share the
    first member's row."""
    done: dict[tuple, Row] = {}
    out: list[Row] = []
    seen_family: set[tuple] = set()
    for case in cases:
        if not case.calls:
            p = case.hypothesis.predictions[0]
            out.append(Row(case.claim, p.statistic, p.direction, "-", 0, 0, None, None, case.note or "no calls"))
        for unit in units(case):
            fam_key = (case.base, tuple((c.function, c.prediction.statistic) for c in unit))
            if any(c.kind == "rows" for c in unit) and case.base != case.claim:
                if fam_key in seen_family:
                    continue
                seen_family.add(fam_key)
            for shape in shapes_of(unit[0]):
                if shapes is not None and shape not in shapes:
                    continue
                key = _signature(case, unit, shape)
                if key not in done:
                    t0 = time.time()
                    done[key] = replay(case, unit, shape, reps, seed, budget_s=budget_s)
                    if log:
                        r = done[key]
                        log(f"{case.claim} {shape}: "
                            f"{'-' if r.rate is None else f'{r.rate:.3f}'} ({time.time() - t0:.1f} s)")
                r = done[key]
                out.append(Row(case.claim, r.statistic, r.direction, r.shape, r.n, r.reps, r.rate, r.rate_family,
                               "; ".join(x for x in (case.source, r.note) if x)))
    return out


def summary(rows: Sequence[Row]) -> str:
    """The table's one-line count: rows, those above the bound and those without a rate (not constructed),
    each with the claims concerned."""
    def listed(some: Sequence[Row]) -> str:
        return ": " + ", ".join(sorted({r.claim for r in some})) if some else ""

    bad, open_ = failures(rows), [r for r in rows if r.passed is None]
    return (f"{len(rows)} rows, {len(bad)} above the bound{listed(bad)}; {len(open_)} without a rate (null boundary "
            f"not constructed){listed(open_)}.")


def failures(rows: Sequence[Row]) -> list[Row]:
    """The rows whose false-supported rate exceeds ``ALPHA + 3 SE``."""
    return [r for r in rows if r.passed is False]


def low_power(cases: Sequence[ClaimCase], target: float = POWER_TARGET) -> list[tuple[str, float]]:
    """Claims whose recorded power (the smallest ``Evidence.power`` over their predictions, when the
    statistics provide it) is below ``target``: ``(claim id, power)``."""
    out = []
    for c in cases:
        powers = [p for p in c.power if p is not None and math.isfinite(p)]
        if powers and min(powers) < target:
            out.append((c.claim, float(min(powers))))
    return out


def power_section(cases: Sequence[ClaimCase], target: float = POWER_TARGET) -> str:
    """The docs' power list, generated from the same catalogue run: every decided claim whose recorded
    power (:func:`low_power`) is below ``target``, and the decided claims whose evidence records none."""
    low = low_power(cases, target)
    decided = [c for c in cases if c.power]
    silent = sorted({c.claim for c in decided if not any(p is not None and math.isfinite(p) for p in c.power)})
    lines = ["## Power", "",
             f"The power each decided claim's evidence records (`Evidence.power`: its test at its threshold against "
             f"its declared or default effect, docs/statistics.md), at this run's n (the default model, quick tier). "
             f"{len(decided)} claims decided with evidence; {len(low)} have power below {target} (the smallest over "
             "their predictions):", "", "| claim | power |", "|---|---|",
             *(f"| {cid} | {p:.2f} |" for cid, p in sorted(low)), ""]
    if silent:
        lines += [f"Evidence without a power (a Page trend, an equivalence share, a composite): {', '.join(silent)}.", ""]
    return "\n".join(lines)


def table(rows: Sequence[Row]) -> str:
    """The markdown table of ``rows``."""
    lines = ["| claim | statistic | direction | shape | n | reps | false supported | SE | after family | pass |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    def cell(text: str) -> str:  # a "|" in a statistic's name (|Spearman|, |LD|) would end the cell
        return text.replace("|", "\\|")

    for r in rows:
        rate = "-" if r.rate is None else f"{r.rate:.3f}"
        fam = "-" if r.rate_family is None else f"{r.rate_family:.3f}"
        ok = {True: "yes", False: "**NO**", None: "n/a"}[r.passed]
        se = "-" if r.rate is None else f"{r.se:.3f}"
        lines.append(f"| {r.claim} | {cell(r.statistic)} | {r.direction} | {r.shape} | {r.n} | {r.reps} | {rate} | "
                     f"{se} | {fam} | {ok}{' (' + cell(r.note) + ')' if r.note else ''} |")
    return "\n".join(lines)


COMMAND = "python -m codi_probe.calibration --reps 100 --budget 15 --out docs/calibration.md"  # what made the table


def write_doc(path: str, rows: Sequence[Row], seconds: float, command: str | None = None, power: str = "",
              partial: bool = True) -> None:
    """The table with its header (how it was made and how to rebuild it), written atomically.
    ``command``: the command that made this table (:data:`COMMAND` itself for a plain rebuild); ``partial``: it ran
    a subset of the claims (else every claim, e.g. at fewer data sets or with a cache); ``power``: the
    :func:`power_section` of the same run, appended."""
    from .atomic import write_text_atomic

    made = [] if command is None else [
        f"This table is {'a partial run' if partial else 'a run of every claim'}, made by `{command}`.", ""]
    head = [
        "# Claim-level calibration", "",
        "Each empirical claim's false-supported rate at its null boundary, through its own evidence function, "
        "prediction, combination and family (`codi_probe.calibration`; the method is in its docstring). "
        f"Pass: rate <= {ALPHA} + 3 SE. Rebuild the full table (not run in CI; about 13 min on 2 shared cores, `--codi-cache DIR` "
        "reuses the model's runs):",
        "", "```", COMMAND, "```", "", *made, f"This run took {seconds / 60:.1f} min.", "",
        "Reading it: `n` is the claim's own n on the default model (at least its declared minimum); `after "
        "family` adjusts by the family size with the other members clearly false; a row with no rate says why "
        "its null boundary was not constructed. A `mean` row that fails on one shape only is a property of "
        "the test used for that statistic (`codi_probe.stats.mean_evidence`), shared by every claim with the "
        "same signature. A row noted `synthetic` replays a claim that does not run on the default model, or a "
        "baseline prediction that decides nothing on it (OP-01, NEW-09), through its own evidence function on "
        "synthetic per-problem data (`codi_probe.calibration.synthetic_case`); the "
        "sections after the power list measure a few claims at more data sets (`--section`) and are kept by "
        "a rebuild.", "",
        summary(rows), "", table(rows), "", power,
        kept_sections(path)]
    write_text_atomic(path, "\n".join(head))


def _sections(text: str) -> list[tuple[str, str]]:
    """``(heading line, whole section text)`` of each ``## `` section of a markdown document."""
    out, parts = [], text.split("\n## ")
    for part in parts[1:]:
        out.append(("## " + part.split("\n", 1)[0], "## " + part.rstrip("\n") + "\n"))
    return out


def kept_sections(path: str) -> str:
    """The sections of the document at ``path`` that :func:`write_section` wrote (a full rebuild keeps them)."""
    from pathlib import Path

    if not Path(path).is_file():
        return ""
    return "\n".join(body for head, body in _sections(Path(path).read_text()) if SECTION_MARK in body)


SECTION_MARK = "<!-- a measurement at more data sets: python -m codi_probe.calibration --section -->"


def write_section(path: str, title: str, rows: Sequence[Row], seconds: float, command: str) -> None:
    """Put ``rows`` into the document at ``path`` as the section ``## title`` (replacing a section of that title,
    keeping the rest; a full rebuild keeps it too): a few claims measured at more data sets than the full run."""
    from pathlib import Path

    from .atomic import write_text_atomic

    text = Path(path).read_text() if Path(path).is_file() else ""
    head = f"## {title}"
    for heading, body in _sections(text):
        if heading == head:
            text = text.replace(body, "")
    section = "\n".join([head, "", SECTION_MARK, "", f"Made by `{command}` ({seconds / 60:.1f} min). {summary(rows)}",
                          "", table(rows), ""])
    write_text_atomic(path, text.rstrip("\n") + "\n\n" + section)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codi_probe.calibration", description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS, help="data sets per claim and shape")
    parser.add_argument("--out", default=None, help="write the markdown table here (default: print it)")
    parser.add_argument("--only", default=None, help="comma-separated claim ids (base ids) to replay")
    parser.add_argument("--budget", type=float, default=None,
                        help=f"seconds per row: stop a row's replays then (at least {MIN_REPS} data sets; the table "
                             "shows each row's count)")
    parser.add_argument("--section", default=None,
                        help="write the rows as this section of --out (replacing a section of that title), not the "
                             "whole document: a few claims at more data sets (e.g. IMP-01 with --reps 1000)")
    parser.add_argument("--power", action="store_true",
                        help="list the claims whose recorded power is below 0.8 instead of calibrating")
    args, pytest_args = parser.parse_known_args(argv)
    t0 = time.time()
    cases = capture_catalogue(pytest_args)
    cases = [synthetic_case(c.claim, captured=c) if c.base in SYNTHETIC and (
        not c.calls or any(k.kind == "undecided" for k in c.calls)) else c for c in cases]
    if args.only:
        keep = set(args.only.split(","))
        cases = [c for c in cases if c.base in keep or c.claim in keep]
    if args.power:
        low = low_power(cases)
        if not any(p is not None for c in cases for p in c.power):
            print("no evidence carries a power field (Evidence.power) in this version of codi_probe.stats")
            return 1
        print("\n".join(f"{cid}\t{p:.2f}" for cid, p in low) or "every decided claim has power >= 0.8")
        return 0
    rows = calibrate(cases, reps=args.reps, log=lambda s: print(s, file=sys.stderr, flush=True), budget_s=args.budget)
    if args.out and args.section:
        write_section(args.out, args.section, rows, time.time() - t0,
                      "python -m codi_probe.calibration " + shlex.join(list(argv if argv is not None else sys.argv[1:])))
    elif args.out:
        # a subset: --only, or pytest arguments that select tests (not --codi-cache / --codi-report ...)
        subset = bool(args.only) or any(a.startswith(("-k", "-m", "hypotheses")) or "::" in a for a in pytest_args)
        command = "python -m codi_probe.calibration " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
        write_doc(args.out, rows, time.time() - t0, command, power_section(cases), partial=subset)
    else:
        print(table(rows))
    return 1 if failures(rows) else 0


if __name__ == "__main__":
    sys.exit(main())
