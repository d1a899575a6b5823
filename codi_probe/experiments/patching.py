"""Clean→corrupted activation patching with a teacher-forced logit-difference readout (LAY-01), and
template pairs for models trained on a template family."""

from __future__ import annotations

from dataclasses import dataclass, field
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


def layer_patching(engine: CodiEngine, pairs: Sequence[tuple], *, positions: Sequence[str] = FED_POSITIONS,
                   min_gap: float = 1e-3) -> LayerPatching:
    """Patch every block's output at ``positions`` from the clean into the corrupted run, one row per
    (pair, layer), and read the logit difference (clean − corrupted first answer-number token) at the
    readout token of the shared answer prefix."""
    dropped = {"answers tokenise to the same first number token": 0, "|LD_clean - LD_corrupted| < min_gap": 0}
    usable = []
    for clean, corr in pairs:
        ids_c, k_c = answer_target(engine, clean.answer)
        ids_x, k_x = answer_target(engine, corr.answer)
        if ids_c[:k_c] != ids_x[:k_x] or ids_c[k_c] == ids_x[k_x]:
            dropped["answers tokenise to the same first number token"] += 1
            continue
        usable.append((clean, corr, ids_c, k_c, ids_c[k_c], ids_x[k_x]))
    n_layers = engine.model.n_layers
    if not usable:
        return LayerPatching(list(range(n_layers)), np.zeros((0, n_layers)), np.zeros(0), np.zeros(0),
                             np.zeros((0, n_layers)), dropped)
    clean_q = [u[0].question for u in usable]
    corr_q = [u[1].question for u in usable]
    targets = [u[2] for u in usable]
    readout = [u[3] for u in usable]
    good = np.array([u[4] for u in usable])
    bad = np.array([u[5] for u in usable])
    clean_runs = run_conditions(engine, clean_q, {}, record=Record(sites=("resid_post",)), teacher_force=targets,
                                readout=readout)
    clean = clean_runs.trace
    # the last block's output at P6 feeds nothing (e_7 is never fed): that cell is left out, not patched
    conds = {f"L{layer}": [[Intervention("resid_post", live_positions(layer, positions, n_layers, engine.num_latent),
                                         Patch(clean, i), layer=layer)]
                           for i in range(len(usable))] for layer in range(n_layers)}
    runs = run_conditions(engine, corr_q, conds, teacher_force=targets, readout=readout)
    rows = np.arange(len(usable))

    def ld(logits) -> np.ndarray:
        x = logits.numpy()
        return x[rows, good] - x[rows, bad]

    ld_clean = ld(readout_logits(clean_runs, "baseline"))
    ld_corr = ld(readout_logits(runs, "baseline"))
    gap = ld_clean - ld_corr
    keep = np.abs(gap) >= min_gap
    dropped["|LD_clean - LD_corrupted| < min_gap"] = int((~keep).sum())
    patched = np.stack([ld(readout_logits(runs, f"L{layer}")) for layer in range(n_layers)], 1)
    rec = ((patched - ld_corr[:, None]) / np.where(keep, gap, 1.0)[:, None])[keep]
    return LayerPatching(list(range(n_layers)), rec, ld_clean[keep], ld_corr[keep], patched[keep], dropped)


def groups(problems, key) -> dict:
    """Row indices of ``problems`` per group ``key(problem)``."""
    out: dict = {}
    for r, p in enumerate(problems):
        out.setdefault(key(p), []).append(r)
    return out
