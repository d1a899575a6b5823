"""Training CODI models: the official objective (codi-spec section 4), a resumable loop, and the
two-stage recipe of the tiny model organism ``codi-tiny-arith``.

Imports are lazy so that ``import codi_probe.train`` stays cheap (the CLI imports it to register
arguments)."""

from __future__ import annotations

__all__ = ["ORGANISM", "Recipe", "train_organism", "codi_losses", "student_forward", "distill_loss",
           "codi_from_base", "train_loop", "LoopConfig", "measure_bars"]

_WHERE = {
    "ORGANISM": "recipe", "Recipe": "recipe", "train_organism": "recipe",
    "codi_losses": "losses", "student_forward": "losses", "distill_loss": "losses",
    "codi_from_base": "build", "train_loop": "loop", "LoopConfig": "loop", "measure_bars": "evaluate",
}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(name)
