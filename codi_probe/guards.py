"""Measurement helpers the catalogue's guard claims share (claims.md 4.E and the flaws of section 7).

A guard compares the engine with itself, or with an independent recompute, under a change that must (or
must not) move something; these helpers hold the comparisons more than one guard makes, so that each is
written once. Deviations are in tolerance units of :mod:`codi_probe.tolerance` (<= 1: within round-off).
"""

from __future__ import annotations

from typing import Sequence

import torch

from .engine import Record
from .tolerance import tolerance


def run_beside_clean(engine, questions: Sequence[str], variants, **kw):
    """Run ``variants`` with one clean row per question in the same batch, so that every comparison is
    between rows that went through the same kernels. Returns ``(trace, clean row of each variant)``."""
    n = len(variants)
    rows = list(variants) + [(q, ()) for q in range(len(questions))]
    out = engine.run(questions, variants=rows, record=kw.pop("record", Record(sites=())), **kw)
    return out, [n + q for q, _ in variants]


def fed_projection_deviation(engine, trace) -> torch.Tensor:
    """``[R]``: per row, how far the fed latents e_1..e_n stand from ``prj(h_0..h_{n-1})`` in tolerance units
    (<= 1: every fed latent is the projection of the previous state, as the CODI loop feeds it; a PAD or
    token embedding in its place reads far above 1)."""
    model = engine.model
    n = trace.latent_post.shape[1]
    prj_dtype = model.prj[1].weight.dtype  # prj itself, not the engine's feeding path: the guard must not share it
    with torch.no_grad():
        proj = model.prj(trace.latent_pre[:, :n].to(model.device, model.base_dtype).to(prj_dtype))
    proj = proj.to(model.base_dtype).float().cpu()
    tol = tolerance(model.base_dtype, "batch_vs_alone")
    return torch.tensor([tol.deviation(proj[r], trace.latent_post[r]) for r in range(trace.n_rows)])


__all__ = ["fed_projection_deviation", "run_beside_clean"]
