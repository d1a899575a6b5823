"""Clean→corrupted activation patching with a teacher-forced logit-difference readout (LAY-01), and
template pairs for models trained on a template family."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

from ..engine import CodiEngine, Intervention, Patch, Record
from ..engine.positions import FED_POSITIONS, live_positions
from .common import answer_target, readout_logits, run_conditions


@dataclass
class LayerPatching:
    """``recovery[i, L]``: normalised logit-difference recovery of pair i when block L's output at the
    patched positions is taken from the clean run; 0 = corrupted, 1 = clean. ``ld_patched[i, L]`` is
    the patched run's logit difference itself (clean − corrupted answer token, in logits)."""

    layers: list[int]
    recovery: np.ndarray
    ld_clean: np.ndarray
    ld_corrupted: np.ndarray
    ld_patched: np.ndarray
    dropped: dict[str, int] = field(default_factory=dict)

    def pooled_recovery(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Recovery per layer as a ratio of sums over pairs: ``Σ(LD_patched − LD_corr) / Σ(LD_clean −
        LD_corr)``. Unlike the mean of per-pair ratios it is not dominated by pairs whose clean and
        corrupted runs barely differ (a gap of 1e-3 would turn a small change into a 1000x ratio)."""
        idx = np.arange(len(self.ld_clean)) if idx is None else idx
        gap = (self.ld_clean - self.ld_corrupted)[idx].sum()
        return (self.ld_patched[idx] - self.ld_corrupted[idx, None]).sum(0) / gap


def band_margin(recovery: np.ndarray, band: Sequence[int]) -> np.ndarray:
    """The best recovery inside ``band`` minus the best outside it (``recovery[..., L]``): > 0 when
    the peak layer lies in the band."""
    inside = np.zeros(recovery.shape[-1], dtype=bool)
    inside[list(band)] = True
    return recovery[..., inside].max(-1) - recovery[..., ~inside].max(-1)


BAND_RESAMPLES = 1000  # claims.md LAY-01: 1000 bootstrap resamples of pairs


def resampled_recovery(result: LayerPatching, outer: np.ndarray, resamples: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap resamples of a data set of pairs: for pair indices ``outer[n]``, ``resamples`` draws of n of
    them with replacement, each as counts (so its sums are one matrix product, not a gather). Returns the
    pooled recovery per layer ``[resamples, L]`` (:meth:`LayerPatching.pooled_recovery`; NaN or inf where a
    resample's gap sums to 0) and each resample's pooled clean - corrupted gap ``[resamples]``."""
    u = result.ld_patched - result.ld_corrupted[:, None]  # [n, L]
    gap = result.ld_clean - result.ld_corrupted
    n = len(outer)
    slots = np.arange(resamples)[:, None] * n
    counts = np.bincount((rng.integers(0, n, (resamples, n)) + slots).ravel(),
                         minlength=resamples * n).reshape(resamples, n).astype(float)
    total = counts @ gap[outer]
    with np.errstate(all="ignore"):
        return (counts @ u[outer]) / total[:, None], total


def band_shares(result: LayerPatching, band: Sequence[int], outer: np.ndarray, resamples: int,
                rng: np.random.Generator) -> np.ndarray:
    """For each row of pair indices ``outer[B, n]`` (a data set of pairs), the share of ``resamples`` bootstrap
    resamples of those pairs whose peak layer of the pooled recovery (:meth:`LayerPatching.pooled_recovery`)
    lies in ``band``: ``[B]`` fractions. A resample counts only when the band's best layer beats every layer
    outside it strictly (a tie is not a peak in the band) and its pooled clean - corrupted gap is > 0 (else
    recovery is undefined: not in the band)."""
    inside = np.zeros(result.ld_patched.shape[1], dtype=bool)
    inside[list(band)] = True
    out = np.empty(len(outer))
    for b, rows in enumerate(outer):
        pooled, total = resampled_recovery(result, rows, resamples, rng)
        peak = pooled[:, inside].max(1) > pooled[:, ~inside].max(1) if (~inside).any() else np.ones(resamples, bool)
        out[b] = (peak & (total > 0)).mean()
    return out


def _pair_differences(pooled: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """Each band layer's pooled recovery minus each outside layer's: ``[..., band, outside]``."""
    return pooled[..., inside, None] - pooled[..., None, ~inside]


def _peak_margins(diff: np.ndarray, se: np.ndarray) -> np.ndarray:
    """Per resample (``diff[B, band, outside]``, :func:`_pair_differences`), the largest ``c`` at which the band
    still holds the peak once every band-minus-outside difference is moved down by ``c`` of its standard errors
    ``se[band, outside]``: ``max_b min_o diff_bo / se_bo`` (−inf where a difference is undefined)."""
    with np.errstate(all="ignore"):
        c = np.where(se > 0, diff / se, np.where(diff > 0, np.inf, -np.inf))
    return np.where(np.isnan(c), -np.inf, c).min(2).max(1)


def band_share_evidence(result: LayerPatching, band: Sequence[int], prediction, seed: int = 0,
                        resamples: int = BAND_RESAMPLES):
    """LAY-01's decision, the source's rule with its sampling error. The value is the share of ``resamples``
    bootstrap resamples of the pairs whose peak layer of the pooled recovery is in ``band`` (claims.md: > 80%;
    :func:`band_shares`): an estimate of ``g(μ)``, the probability that the peak of ``n`` pairs' pooled
    recovery (true per-layer recovery ``μ``, sampling noise as in the resamples) lies in the band.

    The test (the prediction must be "greater"): ``g`` rises with every difference ``d_bo`` between
    a band layer's recovery and an outside layer's, so it is at least ``g`` at simultaneous lower bounds of
    those differences, ``D_bo − c · se_bo`` (``D`` observed, ``se`` the resamples' standard deviation of each
    difference). The simultaneous level of ``c`` is the max-t bootstrap's: ``p`` is the share (plus one, over
    ``resamples + 1``) of resamples whose largest standardized deviation ``(D*_bo − D_bo) / se_bo`` (``se`` fixed
    across resamples, not re-estimated per resample) over all pairs reaches the ``c`` at which ``g`` falls to the threshold (:func:`_peak_margins`). The lower bound is
    ``g`` at the ``1 − ALPHA`` max-t bound, the exact inversion of that p-value. It is conservative (valid
    whatever the layers' profile; power only for a clear peak: docs/statistics.md). It refutes by the mirror
    argument: ``g`` is at most ``g`` at the simultaneous upper bounds ``D_bo + c · se_bo``, with ``c`` from the
    max-t bootstrap of the deviations the other way; the upper bound is ``g`` there.

    Why not the share's own sampling distribution: tested against 0.8 by the exact binomial test over its
    resamples it was falsely supported 22% of the time at its boundary, and a double bootstrap of the share
    (its percentile over 199 replications of the pairs) 6.5% with a single layer outside the band competing
    with two inside (200 data sets; issue 28, docs/calibration.md): the best of several band layers is a
    maximum, which a bootstrap of it does not correct; and the double bootstrap's mirror rule refuted 8% of
    the time at the boundary (the share is biased down under resampling), so it supported only. Pairs with a
    non-finite logit difference are excluded and counted; data in which no pair
    differs from another decide nothing."""
    from .. import stats

    if prediction.direction != "greater":
        raise ValueError(f"LAY-01's band share is tested only as 'greater' (the peak is in the band), "
                         f"not {prediction.direction!r}")
    if (resamples + 1) * stats.ALPHA <= 1:
        raise ValueError(f"resamples={resamples}: the max-t bootstrap needs (resamples + 1) x {stats.ALPHA} > 1 "
                         f"to reach p < {stats.ALPHA}")
    rows = np.column_stack([result.ld_clean, result.ld_corrupted, result.ld_patched])
    finite = np.isfinite(rows).all(1)
    excluded = int((~finite).sum())
    if excluded:
        result = LayerPatching(result.layers, result.recovery[finite], result.ld_clean[finite],
                               result.ld_corrupted[finite], result.ld_patched[finite], dict(result.dropped))
    note = f"; {excluded} pair(s) with a non-finite logit difference excluded" if excluded else ""
    n = len(result.ld_clean)
    if n < 2:
        return stats._undecided(prediction, n, f"{n} pair(s): a bootstrap needs at least 2{note}", excluded=excluded)
    gap = float(np.sum(result.ld_clean - result.ld_corrupted))
    if not gap > 0:
        return stats._undecided(prediction, n, f"the pooled clean - corrupted logit difference is {gap:.3g}: "
                                "recovery (a share of it) is undefined, so no layer can be its peak" + note,
                                excluded=excluded)
    rows = rows[finite]
    if np.all(rows == rows[0]):
        return stats._undecided(prediction, n, "every pair has the same logit differences: a bootstrap of "
                                "identical pairs measures no sampling error" + note, excluded=excluded)
    inside = np.zeros(result.ld_patched.shape[1], dtype=bool)
    inside[list(band)] = True
    if inside.all():
        return stats._undecided(prediction, n, "every layer is in the band: no layer outside it to beat" + note,
                                excluded=excluded)
    pooled, total = resampled_recovery(result, np.arange(n), resamples, np.random.default_rng(seed))
    observed = result.pooled_recovery()
    ok = (total > 0) & np.isfinite(pooled).all(1)  # a resample whose recovery is undefined: not in the band
    diff = _pair_differences(pooled, inside)  # [resamples, band, outside]
    se = np.std(diff[ok], 0) if ok.sum() > 1 else np.zeros(diff.shape[1:])
    margins = np.where(ok, _peak_margins(diff, se), -np.inf)
    with np.errstate(all="ignore"):
        dev = (diff - _pair_differences(observed, inside)) / se  # towards the claim, in standard errors
    dev = np.where(np.isnan(dev), 0.0, dev).reshape(resamples, -1)
    k = int(np.ceil(stats.ALPHA * (resamples + 1))) - 2  # the most resamples p < ALPHA allows at or beyond c
    # support: the differences at their lower bounds; a resample without a recovery is extreme and not in the band
    toward = np.sort(np.where(ok, dev.max(1), np.inf))[::-1]
    margins_desc = np.sort(margins)[::-1]
    # refute: at their upper bounds, in the band at c when margin >= -c; a resample without a recovery is extreme
    # and in the band (both conservative)
    against = np.sort(np.where(ok, (-dev).max(1), np.inf))[::-1]
    needed = np.sort(np.where(ok, -margins, -np.inf))  # the c from which each resample is in the band, ascending
    share = float(np.mean(margins > 0))
    lo, hi = float(np.mean(margins > toward[k])), float(np.mean(needed <= against[k]))

    def p_at(t: float, alternative: str) -> float:
        if alternative == "greater":  # the largest c at which the share at the lower bounds stays above t
            m = int(np.floor(t * resamples))
            return 1.0 if m >= resamples else float((np.sum(toward >= margins_desc[max(m, 0)]) + 1) / (resamples + 1))
        m = int(np.ceil(t * resamples))  # the smallest c at which the share at the upper bounds reaches t
        if m <= 0:
            return 1.0
        return float((np.sum(against >= needed[min(m, resamples) - 1]) + 1) / (resamples + 1))

    ev = stats.from_one_sided(prediction, share, lo, hi, n, p_at,
                              f"share of {resamples} bootstrap resamples of the {n} pairs with the peak layer in "
                              "the band (claims.md LAY-01's rule), tested at simultaneous max-t bootstrap bounds "
                              "of the band-minus-outside recovery differences")
    return replace(ev, reason=note[2:] or None, excluded=excluded) if excluded else ev


def template_pairs(problems, seed: int = 0):
    """Pair each problem with another of the same template and operation whose answer differs."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i, p in enumerate(problems):
        cands = [q for q in problems if q is not p and q.template == p.template and q.operation == p.operation
                 and q.family == p.family and q.answer != p.answer]
        if cands:
            pairs.append((p, cands[int(rng.integers(len(cands)))]))
    return pairs


@dataclass
class PatchTargets:
    """The usable pairs of a logit-difference readout and what the readout needs: the clean answer's tokens
    (teacher-forced on both runs), the readout index, and the clean/corrupted answer-number tokens."""

    clean: list
    corrupted: list
    targets: list[list[int]]
    readout: list[int]
    good: np.ndarray
    bad: np.ndarray
    dropped: dict[str, int]


def patch_targets(engine: CodiEngine, pairs: Sequence[tuple]) -> PatchTargets:
    """Keep the pairs whose answers share the prefix before the number and differ in its first token."""
    dropped = {"answers tokenise to the same first number token": 0, "|LD_clean - LD_corrupted| < min_gap": 0}
    usable = []
    for clean, corr in pairs:
        ids_c, k_c = answer_target(engine, clean.answer)
        ids_x, k_x = answer_target(engine, corr.answer)
        if ids_c[:k_c] != ids_x[:k_x] or ids_c[k_c] == ids_x[k_x]:
            dropped["answers tokenise to the same first number token"] += 1
            continue
        usable.append((clean, corr, ids_c, k_c, ids_c[k_c], ids_x[k_x]))
    return PatchTargets([u[0] for u in usable], [u[1] for u in usable], [u[2] for u in usable],
                        [u[3] for u in usable], np.array([u[4] for u in usable], dtype=int),
                        np.array([u[5] for u in usable], dtype=int), dropped)


def patched_logit_differences(engine: CodiEngine, t: PatchTargets, conditions: dict[str, tuple[int, Sequence[str]]]
                              ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(LD_clean, LD_corrupted, {name: LD_patched})`` per usable pair: each condition ``(layer, positions)``
    takes block ``layer``'s output at those positions from the clean run (cells that feed nothing, the last
    block at P6, are left out)."""
    clean_runs = run_conditions(engine, [c.question for c in t.clean], {}, record=Record(sites=("resid_post",)),
                                teacher_force=t.targets, readout=t.readout)
    clean = clean_runs.trace
    n_layers = engine.model.n_layers
    conds = {name: [[Intervention("resid_post", live_positions(layer, tuple(pos), n_layers, engine.num_latent),
                                  Patch(clean, i), layer=layer)] for i in range(len(t.targets))]
             for name, (layer, pos) in conditions.items()}
    runs = run_conditions(engine, [c.question for c in t.corrupted], conds, teacher_force=t.targets,
                          readout=t.readout, progress="patching")
    rows = np.arange(len(t.targets))

    def ld(logits) -> np.ndarray:
        x = logits.numpy()
        return x[rows, t.good] - x[rows, t.bad]

    return (ld(readout_logits(clean_runs, "baseline")), ld(readout_logits(runs, "baseline")),
            {name: ld(readout_logits(runs, name)) for name in conds})


def layer_patching(engine: CodiEngine, pairs: Sequence[tuple], *, positions: Sequence[str] = FED_POSITIONS,
                   min_gap: float = 1e-3) -> LayerPatching:
    """Patch every block's output at ``positions`` from the clean into the corrupted run, one row per
    (pair, layer), and read the logit difference (clean − corrupted first answer-number token) at the
    readout token of the shared answer prefix."""
    t = patch_targets(engine, pairs)
    n_layers = engine.model.n_layers
    if not t.targets:
        return LayerPatching(list(range(n_layers)), np.zeros((0, n_layers)), np.zeros(0), np.zeros(0),
                             np.zeros((0, n_layers)), t.dropped)
    ld_clean, ld_corr, patched = patched_logit_differences(
        engine, t, {f"L{layer}": (layer, positions) for layer in range(n_layers)})
    gap = ld_clean - ld_corr
    keep = np.abs(gap) >= min_gap
    t.dropped["|LD_clean - LD_corrupted| < min_gap"] = int((~keep).sum())
    patched = np.stack([patched[f"L{layer}"] for layer in range(n_layers)], 1)
    rec = ((patched - ld_corr[:, None]) / np.where(keep, gap, 1.0)[:, None])[keep]
    return LayerPatching(list(range(n_layers)), rec, ld_clean[keep], ld_corr[keep], patched[keep], t.dropped)


def groups(problems, key) -> dict:
    """Row indices of ``problems`` per group ``key(problem)``."""
    out: dict = {}
    for r, p in enumerate(problems):
        out.setdefault(key(p), []).append(r)
    return out


@dataclass
class AnswerPatching:
    """Clean→corrupted patching scored by the generated answer (LAY-04..07, IMP-12).

    ``outcome[name]``: per pair, ``"clean"`` (the clean problem's gold answer), ``"corrupted"`` (the corrupted
    one's) or ``"other"``; ``"baseline"`` is the unpatched corrupted run. Conditions are named
    ``"<depth>:<set>"`` (e.g. ``"late:{P0,P1,P4,P5}"``): block ``layers[depth]``'s output at every position of
    the set is taken from the clean run. ``both_correct``: pairs whose clean and corrupted runs both give
    their gold answers."""

    layers: dict[str, int]
    outcome: dict[str, np.ndarray]
    both_correct: np.ndarray

    def rate(self, name: str, kind: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Per pair: did condition ``name`` give the ``kind`` answer (``clean``/``corrupted``/``other``)?"""
        out = self.outcome[name] == kind
        return out if rows is None else out[rows]


def answer_patching(engine: CodiEngine, pairs: Sequence[tuple], *, layers: dict[str, int],
                    sets: Sequence[tuple[str, Sequence[str]]], max_new_tokens: int = 16) -> AnswerPatching:
    """Patch ``resid_post`` at each (depth, position set) from the clean run into the corrupted one and
    classify the generated answer. ``sets``: ``(depth name, positions)`` pairs."""
    from .ablation import set_label
    from .common import golds
    from ..data import answers_match

    clean_q = [c.question for c, _ in pairs]
    corr_q = [x.question for _, x in pairs]
    clean = engine.run(clean_q, record=Record(sites=("resid_post",)), max_new_tokens=max_new_tokens)
    n_layers = engine.model.n_layers
    conds = {}
    for depth, positions in sets:
        layer = layers[depth]
        live = live_positions(layer, tuple(positions), n_layers, engine.num_latent)
        conds[f"{depth}:{set_label(positions)}"] = [[Intervention("resid_post", live, Patch(clean, i), layer=layer)]
                                                    for i in range(len(pairs))]
    runs = run_conditions(engine, corr_q, conds, max_new_tokens=max_new_tokens, progress="answer patching")
    g_clean, g_corr = golds([c for c, _ in pairs]), golds([x for _, x in pairs])

    def classify(answers) -> np.ndarray:
        return np.array(["clean" if answers_match(a, gc) else "corrupted" if answers_match(a, gx) else "other"
                         for a, gc, gx in zip(answers, g_clean, g_corr)])

    outcome = {name: classify(runs.answers(name)) for name in ("baseline", *conds)}
    both = np.array([answers_match(a, g) for a, g in zip(clean.answer, g_clean)]) & (outcome["baseline"] == "corrupted")
    return AnswerPatching(dict(layers), outcome, both)
