"""The one place that adapts to the installed transformers version.

transformers 5.x renamed the KV-cache argument of every model forward from ``past_key_values=`` to
``cache=`` (the old name is deprecated and removed in 5.40); 4.x only knows ``past_key_values=``.
:func:`cache_arg` passes the cache under the name the installed forward accepts, so the engine,
training and the reference loops in the tests run on both.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=None)
def _cache_name(forward_owner: type) -> str:
    params = inspect.signature(forward_owner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_arg(module: Any, cache: Any) -> dict[str, Any]:
    """``{"cache": cache}`` or ``{"past_key_values": cache}``, whichever ``module.forward`` accepts.

    ``module`` may be a PeftModel, whose forward takes ``**kwargs``: the name is read from the HF
    model it wraps."""
    target = module
    while hasattr(target, "get_base_model") and target.get_base_model() is not target:
        target = target.get_base_model()
    return {_cache_name(type(target)): cache}


def output_cache(out: Any) -> Any:
    """The cache a forward returned (``out.cache`` in newer transformers, ``out.past_key_values`` before)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values
