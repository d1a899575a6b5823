"""Turn measured values (numpy, torch, dataclasses, ...) into plain JSON types."""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from collections.abc import Mapping
from typing import Any


def to_plain(value: Any) -> Any:
    """A JSON-safe copy of ``value``: dict/list/str/int/float/bool/None only.

    numpy scalars and arrays, torch tensors (anything with ``tolist``) become Python numbers and
    lists; tuples and sets become lists (sets sorted); non-finite floats become ``None`` (JSON has
    no NaN); unknown objects become their ``str``. Never imports numpy or torch.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((to_plain(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "detach"):  # torch.Tensor: leave the graph and the device first
        value = value.detach().cpu()
    if hasattr(value, "tolist"):  # numpy scalar/array, torch tensor
        return to_plain(value.tolist())
    if hasattr(value, "item"):
        return to_plain(value.item())
    return str(value)


def to_float(value: Any, what: str = "value") -> float | None:
    """``value`` as a float; ``None`` for ``None``, NaN and inf; ``TypeError`` for non-numbers."""
    plain = to_plain(value)
    if isinstance(plain, list) and len(plain) == 1:  # a one-element tensor or array
        plain = plain[0]
    if plain is None:  # None, NaN or inf
        return None
    if isinstance(plain, bool) or not isinstance(plain, (int, float)):
        raise TypeError(f"{what}: expected a number, got {value!r}")
    return float(plain)
