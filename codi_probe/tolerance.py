"""How close two floating-point results must be for the suite to call them equal, per dtype.

Why tolerances at all: a row of a batched matrix product is not guaranteed to be computed bit-identically
to the same row in another batch, another position of the batch, or another call shape. CPU kernels
(MKL, oneDNN, ATen's vectorised paths) block and accumulate rows differently depending on the batch
shape, the CPU's instruction set and its vendor, so two mathematically identical rows differ in their
last bits. The size of that difference is what these tolerances bound.

**Bit equality is kept only where it truly holds**: the same row of a repeated call with the same
batch layout (same shapes, same thread count, same process), where the kernels are deterministic. The
suite compares that way in its self-patch and identity controls and in SAN-14 (determinism).
**Discrete outcomes are exact**: greedy token ids and parsed answers are compared with ``==``; the only
exception is a genuine tie, a first diverging step whose top-two logit margin in the reference row is
within the logit tolerance, where the argmax is not decided by the model but by round-off
(:func:`tokens_agree` reports it).

Error model behind the numbers (unit round-off ``u``: fp32 2^-24 ≈ 6e-8, fp16 2^-11 ≈ 4.9e-4, bf16
2^-8 ≈ 3.9e-3). A dot product of length K accumulated in another order differs by about ``sqrt(K)·u``
relative to the magnitude of its terms (random-walk rounding); a CODI run chains ``L`` blocks for the
question and then 8 sequential steps (P0..P6, EOT) each of which feeds the previous output back
(through ``prj``), with LayerNorm/RMSNorm after every block keeping activations O(1). For GPT-2-124M
(K up to 3072, L = 12) this gives ~3e-6 relative per matmul and, compounded over ~100 dependent matmuls,
~1e-5 relative at the answer; the tolerances allow a further factor of ~10 so that they hold on any
CPU without hiding a real defect: a real defect (an intervention applied one layer off, a dropped
mask) moves states by 1e-2 to 1 relative, three orders of magnitude above the fp32 tolerance. Reduced
precision rounds every stored activation: bf16 states carry ~4e-3 relative error each and batched-vs-
alone runs measured up to 1.4e-2 relative on padded rows, so the bf16 tolerance is 8 bf16 ulps at 1.

Units: ``states`` tolerances apply to hidden states and logits (``|a − b| ≤ atol + rtol·|b|``
elementwise, as :func:`torch.allclose`); ``kl`` tolerances are in nats (KL summed over the vocabulary,
computed in float64 from the two runs' logits). A KL tolerance follows from the logit tolerance:
if every logit differs by at most δ then ``|log p − log q| ≤ 2δ`` and ``KL ≤ 2δ²``; with the fp32
logit budget δ ≈ 2e-4 that is 8e-8, rounded to 1e-7.

The comparison kinds the suite makes (every one uses the same per-dtype numbers, since each is a
reordering of the same kernels; the kind is recorded so that a report says what was compared):
``batch_vs_alone`` (a row in a batch vs the question run alone), ``cached_vs_recompute`` (the KV-cached
loop vs one forward over the whole sequence), ``noop_vs_clean`` (an identity intervention vs a clean
row of the same batch), ``self_patch_kl`` (KL between a run and the run patched with its own values),
``null_kl`` (a null method of a design, e.g. zero noise, vs clean).

A *positive* control asks the opposite: did an intervention change something beyond round-off? It
compares states or logits (``deviation > 1``), never a KL against the KL tolerance: a confident
model's KL under a real but small change can be far below ``kl`` (KL scales with ``1 − p_top``), while
a moved logit is visible at any confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

COMPARISONS = ("batch_vs_alone", "cached_vs_recompute", "noop_vs_clean", "self_patch_kl", "null_kl")


@dataclass(frozen=True)
class Tolerance:
    """``atol``/``rtol`` for states and logits (their own units), ``kl`` in nats, for one dtype."""

    dtype: str
    atol: float
    rtol: float
    kl: float

    def deviation(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """The largest ``|a − b| / (atol + rtol·|b|)``: ≤ 1 means within tolerance."""
        a, b = a.detach().double(), b.detach().double()
        if a.shape != b.shape:
            raise ValueError(f"cannot compare shapes {list(a.shape)} and {list(b.shape)}")
        if a.numel() == 0:
            return 0.0
        return float(((a - b).abs() / (self.atol + self.rtol * b.abs())).max())

    def close(self, a: torch.Tensor, b: torch.Tensor) -> bool:
        return self.deviation(a, b) <= 1.0

    def margin(self, logits: torch.Tensor) -> float:
        """The logit tolerance at the scale of ``logits`` (used to recognise a genuine tie)."""
        return self.atol + self.rtol * float(logits.double().abs().max())


TOLERANCES: dict[str, Tolerance] = {
    "float32": Tolerance("float32", atol=1e-4, rtol=1e-4, kl=1e-7),
    "float16": Tolerance("float16", atol=1e-2, rtol=1e-2, kl=1e-3),
    "bfloat16": Tolerance("bfloat16", atol=6.25e-2, rtol=6.25e-2, kl=2e-2),
}


def tolerance(dtype: torch.dtype | str, comparison: str = "batch_vs_alone") -> Tolerance:
    """The tolerance for ``comparison`` (one of :data:`COMPARISONS`) of results computed in ``dtype``."""
    if comparison not in COMPARISONS:
        raise ValueError(f"unknown comparison {comparison!r}: use one of {', '.join(COMPARISONS)}")
    name = str(dtype).removeprefix("torch.")
    if name not in TOLERANCES:
        raise ValueError(f"no tolerance for dtype {name!r}: use one of {', '.join(TOLERANCES)}")
    return TOLERANCES[name]


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a − b|`` in float64 (0 for empty tensors): the deviation a claim record reports."""
    if a.numel() == 0:
        return 0.0
    return float((a.detach().double() - b.detach().double()).abs().max())


@dataclass(frozen=True)
class TokenAgreement:
    """Whether two greedy token sequences agree; ``tie_at`` is the step of a divergence excused as a tie."""

    agree: bool
    tie_at: int | None = None


def tokens_agree(ids: Sequence[int], ref_ids: Sequence[int], ref_logits: torch.Tensor | None,
                 tol: Tolerance) -> TokenAgreement:
    """Greedy tokens are compared exactly. The one excused divergence is a tie: at the first differing
    step the reference's top-two logits (``ref_logits[step]``, restricted to the decoded slice) differ by
    no more than twice the logit tolerance, so round-off, not the model, picked the argmax. Everything
    after such a step depends on that choice and is not compared."""
    ids, ref_ids = list(ids), list(ref_ids)
    if ids == ref_ids:
        return TokenAgreement(True)
    step = next((i for i, (a, b) in enumerate(zip(ids, ref_ids)) if a != b), min(len(ids), len(ref_ids)))
    if ref_logits is None or step >= len(ref_logits) or step >= min(len(ids), len(ref_ids)):
        return TokenAgreement(False)
    row = ref_logits[step].double()
    gap = float(row[ref_ids[step]] - row[ids[step]])
    return TokenAgreement(abs(gap) <= 2 * tol.margin(row), step if abs(gap) <= 2 * tol.margin(row) else None)


__all__ = ["COMPARISONS", "TOLERANCES", "TokenAgreement", "Tolerance", "max_abs", "tokens_agree", "tolerance"]
