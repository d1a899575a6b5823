"""Canonical latent positions (claims.md section 1.3).

``P0`` is the BOT position (input: the BOT embedding; output ``h_0``). ``P1..P6`` are the six fed
latent positions: the input at ``P_k`` is ``e_k = prj(h_{k-1})`` and its output is ``h_k``. ``EOT``
follows ``P6``; answer inputs after it are ``A0, A1, ...`` (``A_j`` is the j-th answer token fed).
``e_7 = prj(h_6)`` is never fed, so there is no position for it: an intervention on it would be a
no-op by construction, and the API refuses to address it.
"""

from __future__ import annotations

from typing import Iterable

NUM_LATENT = 6
LATENT_POSITIONS: tuple[str, ...] = tuple(f"P{k}" for k in range(NUM_LATENT + 1))  # P0..P6
FED_POSITIONS: tuple[str, ...] = LATENT_POSITIONS[1:]  # P1..P6 carry fed latents e_1..e_6
TRACE_POSITIONS: tuple[str, ...] = (*LATENT_POSITIONS, "EOT")  # positions stored in a Trace (8)


def position_index(name: str) -> int:
    """Index of a traced position: P0..P6 → 0..6, EOT → 7. Raises a one-line ValueError otherwise."""
    try:
        return TRACE_POSITIONS.index(name)
    except ValueError:
        raise ValueError(f"unknown position {name!r}: use one of {', '.join(TRACE_POSITIONS)}") from None


def as_positions(positions: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise ``"P5"`` or ``["P1", "P5"]`` to a validated tuple."""
    names = (positions,) if isinstance(positions, str) else tuple(positions)
    if not names:
        raise ValueError("an intervention needs at least one position")
    for name in names:
        position_index(name)
    return names


def is_dead_cell(layer: int, position: str, n_layers: int, num_latent: int = NUM_LATENT) -> bool:
    """True for a module site of the **last block** at ``P_num_latent`` (P6): it can only change
    ``h_6``, which feeds ``e_7``, and ``e_7`` is never fed, so an intervention there is a no-op by
    construction (its cell of a layer x position grid would read as a finding). The engine refuses it."""
    return layer == n_layers - 1 and position != "EOT" and position_index(position) == num_latent


def live_positions(layer: int, positions: Iterable[str], n_layers: int, num_latent: int = NUM_LATENT) -> tuple[str, ...]:
    """``positions`` without the dead cell of :func:`is_dead_cell` at ``layer``."""
    return tuple(p for p in positions if not is_dead_cell(layer, p, n_layers, num_latent))
