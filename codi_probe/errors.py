"""How codi-probe turns an exception into the one line a user reads."""

from __future__ import annotations


def first_line(error: BaseException) -> str:
    """The first line of the exception's message, or its type name when the message is empty."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
