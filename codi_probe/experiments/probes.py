"""Linear probes with their controls (claims.md 4.J OP, 4.M PROBE, claims-2026 NEW-09; the F-19 guard),
fitted with scikit-learn.

One probe = a standardised multinomial logistic regression (``StandardScaler`` + ``LogisticRegression``).
Everything a verdict reads is *held out*:

- ``correct``: each problem predicted by a probe that never saw its group (``StratifiedGroupKFold``): hold
  out whole templates, operand combinations or problems, so that wording or a memorised input cannot
  pass for the property (F-19);
- ``balanced_accuracy``: the mean of per-class recalls of those predictions (a majority-class probe scores
  ``1 / classes``, whatever the imbalance);
- ``shuffled``: the same held-out procedure on labels permuted across problems (the label-shuffle
  control: it must stay near chance, or the split leaks);
- ``selectivity`` (Hewitt & Liang 2019): the task's accuracy minus a *control task*'s on one random
  split, where the control gives every input type (e.g. every operand pair) a random label of the same
  distribution: a probe that memorises inputs scores on both, one that reads the property only on the task;
- ``train_balanced_accuracy``: the in-sample fit, recorded only to show what a training accuracy would have
  claimed (PROBE-01's 97.6% was one).

Features are ``[n, d]`` float arrays (latents, or a baseline such as the question's mean token embedding).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

N_FOLDS = 5
SHUFFLES = 2  # label-shuffle repetitions: a control's mean (near chance), not a permutation test


def make_probe(seed: int = 0, components: int | None = None):
    """Standardise, optionally project on the top ``components`` principal components (fitted inside each
    training fold, so the held-out rows never shape them), then multinomial logistic regression (L2, C=1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    steps = [StandardScaler()]
    if components is not None:
        steps.append(_FoldPCA(components, seed))
    return make_pipeline(*steps, LogisticRegression(max_iter=2000, random_state=seed))


class _FoldPCA:
    """PCA with at most ``components`` components, capped by the training fold's rows and features."""

    def __init__(self, components: int, seed: int):
        self.components, self.seed = components, seed

    def fit(self, x, y=None):
        from sklearn.decomposition import PCA

        self.pca_ = PCA(n_components=min(self.components, x.shape[0] - 1, x.shape[1]), random_state=self.seed).fit(x)
        return self

    def transform(self, x):
        return self.pca_.transform(x)

    def fit_transform(self, x, y=None):
        return self.fit(x).transform(x)

    def get_params(self, deep=True):
        return {"components": self.components, "seed": self.seed}

    def set_params(self, **params):
        for k, v in params.items():
            setattr(self, k, v)
        return self


def balanced_rows(correct: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``[n, 2C]`` per-problem rows whose column means give the balanced accuracy (``balanced_from_means``):
    ``correct & class c`` then ``class c`` for each of the C classes, so a bootstrap over problems (whole
    rows) resamples the statistic as it is computed."""
    classes = np.unique(labels)
    hit = np.stack([correct & (labels == c) for c in classes], 1)
    of = np.stack([labels == c for c in classes], 1)
    return np.concatenate([hit, of], 1).astype(float)


def balanced_from_means(m: np.ndarray) -> np.ndarray:
    """Balanced accuracy from the column means of :func:`balanced_rows` (``m[..., 2C]``); a class absent from
    a resample is left out of the mean."""
    c = m.shape[-1] // 2
    hit, of = m[..., :c], m[..., c:]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(of > 0, hit / np.where(of > 0, of, 1.0), np.nan)
    return np.nanmean(recall, axis=-1)


def _balanced(correct: np.ndarray, labels: np.ndarray) -> float:
    return float(balanced_from_means(balanced_rows(correct, labels).mean(0)))


def _held_out(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, components: int | None = None) -> np.ndarray:
    """Per problem: predicted right by a probe trained on the other groups' folds. Folds keep every class
    in training where the groups allow (``StratifiedGroupKFold``)."""
    from sklearn.model_selection import StratifiedGroupKFold

    # fewer folds than N_FOLDS where the problems allow no more: sklearn refuses more folds than the
    # largest class has members (a handful of problems whose values are all distinct)
    folds = min(N_FOLDS, len(np.unique(groups)), int(np.unique(y, return_counts=True)[1].max()))
    if folds < 2:
        raise ValueError("a held-out probe needs at least 2 groups and a label shared by 2 problems")
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    correct = np.zeros(len(y), dtype=bool)
    with warnings.catch_warnings():  # value probes have classes rarer than the folds: expected, and scored
        warnings.simplefilter("ignore", UserWarning)
        splits = list(cv.split(x, y, groups))
    for train, test in splits:
        if len(np.unique(y[train])) < 2:  # nothing to separate: every test problem gets the one class seen
            correct[test] = y[test] == y[train][0]
            continue
        correct[test] = make_probe(seed, components).fit(x[train], y[train]).predict(x[test]) == y[test]
    return correct


def _random_split(x: np.ndarray, y: np.ndarray, seed: int, components: int | None = None) -> float:
    """Balanced accuracy on one stratified random 70/30 split (types may repeat across it)."""
    from sklearn.model_selection import train_test_split

    values, counts = np.unique(y, return_counts=True)
    strat = y if counts.min() >= 2 else None
    tr, te = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=strat)
    if len(np.unique(y[tr])) < 2:
        return _balanced(y[te] == y[tr][0], y[te])
    return _balanced(make_probe(seed, components).fit(x[tr], y[tr]).predict(x[te]) == y[te], y[te])


@dataclass
class ProbeResult:
    """A probe's held-out result and its controls (module docstring). Accuracies are fractions."""

    correct: np.ndarray
    labels: np.ndarray
    balanced_accuracy: float
    train_balanced_accuracy: float
    shuffled: list[float] = field(default_factory=list)
    task_random_split: float | None = None
    control_random_split: float | None = None

    @property
    def chance(self) -> float:
        return 1.0 / len(np.unique(self.labels))

    @property
    def selectivity(self) -> float | None:
        if self.task_random_split is None or self.control_random_split is None:
            return None
        return self.task_random_split - self.control_random_split

    def rows(self) -> np.ndarray:
        return balanced_rows(self.correct, self.labels)

    def summary(self) -> dict:
        return {"held-out balanced accuracy": self.balanced_accuracy, "chance": self.chance,
                "label-shuffled (mean)": float(np.mean(self.shuffled)) if self.shuffled else None,
                "selectivity (task - control task, random split)": self.selectivity,
                "training balanced accuracy (in-sample, not a result)": self.train_balanced_accuracy,
                "n": int(len(self.labels)), "classes": int(len(np.unique(self.labels)))}


def probe(features: np.ndarray, labels: Sequence, groups: Sequence, *, types: Sequence | None = None,
          seed: int = 0, shuffles: int = SHUFFLES, components: int | None = None) -> ProbeResult:
    """Fit and score a linear probe of ``labels`` from ``features`` with every control.

    ``groups``: what is held out together (template, operand pair, problem). ``types``: the input identity
    the control task labels at random (default: ``groups``). ``components``: probe the top principal
    components only (fitted per training fold)."""
    x = np.asarray(features, dtype=float)
    y = np.asarray(labels)
    g = np.asarray(groups)
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(g):
        raise ValueError(f"features [n, d], labels [n] and groups [n] must agree, got {x.shape}, {y.shape}, {g.shape}")
    if len(np.unique(y)) < 2:
        raise ValueError("a probe needs at least 2 label classes")
    correct = _held_out(x, y, g, seed, components)
    fitted = make_probe(seed, components).fit(x, y)
    rng = np.random.default_rng(seed)
    shuffled = [_balanced(_held_out(x, yy, g, seed, components), yy)
                for yy in (rng.permutation(y) for _ in range(shuffles))]
    t = np.asarray(types if types is not None else g)
    kinds = {k: i for i, k in enumerate(dict.fromkeys(t.tolist()))}
    control_of = rng.choice(y, size=len(kinds))  # each type a random label, drawn from the label distribution
    control = np.array([control_of[kinds[k]] for k in t.tolist()])
    return ProbeResult(correct, y, _balanced(correct, y), _balanced(fitted.predict(x) == y, y), shuffled,
                       _random_split(x, y, seed, components),
                       _random_split(x, control, seed, components) if len(np.unique(control)) > 1 else None)


def probe_evidence(result: ProbeResult, prediction, seed: int = 0):
    """The held-out balanced accuracy of ``result`` against ``prediction`` (bootstrap over problems)."""
    from .. import stats

    return stats.rows_evidence(result.rows(), balanced_from_means, prediction, seed=seed)


def _check_paired(a: ProbeResult, b: ProbeResult, per_problem: int) -> None:
    if len(a.labels) != len(b.labels) or len(a.labels) % per_problem:
        raise ValueError(f"paired probes must score the same problems ({per_problem} rows each), got "
                         f"{len(a.labels)} and {len(b.labels)} rows")


def _paired(a: ProbeResult, b: ProbeResult, fn, prediction, seed: int, per_problem: int = 1):
    """``fn(balanced accuracy of a, of b)`` per resample of the problems both probes scored (paired bootstrap:
    a resample draws the same problems for both). ``per_problem``: consecutive rows that belong to one
    problem (e.g. its six latents), averaged so that a resample draws whole problems."""
    from .. import stats

    _check_paired(a, b, per_problem)
    c = a.rows().shape[1]
    rows = np.concatenate([a.rows(), b.rows()], 1)
    rows = rows.reshape(len(rows) // per_problem, per_problem, -1).mean(1)
    return stats.rows_evidence(rows, lambda m: fn(balanced_from_means(m[..., :c]), balanced_from_means(m[..., c:])),
                               prediction, seed=seed)


def difference_evidence(a: ProbeResult, b: ProbeResult, prediction, seed: int = 0):
    """Probe ``a``'s held-out balanced accuracy minus probe ``b``'s on the same problems (paired bootstrap)."""
    return _paired(a, b, lambda x, y: x - y, prediction, seed)


BASELINE_MARGIN = 0.10  # a latent probe must beat its surface baseline by 10pp (claims.md OP-02's margin; OP-04)


def beats_baseline_evidence(latent: ProbeResult, baseline: ProbeResult, floor: float, prediction, seed: int = 0,
                            margin: float = BASELINE_MARGIN, per_problem: int = 1):
    """The latent probe's held-out balanced accuracy minus the higher of ``floor`` (the claim's own
    threshold) and the baseline probe's accuracy + ``margin``, on the same problems (paired bootstrap).
    ``prediction`` is "greater than 0": the latent reads the property above the claim's threshold *and*
    beyond what the baseline (the question's wording, the position) reads, so a latent that merely echoes
    its input cannot support a claim about what it computes (issue 29, F-19). ``per_problem``: as in
    :func:`_paired` (both probes' rows in the same order).

    A baseline that reads the property at ``1 - margin`` or better leaves no accuracy that could beat it:
    the evidence then decides nothing, with that reason (the latent's part cannot be told from the
    surface's), rather than refuting a claim that no probe could have supported."""
    from .. import stats

    _check_paired(latent, baseline, per_problem)
    bar = max(floor, baseline.balanced_accuracy + margin)
    if bar >= 1.0:
        return stats._undecided(prediction, len(latent.labels) // max(1, per_problem),
                                f"the baseline reads it at {baseline.balanced_accuracy:.3f}: no probe can beat that "
                                f"by {margin:.2f}, so what the latent adds cannot be told from the surface",
                                value=latent.balanced_accuracy - bar)
    return _paired(latent, baseline, lambda x, y: x - np.maximum(floor, y + margin), prediction, seed, per_problem)


def positional_features(positions: Sequence[int], starts: Sequence[int]) -> np.ndarray:
    """``[n, P + K]`` everything position alone gives a linear probe about a row: a one-hot of its absolute
    position index (what a learned position embedding adds) and a one-hot of its offset from ``starts``,
    where its run of latents begins (what relative position, e.g. RoPE, gives). The offset of P_k from P0
    *is* the step index k, so this baseline reads the step index perfectly: the positional baseline of
    NEW-09, which shows that a latent's step index is given by where it sits."""
    pos, start = np.asarray(positions), np.asarray(starts)
    if pos.shape != start.shape:
        raise ValueError(f"positions and starts must agree, got {pos.shape} and {start.shape}")

    def onehot(v):
        values, idx = np.unique(v, return_inverse=True)
        return np.eye(len(values))[idx]

    return np.concatenate([onehot(pos), onehot(pos - start)], 1)


NO_ACTIVATION_ORACLE = ("no Activation Oracle is shipped: claims.md OP-02 decides on the linear probe against a "
                        "trained AO decoder (probe <= AO - 10pp), which cannot be measured here")


def oracle_gap_evidence(linear: ProbeResult, oracle: ProbeResult | None, prediction, seed: int = 0):
    """claims.md OP-02's test: the Activation Oracle's held-out balanced accuracy minus the linear probe's
    on the same problems (paired bootstrap; "needs a non-linear decoder" when > 10pp). ``oracle``: the
    oracle's per-problem result as a :class:`ProbeResult`; ``None`` (none shipped) gives evidence that
    decides nothing, with :data:`NO_ACTIVATION_ORACLE` as its reason, instead of another measurement."""
    from .. import stats

    if oracle is None:
        return stats._undecided(prediction, len(linear.labels), NO_ACTIVATION_ORACLE)
    return difference_evidence(oracle, linear, prediction, seed)


def question_embedding(model, question_ids: Sequence[Sequence[int]]) -> np.ndarray:
    """``[n, D]`` the mean input embedding of each question's tokens: the surface baseline a latent probe
    must beat (it sees the wording, nothing computed)."""
    import torch

    emb = model.lm.get_input_embeddings()
    with torch.no_grad():
        return np.stack([emb(torch.tensor(ids, device=model.device)).float().mean(0).cpu().numpy()
                         for ids in question_ids])


__all__ = ["BASELINE_MARGIN", "NO_ACTIVATION_ORACLE", "N_FOLDS", "ProbeResult", "SHUFFLES", "balanced_from_means",
           "balanced_rows", "beats_baseline_evidence", "difference_evidence", "make_probe", "oracle_gap_evidence",
           "positional_features", "probe", "probe_evidence", "question_embedding"]


def centroid_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cosine between the centroids of ``a[..., n, D]`` and ``b[..., n, D]`` (per leading index)."""
    ca, cb = a.mean(-2), b.mean(-2)
    return (ca * cb).sum(-1) / np.sqrt((ca * ca).sum(-1) * (cb * cb).sum(-1))


CENTROID_MIN_PROBLEMS = 30  # below this many problems (after exclusion) PROBE-03's evidence decides nothing
# PROBE-03's guard on its bootstrap-t p-values (stats.rows_evidence's p_factor: the test at the two-sided level).
# On strongly skewed noise the bootstrap-t tail of the cosine is too thin: "< 0.3" was supported 4.6-5.8% of the
# time at the boundary (right-skewed noise, n = 10-30) and refuted 6.5% (left-skewed, n = 20), nominal 2.5%;
# doubled, at most 2.7% from n = 30 (docs/statistics.md). Below n = 30 even the doubled p failed (4.0-4.3%).
CENTROID_P_FACTOR = 2.0
CENTROID_NOISE = "a centroid's estimated squared norm is not positive: the centroids cannot be told from noise"


def _centroid_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-problem rows ``[a_i, b_i, |a_i|², |b_i|², a_i·b_i]`` (``[n, 2D + 3]``): the centroid cosine and its
    deflated form are functions of these rows' column means."""
    return np.concatenate([a, b, (a * a).sum(1, keepdims=True), (b * b).sum(1, keepdims=True),
                           (a * b).sum(1, keepdims=True)], 1)


def _plug_in_cosine(m: np.ndarray) -> np.ndarray:
    """The cosine of the observed centroids, from :func:`_centroid_rows`' column means ``m[..., 2D + 3]``."""
    d = (m.shape[-1] - 3) // 2
    return centroid_cosine(m[..., None, :d], m[..., None, d:2 * d])


def _deflated_cosine(n: int):
    """The centroid cosine with each inner product of centroids replaced by its unbiased estimate over ``n``
    problems (the U-statistic ``Σ_{i≠j} a_i·b_j / (n(n−1)) = (n ā·b̄ − mean a_i·b_i) / (n − 1)``, and so for
    ``|μ_a|²`` and ``|μ_b|²``), as a function of :func:`_centroid_rows`' column means. The plug-in cosine's
    norms carry the noise (``E|ā|² = |μ_a|² + tr Σ_a / n``), which pulls it towards 0: on t(3) noise its BCa
    test supported "< 0.3" 4.8% of the time at the boundary (nominal 2.5%). A norm estimate ≤ 0 (centroids
    not told from noise) makes the value NaN, which decides nothing (a resample's: extreme both ways). The value
    is not bounded to [-1, 1] (2.04 seen); :func:`centroid_cosine_evidence` clips what it reports."""

    def fn(m: np.ndarray) -> np.ndarray:
        d = (m.shape[-1] - 3) // 2
        ca, cb = m[..., :d], m[..., d:2 * d]
        ab = (n * (ca * cb).sum(-1) - m[..., 2 * d + 2]) / (n - 1)
        aa = (n * (ca * ca).sum(-1) - m[..., 2 * d]) / (n - 1)
        bb = (n * (cb * cb).sum(-1) - m[..., 2 * d + 1]) / (n - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where((aa > 0) & (bb > 0), ab / np.sqrt(np.abs(aa * bb)), np.nan)

    return fn


def centroid_cosine_evidence(a: np.ndarray, b: np.ndarray, prediction, seed: int = 0, *,
                             resamples: int | None = None):
    """The cosine between two tasks' population centroids, from per-problem vectors ``a[n, D]`` and ``b[n, D]``
    (row ``i`` of each: problem ``i`` of that task; the two tasks' problems are paired by index only), against
    ``prediction`` (PROBE-03). The estimate deflates the centroids' inner products to their unbiased
    (U-statistic) estimates (:func:`_deflated_cosine`); the test is the studentized bootstrap over problems
    (:func:`codi_probe.stats.rows_evidence`, centred on the plug-in cosine of the resampled problems), computed
    in chunks of resamples so memory stays bounded whatever the hidden size ``D``, with both p-values doubled
    (:data:`CENTROID_P_FACTOR`: the bootstrap-t's tail is too thin on strongly skewed noise). The reported value
    and bounds are clipped to [-1, 1] (the deflated cosine can leave it; clipping is monotone, so the test is
    unchanged).

    Problems with a non-finite value in ``a`` or ``b`` are excluded and counted (``Evidence.excluded``); fewer
    than :data:`CENTROID_MIN_PROBLEMS` left (30: below it even the doubled p-values were anti-conservative on
    skewed noise), or a centroid whose estimated squared norm is not positive on all problems or with one left
    out (:data:`CENTROID_NOISE`), give evidence that decides nothing, with the reason. Level at the boundary: tests/test_stats_calibration.py."""
    from .. import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"centroid cosine needs two [n, D] arrays of one shape, got {a.shape} and {b.shape}")
    keep = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    excluded = int(np.sum(~keep))
    a, b = a[keep], b[keep]
    n = len(a)
    if n < CENTROID_MIN_PROBLEMS:
        return stats._undecided(prediction, n, f"{n} problem(s) with finite vectors: the centroid cosine needs at "
                                f"least {CENTROID_MIN_PROBLEMS}" + (f" ({excluded} excluded as non-finite)"
                                                                   if excluded else ""), excluded=excluded)
    rows, fn = _centroid_rows(a, b), _deflated_cosine(n)
    with np.errstate(all="ignore"):  # the value and every leave-one-out value (the jackknife SE) need both norms > 0
        loo = fn(np.concatenate([rows.mean(0, keepdims=True), (rows.sum(0) - rows) / (n - 1)]))
    if not np.all(np.isfinite(loo)):
        return stats._undecided(prediction, n, "; ".join(x for x in (stats._excluded_note(excluded), CENTROID_NOISE)
                                                         if x), value=float(np.clip(loo[0], -1.0, 1.0)), excluded=excluded)
    opts = {} if resamples is None else {"resamples": resamples}
    ev = stats.rows_evidence(rows, fn, prediction, seed=seed, centre=_plug_in_cosine, p_factor=CENTROID_P_FACTOR,
                             **opts)
    reason = "; ".join(x for x in (stats._excluded_note(excluded), ev.reason) if x) or None
    value, lo, hi = (float(np.clip(x, -1.0, 1.0)) for x in (ev.value, ev.lo, ev.hi))
    return replace(ev, value=value, lo=lo, hi=hi, excluded=excluded, reason=reason)
