"""Attention-flow scores among the latent positions (FLOW-01): incoming attention per position and its
shuffled-key null, per problem.

``a[..., i, j]`` is the attention of query P_i to key P_j (rows = queries, columns = keys, P0..P6),
already averaged over layers and heads; only the strictly lower triangle (earlier keys) is admissible.
"""

from __future__ import annotations

import numpy as np


def incoming(a: np.ndarray) -> np.ndarray:
    """``[..., 6]``: for keys P0..P5, the mean attention they receive from the later positions
    (normalised by the number of sources, so early positions are not favoured for having more)."""
    k = a.shape[-1]
    return np.stack([a[..., j + 1:, j].mean(-1) for j in range(k - 1)], -1)


def hub_hits(a: np.ndarray, rng: np.random.Generator, draws: int = 200, quantile: float = 0.95) -> np.ndarray:
    """``[n, 6]`` booleans: problem i's key P_j is a hub when its incoming score beats the ``quantile``
    of a null that shuffles each query row's attention over its admissible (earlier) keys, for that
    same key. A per-position null, so a hub means a *named* position, comparable across problems."""
    a = np.asarray(a, dtype=float)
    n, k, _ = a.shape
    null = np.zeros((draws, n, k, k))
    for i in range(1, k):
        null[:, :, i, :i] = rng.permuted(np.broadcast_to(a[:, i, :i], (draws, n, i)).copy(), axis=-1)
    cut = np.quantile(incoming(null), quantile, axis=0)  # [n, 6]
    return incoming(a) > cut


def blocked_cells(interventions) -> frozenset:
    """The (query, key) position pairs an intervention list blocks with ``attn_knockout`` (``Q`` stands for
    every question token): two conditions with the same cells are one mask, whatever their names (SAN-06)."""
    return frozenset((q, k) for iv in interventions if iv.site == "attn_knockout" for q in iv.positions for k in iv.keys)


def same_masks(conditions) -> list[tuple[str, str]]:
    """Pairs of condition names (``{name: [interventions of problem 0, ...]}``) whose masks are identical for
    every problem: "identical results" between them are not evidence of anything (claims.md SAN-06)."""
    cells = {name: [blocked_cells(ivs) for ivs in per_problem] for name, per_problem in conditions.items()}
    names = list(cells)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if cells[a] == cells[b]]
