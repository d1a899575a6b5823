"""The record of one batched CODI run.

Shapes use R = rows (one per question×variant), D = d_model, L = blocks, H = heads, V = resized vocab.
Positions are the 8 traced ones, P0..P6 then EOT (see ``positions.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .positions import LATENT_POSITIONS, TRACE_POSITIONS, position_index


@dataclass
class Trace:
    """Activations, answers and provenance of a batched run (all tensors on CPU).

    - ``sites[(site, layer)]``: ``[R, 8, D]`` for ``resid_post`` (block ``layer``'s output: equal to HF
      ``hidden_states[layer+1]`` for ``layer < L-1``; for the last block it is the *pre*-final-norm
      output), ``attn_out`` and ``mlp_out``, over positions P0..P6, EOT.
    - ``inputs``: ``[R, 8, D]`` embeddings fed at P0..P6, EOT (BOT embedding, e_1..e_6, EOT embedding).
    - ``latent_pre``: ``[R, 7, D]`` h_0..h_6, the last-layer post-final-norm states at P0..P6 (= HF
      ``hidden_states[L]``); ``prj`` reads these.
    - ``latent_post``: ``[R, 6, D]`` e_1..e_6 as fed at P1..P6 (after any intervention).
    - ``attn``: ``[R, L, H, Q, K]`` attention probabilities for queries P0..P6, EOT (plus teacher-forced
      answer queries), keys = every absolute sequence column (``key_column`` maps names to columns).
    - ``answer_logits[r]``: ``[steps, V]`` logits at every answer step (EOT first).
    """

    questions: list[str]
    row_question: list[int]
    interventions: list[tuple]
    prefix_len: int
    n_pad: list[int]
    question_ids: list[list[int]]  # the prompt ids: the question, then the variant's tokens (bcywinski: eos)
    padding: str
    num_latent: int = 6
    sites: dict[tuple[str, int], torch.Tensor] = field(default_factory=dict)
    inputs: torch.Tensor | None = None
    latent_pre: torch.Tensor | None = None
    latent_post: torch.Tensor | None = None
    attn: torch.Tensor | None = None
    question_resid: torch.Tensor | None = None  # [R, L, T, D] block outputs at question tokens
    answer_logits: list[torch.Tensor] = field(default_factory=list)
    answer_ids: list[list[int]] = field(default_factory=list)
    answer_text: list[str] = field(default_factory=list)
    answer: list[float | None] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.row_question)

    def key_column(self, position: str) -> int:
        """Absolute key column of a traced position (the same for every row: pads are on the left)."""
        k = position_index(position)
        if position == "EOT":
            return self.prefix_len + self.num_latent + 1
        if k > self.num_latent:
            raise ValueError(f"{position} does not exist in a run with {self.num_latent} latents")
        return self.prefix_len + k

    def value(self, site: str, layer: int | None, position: str, row: int) -> torch.Tensor:
        """The recorded activation ``[D]`` at (site, layer, position) of ``row``."""
        k = position_index(position)
        if site == "latent_pre_prj":
            return self.latent_pre[row, k - 1]
        if site == "latent_post_prj":
            return self.latent_post[row, k - 1]
        if (site, layer) not in self.sites:
            have = sorted({s for s, _ in self.sites})
            raise KeyError(f"the trace did not record {site} at layer {layer} (recorded sites: {have}); "
                           f"pass record=Record(sites=...) when making it")
        return self.sites[(site, layer)][row, k]

    def mean_value(self, site: str, layer: int | None, position: str, rows=None) -> torch.Tensor:
        rows = range(self.n_rows) if rows is None else rows
        return torch.stack([self.value(site, layer, position, r) for r in rows]).mean(0)

    def resid(self, layer: int) -> torch.Tensor:
        """``[R, 8, D]`` block ``layer`` output at P0..P6, EOT."""
        return self.sites[("resid_post", layer)]

    def latent_attention(self) -> torch.Tensor:
        """``[R, L, H, 7, 7]`` attention among P0..P6 (query row, key column); requires ``attn``."""
        if self.attn is None:
            raise ValueError("this trace holds no attention: run with Record(attention=True)")
        cols = [self.key_column(p) for p in LATENT_POSITIONS]
        return self.attn[:, :, :, : len(LATENT_POSITIONS)][..., cols]


__all__ = ["Trace", "TRACE_POSITIONS"]
