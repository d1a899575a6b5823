"""A small FLOP model of both loops (multiply-add = 2 FLOPs; norms, softmax and LoRA ignored).

Per token at context length ``ctx``: every block does the Q/K/V/O projections
(``2·d·(d + 2·kv) + 2·d·d``), the MLP (``2·m·d·d_ff``, m = 2 for GPT-2, 3 for gated LLaMA) and
attention scores plus the weighted sum (``4·d·ctx``); the lm_head adds ``2·d·V`` where logits are
computed. The naive loop computes logits at every token; the engine only at answer steps it reads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    d_model: int
    n_layers: int
    d_ff: int
    n_heads: int
    n_kv_heads: int
    vocab: int
    gated: bool  # LLaMA-style gate/up/down MLP

    @classmethod
    def of(cls, model) -> "Shape":
        c = model.lm.config
        d = c.hidden_size
        d_ff = getattr(c, "intermediate_size", None) or getattr(c, "n_inner", None) or 4 * d
        kv = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
        return cls(d, c.num_hidden_layers, d_ff, c.num_attention_heads, kv, model.vocab_size,
                   c.model_type == "llama")

    def token(self, ctx: int) -> float:
        """Backbone FLOPs of one token attending to ``ctx`` keys."""
        d, kv = self.d_model, self.d_model * self.n_kv_heads // self.n_heads
        per_layer = 2 * d * (d + 2 * kv) + 2 * d * d + 2 * (3 if self.gated else 2) * d * self.d_ff + 4 * d * ctx
        return self.n_layers * per_layer

    @property
    def head(self) -> float:
        return 2.0 * self.d_model * self.vocab

    def span(self, start: int, n: int, logits: bool) -> float:
        """FLOPs of ``n`` tokens at positions ``start..start+n-1`` (context = position + 1)."""
        return sum(self.token(start + i + 1) + (self.head if logits else 0.0) for i in range(n))


N_LATENT_STEPS = 7  # P0 (BOT) and P1..P6


def naive(shape: Shape, t: int, answer: int) -> float:
    """One naive intervention: prefix + 7 latent steps + ``answer`` answer calls, lm_head everywhere."""
    return shape.span(0, t + N_LATENT_STEPS + answer, logits=True)


def engine(shape: Shape, t: int, answer: int, rows_per_question: int, first_step: float = 0.0,
           answer_logits: int | None = None) -> float:
    """Engine work per row: the prefix amortised over the question's rows, the latent steps from
    ``first_step`` (0 without trunk sharing; the mean first intervened step with it, plus the trunk
    amortised), ``answer`` answer tokens with lm_head on ``answer_logits`` of them (default all)."""
    latent = shape.span(t, N_LATENT_STEPS, logits=False)
    shared = latent * first_step / N_LATENT_STEPS
    trunk = shared / rows_per_question if first_step else 0.0
    heads = answer if answer_logits is None else answer_logits
    return (shape.span(0, t, logits=False) / rows_per_question + latent - shared + trunk
            + shape.span(t + N_LATENT_STEPS, answer, logits=False) + heads * shape.head)
