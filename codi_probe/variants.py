"""CODI loop variants as data: one declarative row per variant (pyvene style, like :mod:`codi_probe.arch`).

The engine (:mod:`codi_probe.engine.loop`) and the loader (:mod:`codi_probe.loading`) read these rows;
no second copy of the loop exists. Both variants share the skeleton of codi-spec section 3: a prefill of
the prompt, P0 = the last-layer post-final-norm state at the BOT token, six fed latents
``e_k = prj(h_{k-1})`` (the seventh projection is never fed), the EOT embedding, then greedy decoding
over ``logits[:, :vocab-1]`` (only the last id, EOT, excluded) until a stop id, which is kept.

``official`` (zen-E checkpoints, codi-spec 1-6): the question is normalised (strip, double spaces),
tokenised with the tokenizer's own special tokens and followed by BOT alone; PAD/BOT/EOT are V, V+1, V+2
of the base vocabulary V; the answer reads "The answer is: N".

``bcywinski`` (the CYW repository's checkpoints, codi-spec 7 and the CYW ``generate``): the question is
tokenised exactly as given, then ``eos`` and ``<|bocot|>`` follow in the same prompt; EOT is the embedding of
``<|eocot|>``; PAD/BOT/EOT are the ids the checkpoint's own tokenizer gives ``[PAD]``/``<|bocot|>``/
``<|eocot|>`` (V, V+1, V+2 there too); the vocabulary is resized to ``len(tokenizer)``; decoding stops
at the tokenizer's ``eos_token_id`` only; the answer is a bare number (the last number in the text).
Every tensor is stored in bf16. Its evaluation appends ``problem_suffix`` to GSM8K-style questions:
that belongs to the problem set (:func:`codi_probe.experiments.problems.for_variant`), never to the loop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoopVariant:
    """What differs between CODI loop variants; the engine reads it, so each row is the whole story.

    ``after_question``: roles of the tokens fed after the question tokens in the prompt prefill, before the
    BOT step (``"eos"``: the first stop id). ``bot_token``/``eot_token``: the token text of BOT/EOT in the
    checkpoint's tokenizer, or None where they are arithmetic (V+1, V+2). ``special_ids``: where
    PAD/BOT/EOT come from (``"arithmetic"`` or ``"tokenizer"``). ``resize``: the vocabulary after resizing
    (``"base+3"`` or ``"tokenizer"``, i.e. ``len(tokenizer)``). ``stop``: the stop ids (``"config"``: the
    model config's eos ids, e.g. LLaMA Instruct's 128009 and 128001; ``"tokenizer"``: the tokenizer's
    ``eos_token_id`` alone). ``storage``: the dtypes of the released files (``"mixed"``: bf16 base, fp32
    LoRA and prj; ``"bf16"``: everything). ``lora_alpha``: the value assumed when the user gives none (the
    files do not store it). ``tokenizer``: where the tokenizer comes from (``"base"``: the base family's,
    or ``"checkpoint"``: the checkpoint directory).
    """

    name: str
    after_question: tuple[str, ...]
    bot_token: str | None
    eot_token: str | None
    special_ids: str
    resize: str
    normalize_question: bool
    answer_format: str
    stop: str
    storage: str
    lora_alpha: int
    tokenizer: str
    problem_suffix: str = ""
    source: str = ""

    def describe(self) -> str:
        """One line for ``codi-probe info``: the prompt, EOT, stop rule and answer format."""
        prompt = " + ".join(["question" + ("" if self.normalize_question else " (as given)"),
                             *self.after_question, self.bot_token or "BOT(V+1)"])
        return (f"{self.name}: prompt = {prompt}; EOT = {self.eot_token or 'EOT(V+2)'}; stop at "
                f"{'the tokenizer eos' if self.stop == 'tokenizer' else 'the config eos ids'}; answer "
                f"{self.answer_format.format('N')!r}; stored {self.storage}")


OFFICIAL = LoopVariant(
    name="official", after_question=(), bot_token=None, eot_token=None, special_ids="arithmetic",
    resize="base+3", normalize_question=True, answer_format="The answer is: {}", stop="config", storage="mixed",
    lora_alpha=32, tokenizer="base", source="zen-E/CODI-gpt2, zen-E/CODI-llama3.2-1b-Instruct (codi-spec 1-6)")

BCYWINSKI = LoopVariant(
    name="bcywinski", after_question=("eos",), bot_token="<|bocot|>", eot_token="<|eocot|>",
    special_ids="tokenizer", resize="tokenizer", normalize_question=False, answer_format="{}", stop="tokenizer",
    storage="bf16", lora_alpha=32, tokenizer="checkpoint",
    problem_suffix=" Output only the answer and nothing else.",
    source="bcywinski/codi_llama1b-answer_only, bcywinski/codi_llama1b_gsm8k-strategyqa-commonsense "
           "(codi-spec 7; gregkocher/codi src/model.py generate, test.py)")

VARIANTS: dict[str, LoopVariant] = {v.name: v for v in (OFFICIAL, BCYWINSKI)}


def variant(name: str) -> LoopVariant:
    """The row named ``name``; a one-line error naming the known ones otherwise."""
    if name not in VARIANTS:
        raise ValueError(f"unknown loop variant {name!r} (known: {', '.join(VARIANTS)})")
    return VARIANTS[name]


__all__ = ["BCYWINSKI", "LoopVariant", "OFFICIAL", "VARIANTS", "variant"]
