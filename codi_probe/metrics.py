"""Output metrics, per row (one value per problem/variant), computed in log space.

KL uses a **sum over the vocabulary** for each row: ``kl_div(..., reduction="batchmean")`` on a 1-D
vocabulary tensor divides by the vocabulary size, which is the F-04 artifact that made every seed KL
read ≈ 0. Read it at a stated answer token (``answer_readout_index``), never at the format token "The".
"""

from __future__ import annotations

import math
from typing import Sequence

import torch


def _as_2d(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 1:
        return x.unsqueeze(0)
    if x.dim() != 2:
        raise ValueError(f"expected logits of shape [V] or [R, V], got {list(x.shape)}")
    return x


def kl_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """``KL(P‖Q)`` in nats per row, summed over the vocabulary; P is the reference (clean) run."""
    return kl_from_reference(reference_log_probs(p_logits), q_logits)


def reference_log_probs(p_logits: torch.Tensor) -> torch.Tensor:
    """``(log P, P)`` of reference logits, float64, ``[2, R, V]``: computed once when one reference is
    compared with many conditions (:func:`kl_from_reference`)."""
    logp = torch.log_softmax(_as_2d(p_logits).double(), -1)
    return torch.stack([logp, logp.exp()])


def kl_from_reference(reference: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """:func:`kl_divergence` with the reference given as :func:`reference_log_probs` (the same arithmetic)."""
    logp, p = reference
    q = _as_2d(q_logits).double()
    if logp.shape != q.shape:
        raise ValueError(f"logit shapes differ: {list(logp.shape)} vs {list(q.shape)}")
    return (p * (logp - torch.log_softmax(q, -1))).sum(-1).clamp(min=0.0)


def js_divergence(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Jensen–Shannon *divergence* in nats per row (not scipy's JS distance, which is its square root)."""
    p, q = _as_2d(p_logits).double(), _as_2d(q_logits).double()
    logp, logq = torch.log_softmax(p, -1), torch.log_softmax(q, -1)
    logm = torch.logsumexp(torch.stack([logp, logq]), 0) - math.log(2.0)
    kl_pm = (logp.exp() * (logp - logm)).sum(-1)
    kl_qm = (logq.exp() * (logq - logm)).sum(-1)
    return (0.5 * (kl_pm + kl_qm)).clamp(min=0.0)


def logit_difference(logits: torch.Tensor, good: int | Sequence[int], bad: int | Sequence[int]) -> torch.Tensor:
    """``logit[good] − logit[bad]`` per row (e.g. the clean vs the corrupted answer's first number token)."""
    x = _as_2d(logits)
    rows = torch.arange(x.shape[0])
    g = torch.as_tensor(good).expand(x.shape[0]) if not isinstance(good, int) else torch.full((x.shape[0],), good)
    b = torch.as_tensor(bad).expand(x.shape[0]) if not isinstance(bad, int) else torch.full((x.shape[0],), bad)
    return x[rows, g] - x[rows, b]


def answer_logprob(target_logprobs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Total log-probability of each row's teacher-forced answer tokens."""
    return torch.stack([lp.double().sum() for lp in target_logprobs])


def accuracy(predictions: Sequence[float | None], golds: Sequence[float | None]) -> float:
    """Fraction of rows whose parsed answer equals the gold (official float equality; None is wrong)."""
    from .data.answers import answers_match

    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} golds")
    if not golds:
        raise ValueError("accuracy of an empty set is undefined")
    return sum(answers_match(p, g) for p, g in zip(predictions, golds)) / len(golds)


def answer_readout_index(tokenizer, target_ids: Sequence[int], number: str) -> int:
    """Index into teacher-forced ``target_ids`` of the first token of the final occurrence of ``number``
    as a whole number: not inside a longer one ("8" is not found in "18", "80" or "8.5"; "-8" is
    "8" preceded by a minus sign and counts).

    Logits at that index (in ``Trace.answer_logits``) predict the first answer-number token: the
    readout for KL / logit difference (F-04, F-10), rather than the format token "The"."""
    import re

    full = tokenizer.decode(list(target_ids))
    hits = list(re.finditer(rf"(?<![\d.]){re.escape(number)}(?!\.?\d)", full))
    if not hits:
        raise ValueError(f"{number!r} does not occur as a whole number in the target {full!r}")
    at = hits[-1].start()
    for i in range(len(target_ids)):
        if len(tokenizer.decode(list(target_ids[: i + 1]))) > at:
            return i
    raise AssertionError("unreachable: the decoded prefix must pass the match")  # pragma: no cover
