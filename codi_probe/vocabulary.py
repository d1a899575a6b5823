"""Words a tokenizer cannot represent: a word-level tokenizer (the tiny organisms') reads every word outside
its vocabulary as its unknown token, so the model answers a question it was never shown. Callers warn once
per run with the words (the CLI's ``run`` on stderr, the plugin in the report's warnings); a subword
tokenizer (GPT-2's BPE, LLaMA's) has no unknown token and never reports any.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SHOWN = 10  # unknown words named in a warning; the rest are counted


def unknown_words(tokenizer: Any, texts: Iterable[str]) -> list[str]:
    """The distinct words of ``texts`` that ``tokenizer`` maps to its unknown token, in first-seen order
    (empty when the tokenizer has no unknown token). Needs a fast tokenizer (character offsets)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None or not getattr(tokenizer, "is_fast", False):  # offsets need a fast tokenizer
        return []
    found: dict[str, None] = {}
    for text in texts:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        for token, (start, end) in zip(enc["input_ids"], enc["offset_mapping"]):
            if token == unk:
                found.setdefault(text[start:end], None)
    return list(found)


def describe_unknown(words: list[str]) -> str:
    """``'foo', 'bar' and 3 more`` for a one-line warning."""
    named = ", ".join(repr(w) for w in words[:SHOWN])
    return named + (f" and {len(words) - SHOWN} more" if len(words) > SHOWN else "")
