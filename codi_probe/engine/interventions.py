"""What to do to an activation, and where (pyvene style: *where* is separate from *what*).

An :class:`Intervention` addresses ``(site, layer, positions)``; its ``op`` maps the activation
``x`` (shape ``[D]``, one row at one position) to a new vector. Sites:

- ``resid_post``: output of block ``layer`` (= HF ``hidden_states[layer+1]`` for layer < L-1);
- ``attn_out`` / ``mlp_out``: the attention / MLP module output inside block ``layer``;
- ``attn_z``: the input of block ``layer``'s attention output projection (``c_proj`` / ``o_proj``): the
  heads' outputs concatenated, head ``h`` at ``[h·d_head, (h+1)·d_head)`` (TransformerLens ``hook_z``,
  flattened); :class:`AblateHeads` edits single heads there;
- ``latent_pre_prj``: ``h_{k-1}``, the last-layer post-norm state about to be projected into ``e_k``
  (addressed by the position it feeds, ``P1..P6``; no layer);
- ``latent_post_prj``: ``e_k`` itself, fed at ``P_k`` (``P1..P6``; no layer);
- ``attn_knockout``: block attention from the query positions to ``keys`` (all layers, all heads).

Interventions compose: several on one row apply in list order, inside the forward pass.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

import torch

from .positions import FED_POSITIONS, LATENT_POSITIONS, TRACE_POSITIONS, as_positions, position_index

if TYPE_CHECKING:  # pragma: no cover
    from .trace import Trace

MODULE_SITES = ("resid_post", "attn_out", "mlp_out", "attn_z")
LATENT_SITES = ("latent_pre_prj", "latent_post_prj")
SITES = (*MODULE_SITES, *LATENT_SITES, "attn_knockout")


class Op:
    """Maps one activation vector ``x`` [D] at (site, layer, position). ``key`` identifies the row's
    problem (:func:`~codi_probe.engine.hooks.question_key`), so random ops draw per problem."""

    def __call__(self, x: torch.Tensor, *, site: str, layer: int | None, position: str, key: int = 0) -> torch.Tensor:
        raise NotImplementedError

    def check(self, *, site: str, layer: int | None, positions: tuple[str, ...], width: int) -> None:
        """Raise a one-line ValueError (what was expected) when the op cannot apply at ``site`` of block
        ``layer`` at ``positions``, whose activations have ``width`` dims. Called by the engine before any
        forward pass; the default accepts every site."""


def _check_width(what: str, vector: torch.Tensor, width: int, *, broadcast: bool = False) -> None:
    """``vector`` must be ``[width]`` (``broadcast``: or one value, ``[]`` or ``[1]``, added to every dim)."""
    ok = isinstance(vector, torch.Tensor) and (vector.shape == (width,) or broadcast and vector.numel() == 1
                                               and vector.dim() <= 1)
    if not ok:
        got = tuple(vector.shape) if isinstance(vector, torch.Tensor) else type(vector).__name__
        raise ValueError(f"{what} has shape {got}, expected a vector of width ({width},)")


def _check_rows(trace: "Trace", rows, what: str) -> None:
    for row in rows:
        if not 0 <= row < trace.n_rows:
            raise ValueError(f"{what} row {row} is out of range: the trace has rows 0..{trace.n_rows - 1}")


def _check_recorded(trace: "Trace", site: str, layer: int | None, what: str) -> None:
    if site in MODULE_SITES and (site, layer) not in trace.sites:
        have = sorted({f"{s}@{l}" for s, l in trace.sites})
        raise ValueError(f"{what} did not record {site} at layer {layer} (recorded: {', '.join(have) or 'none'}); "
                         f"make it with record=Record(sites=(..., {site!r}))")


@dataclass(frozen=True)
class Identity(Op):
    """Returns ``x`` unchanged (the null control of every site)."""

    def __call__(self, x, **_):
        return x


@dataclass(frozen=True)
class Zero(Op):
    def __call__(self, x, **_):
        return torch.zeros_like(x)


@dataclass(frozen=True)
class Scale(Op):
    factor: float

    def __call__(self, x, **_):
        return x * self.factor


@dataclass(frozen=True)
class Add(Op):
    vector: torch.Tensor

    def __call__(self, x, **_):
        return x + self.vector.to(x)

    def check(self, *, width, **_):
        _check_width("the vector", self.vector, width, broadcast=True)


@dataclass(frozen=True)
class Set(Op):
    """Replace ``x`` by a fixed vector, or by a per-position vector from a mapping."""

    value: torch.Tensor | Mapping[str, torch.Tensor]

    def __call__(self, x, *, position, **_):
        v = self.value[position] if isinstance(self.value, Mapping) else self.value
        return v.to(x).clone()

    def check(self, *, positions, width, **_):
        if not isinstance(self.value, Mapping):
            _check_width("the value", self.value, width)
            return
        for pos in positions:
            if pos not in self.value:
                raise ValueError(f"the value mapping has no vector for {pos} (it has {', '.join(map(str, self.value))})")
            _check_width(f"the value at {pos}", self.value[pos], width)


@dataclass(frozen=True)
class Noise(Op):
    """Add Gaussian noise. ``relative``: per-element std ``sigma·‖x‖/√D`` so that ``E‖ε‖ ≈ sigma·‖x‖``;
    otherwise absolute per-element std ``sigma``. Seeded per (seed, problem, site, layer, position):
    every problem draws its own noise, and a draw is the same whatever the batch composition. Vary
    ``seed`` for repeated draws on one problem."""

    sigma: float
    relative: bool = False
    seed: int = 0

    def __call__(self, x, *, site, layer, position, key=0):
        gen = torch.Generator().manual_seed(zlib.crc32(f"{self.seed}|{key}|{site}|{layer}|{position}".encode()))
        eps = torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x)
        scale = self.sigma * (x.float().norm() / x.numel() ** 0.5).to(x) if self.relative else self.sigma
        return x + eps * scale


@dataclass(frozen=True)
class Randomize(Op):
    """Replace ``x`` by a seeded random Gaussian direction with the same L2 norm (a norm-matched
    random control, COR-04/IMP-13), drawn per (seed, problem, site, layer, position) like :class:`Noise`."""

    seed: int = 0

    def __call__(self, x, *, site, layer, position, key=0):
        gen = torch.Generator().manual_seed(zlib.crc32(f"rand|{self.seed}|{key}|{site}|{layer}|{position}".encode()))
        r = torch.randn(x.shape, generator=gen, dtype=torch.float32).to(x)
        return r * (x.float().norm() / r.float().norm().clamp(min=1e-12)).to(x)


@dataclass(frozen=True)
class Patch(Op):
    """Take the value recorded at the same (site, layer, position) in ``source`` row ``row``.

    Clean→corrupted patching, replacement from another problem, and self-patching (identity) are all
    this op. With ``position_map`` the value comes from another position (position shuffle)."""

    source: "Trace"
    row: int
    position_map: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, x, *, site, layer, position, **_):
        src = self.position_map.get(position, position)
        return self.source.value(site, layer, src, self.row).to(x).clone()

    def check(self, *, site, layer, positions, **_):
        _check_rows(self.source, (self.row,), "the source trace's")
        _check_recorded(self.source, site, layer, "the source trace")
        for pos in positions:
            position_index(self.position_map.get(pos, pos))


@dataclass(frozen=True)
class Mean(Op):
    """Replace ``x`` by the mean over ``pool`` rows at the same (site, layer, position)."""

    pool: "Trace"
    rows: tuple[int, ...] | None = None

    def __call__(self, x, *, site, layer, position, **_):
        return self.pool.mean_value(site, layer, position, self.rows).to(x).clone()

    def check(self, *, site, layer, **_):
        if self.rows is not None:
            if not self.rows:
                raise ValueError("the pool's rows are empty: a mean needs at least one row")
            _check_rows(self.pool, self.rows, "the pool trace's")
        _check_recorded(self.pool, site, layer, "the pool trace")


@dataclass(frozen=True)
class AblateHeads(Op):
    """At ``attn_z``: replace the slices of ``heads`` (of ``n_heads`` equal slices) by zero, or by the same
    slices of ``mean`` (``[D]``, e.g. a recorded mean ``attn_z``: mean ablation). Other heads are untouched."""

    heads: tuple[int, ...]
    n_heads: int
    mean: torch.Tensor | None = None

    def check(self, *, site, width, **_):
        if site != "attn_z":
            raise ValueError(f"AblateHeads acts on the attn_z site, not {site}")
        if width % self.n_heads:
            raise ValueError(f"attn_z has {width} dims, not a multiple of {self.n_heads} heads")
        bad = [h for h in self.heads if not 0 <= h < self.n_heads]
        if bad:
            raise ValueError(f"head {bad[0]} out of range: the layer has heads 0..{self.n_heads - 1}")
        if self.mean is not None:
            _check_width("the mean", self.mean, width)

    def __call__(self, x, *, site, **_):
        if site != "attn_z":
            raise ValueError(f"AblateHeads acts on the attn_z site, not {site}")
        if x.shape[-1] % self.n_heads:
            raise ValueError(f"attn_z has {x.shape[-1]} dims, not a multiple of {self.n_heads} heads")
        d = x.shape[-1] // self.n_heads
        out = x.clone()
        for h in self.heads:
            if not 0 <= h < self.n_heads:
                raise ValueError(f"head {h} out of range: the layer has heads 0..{self.n_heads - 1}")
            out[..., h * d:(h + 1) * d] = 0 if self.mean is None else self.mean[h * d:(h + 1) * d].to(x)
        return out


def Shuffle(source: "Trace", row: int, permutation: Mapping[str, str]) -> Patch:
    """Position shuffle: the value at ``P_i`` comes from ``source`` at ``permutation[P_i]``."""
    return Patch(source, row, dict(permutation))


@dataclass(frozen=True)
class Intervention:
    """``op`` applied at ``site`` of block ``layer`` for each of ``positions`` during the forward pass.

    For ``attn_knockout``, ``positions`` are the query positions (``P0..P6``, or ``EOT`` meaning the
    whole answer phase) and ``keys`` the blocked key positions (``P0..P6``, ``EOT``, or ``Q`` for every
    question token)."""

    site: str
    positions: tuple[str, ...]
    op: Op = field(default_factory=Identity)
    layer: int | None = None
    keys: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "positions", as_positions(self.positions))
        if self.site not in SITES:
            raise ValueError(f"unknown site {self.site!r}: use one of {', '.join(SITES)}")
        if self.site in MODULE_SITES:
            if self.layer is None:
                raise ValueError(f"site {self.site} needs a layer")
        elif self.layer is not None:
            raise ValueError(f"site {self.site} takes no layer (it acts on the latent vector itself)")
        if self.site in LATENT_SITES and not set(self.positions) <= set(FED_POSITIONS):
            raise ValueError(f"site {self.site} addresses fed latents only ({', '.join(FED_POSITIONS)}); "
                             f"got {', '.join(self.positions)}")
        if self.site == "attn_knockout":
            keys = (self.keys,) if isinstance(self.keys, str) else tuple(self.keys)
            if not keys:
                raise ValueError("attn_knockout needs keys to block")
            for k in keys:
                if k != "Q":
                    position_index(k)
            object.__setattr__(self, "keys", keys)

    def check_layer(self, n_layers: int) -> None:
        if self.layer is not None and not 0 <= self.layer < n_layers:
            raise ValueError(f"layer {self.layer} out of range: the model has blocks 0..{n_layers - 1}")

    def first_step(self) -> int:
        """The earliest loop step this intervention touches (P_k → k, EOT → 7)."""
        return min(position_index(p) for p in self.positions)


def zero(site: str, positions, layer: int | None = None) -> Intervention:
    return Intervention(site, positions, Zero(), layer)


def knockout(queries, keys) -> Intervention:
    return Intervention("attn_knockout", queries, Identity(), None, keys)


__all__ = ["AblateHeads", "Add", "Identity", "Intervention", "Mean", "Noise", "Op", "Patch", "Randomize", "Scale", "Set", "Shuffle",
           "Zero", "SITES", "MODULE_SITES", "LATENT_SITES", "LATENT_POSITIONS", "TRACE_POSITIONS",
           "knockout", "zero"]
