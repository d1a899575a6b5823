"""The never-fed projection e_{n+1} = prj(h_n) randomised (claims.md IMP-13 (a), 1.3; the IMP-13a guard).

The seeds' loops compute ``prj(h_k)`` after every latent step, including the last (CYW index 6 =
``e_7 = prj(h_6)``), which is never fed to the model. Their "random at index 6" condition is a no-op by
construction, and the source's guard checks exactly that: randomising ``e_7`` leaves every output
unchanged. This module runs that check on the engine as it stands, without relying on the engine's own
addressing: a forward hook on ``prj`` replaces, by a norm-matched random vector, the output of every
call whose input row is the clean run's ``h_j`` (within the run's tolerance). With ``j = n`` that is the
source's ``e_{n+1}``; any loop that computed and fed it (or fed ``h_n`` through ``prj`` anywhere) changes
the outputs, so the check can fail. With ``j < n`` the hook randomises a fed latent ``e_{j+1}``, the
index mix-up the source warns about, and the outputs change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..tolerance import TokenAgreement, tokens_agree, tolerance


@dataclass
class NeverFedCheck:
    """The clean run against the run with ``prj(h_j)`` randomised. ``hits``: the ``prj`` output rows the
    hook replaced (0 when the engine never projects ``h_j``); ``latent_deviation``: the largest deviation
    of h_0..h_n and e_1..e_n in tolerance units (<= 1: equal); ``tokens_changed``: rows whose greedy answer
    tokens differ (ties excused, :func:`~codi_probe.tolerance.tokens_agree`)."""

    h_index: int
    hits: int
    latent_deviation: float
    tokens_changed: int
    rows: int

    @property
    def unchanged(self) -> bool:
        return self.latent_deviation <= 1.0 and self.tokens_changed == 0


def randomise_projection_of(engine, questions: Sequence[str], h_index: int | None = None, *, seed: int = 0,
                            max_new_tokens: int = 16) -> NeverFedCheck:
    """Run ``questions`` clean, then again with ``prj``'s output replaced wherever its input is the clean
    ``h_{h_index}`` (default: the last latent, ``h_n``, whose projection ``e_{n+1}`` is never fed)."""
    from ..engine import Record

    n = engine.num_latent
    j = n if h_index is None else h_index
    if not 0 <= j <= n:
        raise ValueError(f"h_index must be in 0..{n} (h_0..h_{n}), got {j}")
    record = Record(sites=(), logits=True)
    clean = engine.run(list(questions), record=record, max_new_tokens=max_new_tokens)
    target = clean.latent_pre[:, j].double()  # [R, D] the clean h_j of every row
    tol = tolerance(engine.model.base_dtype, "batch_vs_alone")
    bound = tol.atol + tol.rtol * target.abs()
    gen = torch.Generator().manual_seed(seed)
    hits = 0

    def hook(_module, args, out):
        nonlocal hits
        x = args[0].detach().double().cpu()
        # per row: within tolerance of some clean h_j (|x - t| <= atol + rtol |t| everywhere, as Tolerance.close);
        # one [targets, D] comparison per row, so memory stays O(n D) at any n
        match = [bool(((row - target).abs() <= bound).all(-1).any()) for row in x]
        if not any(match):
            return out
        out = out.clone()
        for r, m in enumerate(match):
            if m:
                noise = torch.randn(out.shape[-1], generator=gen, dtype=torch.float32).to(out)
                out[r] = noise * (out[r].float().norm() / noise.float().norm().clamp(min=1e-12)).to(out)
                hits += 1
        return out

    handle = engine.model.prj.register_forward_hook(hook)
    try:
        rand = engine.run(list(questions), record=record, max_new_tokens=max_new_tokens)
    finally:
        handle.remove()
    deviation = max(tol.deviation(rand.latent_pre, clean.latent_pre), tol.deviation(rand.latent_post, clean.latent_post))
    agree: list[TokenAgreement] = [
        tokens_agree(rand.answer_ids[r], clean.answer_ids[r], clean.answer_logits[r] if clean.answer_logits else None,
                     tol) for r in range(clean.n_rows)]
    return NeverFedCheck(j, hits, deviation, sum(not a.agree for a in agree), clean.n_rows)


__all__ = ["NeverFedCheck", "randomise_projection_of"]
