"""Keys and values stored once where rows share them: the question prefix per question, and the latent
steps a row takes from its question's trunk.

In a sweep every row (question × intervention variant) used to hold its own copy of its question's
prefix keys and values (about 6.6 MB per row for GPT-2-124M with an 80-token question: 8.4 GB for the
1,008 rows of the N = 24 CCTA grid), and a row joining at its first intervened step P_k also copied
the trunk's P0..P_{k-1}. Here:

- :class:`SharedPrefix` holds, per layer and question, ``[Q, Hkv, T + n_lat, d]``: the question's ``T``
  prefix columns, then the ``n_lat`` latent columns (P0..P_n) of its trunk row as the trunk writes them;
- :class:`SuffixCache` holds each row's own columns only: latent column ``j`` for the rows that computed
  it themselves (the rows whose own part starts at or before ``j``), then EOT and the answer tokens.

A row whose own part starts at ``k`` (0 for the rows that run from P0; its first intervened step for
the others; ``n_lat`` for rows that join after the latents) reads latent columns ``j < k`` from its
trunk and ``j >= k`` from itself. Rows join in step order, so the rows owning column ``j`` are always
batch rows ``0..n_j-1``, and nothing a row does not own is ever written or copied.

The model's attention modules call :func:`shared_prefix_attention` through transformers' attention
interface (registered as :data:`IMPLEMENTATION`). It scores the queries against their question's
shared columns (queries grouped by question: one batched product per layer, no per-row copy) and
against the row's own columns, and takes one softmax over all of them: the arithmetic of eager
attention over the concatenated keys, so the probabilities it returns keep the absolute key layout
(``T`` prefix columns, ``n_lat`` latent columns, then EOT and the answer tokens).

Visibility comes from the engine's 2D mask (``[B, T + S]``: 1 = visible, pads and knocked-out keys 0;
``None`` = every key visible) plus causality among the tokens of the current call. The score products
run in the model's dtype, the softmax in float32, as in the eager implementations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from .kvcache import RowBufferLayer

IMPLEMENTATION = "codi_shared_prefix"


@dataclass
class SharedPrefix:
    """Per layer ``l``, ``keys[l]``/``values[l]``: ``[Q, Hkv, T + n_lat, d]``, question ``q``'s prefix in
    columns ``0..T-1`` and its trunk's latent column ``j`` at ``T + j`` (written as the trunk computes it).

    Set for each forward call (:meth:`set_call`): ``row_q`` ``[B]`` each batch row's question,
    ``own_from`` ``[B]`` the first latent column the row owns, ``trunk_b`` ``[Q]`` the batch index of each
    question's trunk row in this call (-1: none), ``mask`` ``[B, T + S]`` key visibility (``None``: all)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    prefix_len: int
    n_lat: int
    row_q: torch.Tensor | None = None
    own_from: torch.Tensor | None = None
    trunk_b: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    _groups: tuple | None = field(default=None, repr=False)

    def set_call(self, row_q: torch.Tensor, own_from: torch.Tensor, trunk_b: torch.Tensor,
                 mask: torch.Tensor | None) -> None:
        """Before each forward call (all device tensors)."""
        self.row_q, self.own_from, self.trunk_b, self.mask, self._groups = row_q, own_from, trunk_b, mask, None

    def groups(self) -> tuple[int, int, torch.Tensor | None]:
        """``(questions, slots, dest)``: rows are placed in a ``[questions * slots]`` grid, row ``b`` at
        ``dest[b] = question * slots + rank within its question``; ``dest`` is ``None`` when batch row
        ``b`` is question ``b`` (no regrouping needed)."""
        if self._groups is None:
            n_q, row_q = self.keys[0].shape[0], self.row_q
            if len(row_q) == n_q and bool((row_q == torch.arange(n_q, device=row_q.device)).all()):
                self._groups = (n_q, 1, None)
            else:
                counts = torch.bincount(row_q, minlength=n_q)
                slots = int(counts.max())
                order = torch.argsort(row_q, stable=True)
                start = torch.cumsum(counts, 0) - counts
                sorted_q = row_q[order]
                rank = torch.arange(len(row_q), device=row_q.device) - start[sorted_q]
                dest = torch.empty_like(row_q)
                dest[order] = sorted_q * slots + rank
                self._groups = (n_q, slots, dest)
        return self._groups


class SuffixLayer(DynamicLayer):
    """One layer's own columns of every row: ``latent_k[j]``/``latent_v[j]`` ``[n_j, Hkv, d]`` for batch rows
    ``0..n_j-1`` (the rows owning latent column ``j``), and EOT plus answer tokens in a
    :class:`~codi_probe.engine.kvcache.RowBufferLayer`. A latent step also writes the trunk rows' column
    into the :class:`SharedPrefix`."""

    def __init__(self, shared: SharedPrefix, layer: int, rows: int, capacity: int, answer_len: int):
        super().__init__()
        self.shared, self.layer = shared, layer
        like = shared.keys[layer]
        empty = like.new_empty(rows, like.shape[1], 0, like.shape[3])
        self.answer = RowBufferLayer(empty, empty.clone(), capacity, answer_len)
        self.latent_k: list[torch.Tensor] = []
        self.latent_v: list[torch.Tensor] = []
        self.device, self.is_initialized = like.device, True
        self.keys = self.values = empty

    @property
    def rows(self) -> int:
        return self.answer.rows

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if key_states.shape[0] != self.rows:
            raise ValueError(f"cache holds {self.rows} rows, the step has {key_states.shape[0]}")
        if len(self.latent_k) < self.shared.n_lat:
            if key_states.shape[2] != 1:
                raise ValueError("latent steps feed one token per call")
            j = len(self.latent_k)
            self.latent_k.append(key_states[:, :, 0].contiguous())
            self.latent_v.append(value_states[:, :, 0].contiguous())
            has = self.shared.trunk_b >= 0
            t = self.shared.prefix_len
            self.shared.keys[self.layer][has, :, t + j] = self.latent_k[j][self.shared.trunk_b[has]]
            self.shared.values[self.layer][has, :, t + j] = self.latent_v[j][self.shared.trunk_b[has]]
        else:
            self.answer.update(key_states, value_states)
        return key_states, value_states

    def get_seq_length(self) -> int:
        return len(self.latent_k) + self.answer.length

    def append_rows(self, source: torch.Tensor) -> None:
        """Rows joining at the next latent step own nothing before it: no column is copied."""
        self.answer.append_rows(source)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep rows ``indices`` in increasing order (a stopped row leaves; order is kept, so the rows owning
        a latent column stay the first ones)."""
        order = indices.tolist()
        if any(a >= b for a, b in zip(order, order[1:])):
            raise ValueError("the shared-prefix cache keeps rows in their order: indices must increase")
        self.answer.batch_select_indices(indices)
        for j, col in enumerate(self.latent_k):
            own = indices[indices < col.shape[0]]
            self.latent_k[j] = col.index_select(0, own)
            self.latent_v[j] = self.latent_v[j].index_select(0, own)


class SuffixCache(DynamicCache):
    """A ``DynamicCache`` of :class:`SuffixLayer`, ``rows`` rows at first, room for ``capacity`` rows and
    ``answer_len`` EOT and answer tokens."""

    def __init__(self, shared: SharedPrefix, rows: int, capacity: int, answer_len: int):
        super().__init__()
        self.layers = [SuffixLayer(shared, layer, rows, capacity, answer_len) for layer in range(len(shared.keys))]

    def append_rows(self, source: torch.Tensor) -> None:
        for layer in self.layers:
            layer.append_rows(source)


_ACTIVE: list[tuple[SharedPrefix, SuffixCache]] = []  # the run in progress (one at a time per process)


class active_prefix:
    """``with active_prefix(shared, cache):`` makes them what the attention reads."""

    def __init__(self, shared: SharedPrefix, cache: SuffixCache):
        self.item = (shared, cache)

    def __enter__(self) -> SharedPrefix:
        _ACTIVE.append(self.item)
        return self.item[0]

    def __exit__(self, *exc) -> bool:
        _ACTIVE.remove(self.item)
        return False


def _to_groups(x: torch.Tensor, n_q: int, slots: int, dest: torch.Tensor | None) -> torch.Tensor:
    """``[B, Hkv, n, c]`` per row → ``[Q, Hkv, slots * n, c]`` per question (empty slots are zeros)."""
    if dest is None:
        return x
    b, h, n, c = x.shape
    grid = x.new_zeros(n_q * slots, h, n, c)
    grid.index_copy_(0, dest, x)
    return grid.view(n_q, slots, h, n, c).transpose(1, 2).reshape(n_q, h, slots * n, c)


def _from_groups(y: torch.Tensor, n_q: int, slots: int, dest: torch.Tensor | None, n: int) -> torch.Tensor:
    """The inverse of :func:`_to_groups` for ``[Q, Hkv, slots * n, c]``."""
    if dest is None:
        return y
    c = y.shape[-1]
    return y.view(n_q, -1, slots, n, c).transpose(1, 2).reshape(n_q * slots, -1, n, c).index_select(0, dest)


def shared_prefix_attention(module, query, key, value, attention_mask=None, scaling=None, dropout=0.0, **kwargs):
    """Attention over the row's question prefix and trunk latent columns (shared), its own latent columns
    and its EOT/answer columns, in one softmax. ``query``: ``[B, Hq, s, d]``; ``key``/``value`` (this call's
    new tokens) are already in the cache. Returns ``([B, s, Hq, d], [B, Hq, s, T + n + S_a])`` with ``n``
    the latent columns written so far and ``S_a`` the EOT/answer columns."""
    if not _ACTIVE:
        raise RuntimeError(f"attention implementation {IMPLEMENTATION!r} used outside an engine run")
    shared, cache = _ACTIVE[-1]
    layer = module.layer_idx
    own = cache.layers[layer]
    b, hq, s, d = query.shape
    t, n_lat_now = shared.prefix_len, len(own.latent_k)
    sk, sv = shared.keys[layer][:, :, : t + n_lat_now], shared.values[layer][:, :, : t + n_lat_now]
    hkv = sk.shape[1]
    g = hq // hkv
    gs = g * s
    scale = d ** -0.5 if scaling is None else scaling
    q = query.reshape(b, hkv, gs, d)  # query head kv*g + j reads kv head kv (repeat_kv's order)
    n_q, slots, dest = shared.groups()
    qg = _to_groups(q, n_q, slots, dest)
    shared_scores = _from_groups(torch.matmul(qg, sk.transpose(-1, -2)), n_q, slots, dest, gs)
    cols = torch.arange(n_lat_now, device=query.device)
    from_trunk = (cols.view(1, -1) < shared.own_from.view(-1, 1)).view(b, 1, 1, n_lat_now)
    latent = shared_scores[..., t:].clone()
    for j, col in enumerate(own.latent_k):  # the rows owning column j are rows 0..n_j-1
        n_j = col.shape[0]
        mine = torch.matmul(q[:n_j], col.unsqueeze(-1)).squeeze(-1)  # [n_j, Hkv, gs]
        latent[:n_j, :, :, j] = torch.where(from_trunk[:n_j, :, :, j], latent[:n_j, :, :, j], mine)
    answer = torch.matmul(q, own.answer.keys.transpose(-1, -2))
    scores = torch.cat([shared_scores[..., :t], latent, answer], -1).float() * scale
    width = scores.shape[-1]
    visible = torch.ones(s, width, dtype=torch.bool, device=query.device)
    visible[:, width - s:] = torch.ones(s, s, dtype=torch.bool, device=query.device).tril()
    visible = visible.view(1, 1, 1, s, width)
    if shared.mask is not None:
        visible = visible & shared.mask.to(torch.bool).view(b, 1, 1, 1, width)
    scores = scores.view(b, hkv, g, s, width).masked_fill(~visible, float("-inf")).view(b, hkv, gs, width)
    probs = torch.softmax(scores, -1).to(value.dtype)
    p_latent = probs[..., t: t + n_lat_now]
    out = torch.matmul(probs[..., t + n_lat_now:], own.answer.values)
    for j, col in enumerate(own.latent_v):
        n_j = col.shape[0]
        out[:n_j] += p_latent[:n_j, :, :, j: j + 1] * (~from_trunk[:n_j, :, :, j: j + 1]) * col.unsqueeze(2)
    p_shared = torch.cat([probs[..., :t], p_latent * from_trunk], -1)
    out = out + _from_groups(torch.matmul(_to_groups(p_shared, n_q, slots, dest), sv), n_q, slots, dest, gs)
    return out.view(b, hq, s, d).transpose(1, 2), probs.view(b, hq, s, width)


def register() -> None:
    """Register :func:`shared_prefix_attention` with transformers' attention interface (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(IMPLEMENTATION, shared_prefix_attention)


__all__ = ["IMPLEMENTATION", "SharedPrefix", "SuffixCache", "SuffixLayer", "active_prefix", "register",
           "shared_prefix_attention"]
