"""Logit-lens read-outs of the latents h_0..h_6 (positions P0..P6), shared by the lens and dynamics claims.

The lens at P_k is ``lm_head(h_k)`` with ``h_k = trace.latent_pre[:, k]``, the last block's post-final-norm
state (the final norm applied exactly once: SAN-09, F-21). A decoded token matches a value only as an
exact string (F-20): ``number_text(v)`` against the stripped token text, never a substring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch

from ..engine.positions import LATENT_POSITIONS
from ..hypothesis import Evidence, Prediction
from .common import number_text

NUMBER = re.compile(r"[-+]?\d[\d,]*(\.\d+)?")
TOP_K = 10  # the widest top-k any lens claim reads (LENS-08 detection is robust for top-k 1..10)


def is_number(word: str) -> bool:
    """The stripped token text is a number (digits, optional sign, thousands commas and decimals)."""
    return bool(NUMBER.fullmatch(word.strip()))


@dataclass
class LensReadout:
    """The lens at P0..P6 for every row of a trace.

    - ``words[i][k]``: the top ``TOP_K`` decoded tokens (stripped text, best first) of row ``i`` at P_k;
    - ``entropy``: ``[n, 7]`` entropy of the lens distribution in nats;
    - ``probability[name]``: ``[n, 7]`` lens probability of each row's value ``name`` (summed over its
      single-token spellings; NaN where the value has none, so its probability is undefined).
    """

    words: list[list[list[str]]]
    entropy: np.ndarray
    probability: dict[str, np.ndarray]

    @property
    def n(self) -> int:
        return len(self.words)

    def in_top(self, values: Sequence[float | str | None], k: int) -> np.ndarray:
        """``[n, 7]`` bool: the row's value is among the top-``k`` tokens at P_k (exact text; a missing value
        never matches)."""
        if not 1 <= k <= TOP_K:
            raise ValueError(f"top-k must lie in 1..{TOP_K}, got {k}")
        return np.array([[v is not None and number_text(v) in row[:k] for row in rows]
                         for rows, v in zip(self.words, values)], dtype=bool)

    def number_top1(self) -> np.ndarray:
        """``[n, 7]`` bool: the top-1 token at P_k is a number."""
        return np.array([[is_number(row[0]) for row in rows] for rows in self.words], dtype=bool)


def lens_readout(engine, trace, values: Mapping[str, Sequence[float | str | None]] | None = None) -> LensReadout:
    """The lens of every row of ``trace`` at P0..P6 (one lm_head call per position); ``values`` names the
    per-row values whose probabilities to keep (e.g. ``{"step1": [...]}``)."""
    model = engine.model
    values = dict(values or {})
    ids = {name: [[] if v is None else value_token_ids(model.tokenizer, v) for v in vals]
           for name, vals in values.items()}
    words, ent = [], []
    prob = {name: np.full((trace.n_rows, len(LATENT_POSITIONS)), np.nan) for name in values}
    for k in range(len(LATENT_POSITIONS)):
        h = trace.latent_pre[:, k].to(model.device, model.base_dtype)
        lp = torch.log_softmax(engine.logits(h).float().cpu(), -1)
        ent.append(-(lp.exp() * lp).sum(-1).numpy())
        top = lp.topk(TOP_K, -1).indices
        words.append([[engine.decode([int(t)]).strip() for t in row] for row in top])
        for name, per_row in ids.items():
            for i, tok in enumerate(per_row):
                if tok:
                    prob[name][i, k] = float(lp[i, tok].exp().sum())
    return LensReadout(words=[[words[k][i] for k in range(len(LATENT_POSITIONS))] for i in range(trace.n_rows)],
                       entropy=np.stack(ent, 1), probability=prob)


def value_token_ids(tokenizer, value: float | str) -> list[int]:
    """The single-token spellings of a value (``"8"`` and ``" 8"``, where each is one token); empty when the
    value never is one token (its probability under the lens is then undefined)."""
    text = number_text(value)
    out = []
    for spelling in (text, " " + text):
        tok = tokenizer.encode(spelling, add_special_tokens=False)
        if len(tok) == 1 and tok[0] not in out:
            out.append(tok[0])
    return out


LENS10_TOP_K = 5  # claims.md LENS-10 reads "top-k(h_k)": k = 5, the CODI paper's decodability criterion (LENS-05)
LENS10_ABSENT = 0.10  # claims.md LENS-10: the answer in the top-k for <= 10% of prompts at every k
LENS10_FOUND = 0.5  # "while step1/step2 are found (LENS-02)": in the top-k at P2 / P4 for most problems
LENS10_FOUND_AT = {"step1": "P2", "step2": "P4"}  # LENS-02's positions (h_2, h_4)


def lens10_predictions(k: int = LENS10_TOP_K) -> tuple[Prediction, ...]:
    """LENS-10's predictions: the answer below ``LENS10_ABSENT`` in the lens top-``k`` at every position
    P0..P6, while step1 (at P2) and step2 (at P4) are above ``LENS10_FOUND``: both halves can be refuted,
    so a lens that reads nothing (every rate 0) refutes the claim instead of supporting it."""
    return (*(Prediction(f"answer in the lens top-{k} at {p}", "less", LENS10_ABSENT) for p in LATENT_POSITIONS),
            *(Prediction(f"{name} in the lens top-{k} at {p}", "greater", LENS10_FOUND)
              for name, p in LENS10_FOUND_AT.items()))


def lens10_evidence(top: Mapping[str, np.ndarray], predictions: Sequence[Prediction]) -> list[Evidence]:
    """The evidence of :func:`lens10_predictions` from ``top[name]``, ``[n, 7]`` bool (the value is in the
    lens top-k at P0..P6; ``LensReadout.in_top``) for ``answer``, ``step1`` and ``step2``. The answer's
    highest-rate position comes first (the primary statistic the report shows)."""
    from .. import stats

    out = []
    for pred in predictions:
        name, pos = pred.statistic.split(" ", 1)[0], pred.statistic.rsplit(" at ", 1)[1]
        m = np.asarray(top[name], dtype=bool)[:, LATENT_POSITIONS.index(pos)]
        out.append(stats.proportion_evidence(int(m.sum()), len(m), pred))
    answer = [e for e in out if e.statistic.startswith("answer")]
    worst = max(answer, key=lambda e: e.value)
    return [worst] + [e for e in out if e is not worst]


def affine_lens_hits(h: np.ndarray, targets: np.ndarray, unembed: np.ndarray, groups: np.ndarray, *,
                     shared: bool, seed: int = 0, folds: int = 5) -> np.ndarray:
    """``[n, K]`` held-out top-1 hits of a tuned (affine) lens that decodes ``targets`` (token ids, one per
    problem) from ``h`` ``[n, K, D]`` (the latents at K positions).

    The lens maps a standardised latent to the target token's unembedding row (ridge regression), then
    decodes by the highest score among the target tokens the data use. ``shared``: one map for every
    position; else one map per position (the position-specific tuned lens of LENS-11). Folds hold out
    whole ``groups``."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n, k, d = h.shape
    cands = np.unique(targets)
    u = unembed[cands]  # [C, D]
    hits = np.zeros((n, k), dtype=bool)
    for train, test in GroupKFold(n_splits=min(folds, len(np.unique(groups)))).split(h, targets, groups):
        maps = ([make_pipeline(StandardScaler(), Ridge(alpha=1.0, random_state=seed)).fit(
                    h[train].reshape(-1, d), unembed[np.repeat(targets[train], k)])] * k if shared else
                [make_pipeline(StandardScaler(), Ridge(alpha=1.0, random_state=seed)).fit(h[train, j], unembed[targets[train]])
                 for j in range(k)])
        for j in range(k):
            pred = cands[(maps[j].predict(h[test, j]) @ u.T).argmax(1)]
            hits[test, j] = pred == targets[test]
    return hits


__all__ = ["LENS10_ABSENT", "LENS10_FOUND", "LENS10_FOUND_AT", "LENS10_TOP_K", "LensReadout", "NUMBER", "TOP_K",
           "affine_lens_hits", "is_number", "lens10_evidence", "lens10_predictions", "lens_readout",
           "value_token_ids"]
