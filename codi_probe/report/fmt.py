"""Short text for numbers, intervals and nested values (shared by the tables and ``compare``)."""

from __future__ import annotations

import json
from typing import Any


def num(value: Any, digits: int = 4) -> str:
    """``0.1235``, ``1.2e-05``, ``n/a`` for None; other values as ``str``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def interval(ci: dict[str, Any] | None) -> str:
    """``[lo, hi]`` of a CI record, or ``""``."""
    if not ci:
        return ""
    return f"[{num(ci.get('lo'))}, {num(ci.get('hi'))}]"


def value_ci(rec: dict[str, Any]) -> str:
    """``value [lo, hi]`` of a claim (or baseline) record."""
    return " ".join(part for part in (num(rec.get("value")), interval(rec.get("ci"))) if part)


def plain(value: Any) -> str:
    """A reported value: numbers short, text as is, structures as compact ``key: value`` lists."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(plain(v) for v in value) + "]"
    if isinstance(value, str):
        return value
    return num(value)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "), default=str)
