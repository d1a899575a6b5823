"""A KV cache preallocated for every row and step of one engine run.

HF's ``DynamicCache`` grows by ``torch.cat`` at every step and selects rows by advanced indexing, so
each latent or answer step and each admission of new rows copies the whole cache. In a sweep of
hundreds of rows that copying, not the matrix work, dominated the run (profiled: ``aten::index`` and
``aten::cat`` took 77% of a layer x position patching sweep). :class:`RowBufferCache` keeps each
layer's keys and values in buffers sized ``[capacity rows, heads, max_len, head_dim]`` once, writes a
step's new keys in place, and copies only the rows that join. ``keys``/``values`` are views of the
filled part ``[rows, heads, length, head_dim]``, so the model's attention sees exactly what a
``DynamicCache`` would hold (tests compare the two paths).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class RowBufferLayer(DynamicLayer):
    """One layer's cache in preallocated buffers (rows grow by :meth:`append_rows`, positions by
    :meth:`update`); a buffer that would overflow is reallocated with room to spare."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, capacity: int, max_len: int):
        super().__init__()
        rows, heads, length, dim = keys.shape
        self._k = keys.new_empty(max(capacity, rows), heads, max(max_len, length), dim)
        self._v = values.new_empty(max(capacity, rows), values.shape[1], max(max_len, length), values.shape[-1])
        self._k[:rows, :, :length] = keys
        self._v[:rows, :, :length] = values
        self.rows, self.length = rows, length
        self.device, self.is_initialized = keys.device, True
        self._view()

    def _view(self) -> None:
        self.keys = self._k[: self.rows, :, : self.length]
        self.values = self._v[: self.rows, :, : self.length]

    def _reserve(self, rows: int, length: int) -> None:
        if rows <= self._k.shape[0] and length <= self._k.shape[2]:
            return
        cap_rows, cap_len = max(rows, self._k.shape[0]), max(length, 2 * self._k.shape[2])
        for name in ("_k", "_v"):
            old = getattr(self, name)
            new = old.new_empty(cap_rows, old.shape[1], cap_len, old.shape[3])
            new[: self.rows, :, : self.length] = old[: self.rows, :, : self.length]
            setattr(self, name, new)

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if key_states.shape[0] != self.rows:
            raise ValueError(f"cache holds {self.rows} rows, the step has {key_states.shape[0]}")
        s = key_states.shape[-2]
        self._reserve(self.rows, self.length + s)
        self._k[: self.rows, :, self.length: self.length + s] = key_states
        self._v[: self.rows, :, self.length: self.length + s] = value_states
        self.length += s
        self._view()
        return self.keys, self.values

    def append_rows(self, source: torch.Tensor) -> None:
        """Append copies of the existing rows ``source`` (batch indices) after the current rows."""
        n, sources = len(source), source.tolist()
        if sources and not 0 <= min(sources) <= max(sources) < self.rows:
            raise IndexError(f"source rows must lie in 0..{self.rows - 1}, got {min(sources)}..{max(sources)}")
        self._reserve(self.rows + n, self.length)
        self._copy_rows(sources, self.rows)
        self.rows += n
        self._view()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep rows ``indices`` (a subset or a permutation, any order)."""
        order = indices.tolist()
        if order and not 0 <= min(order) <= max(order) < self.rows:
            raise IndexError(f"row indices must lie in 0..{self.rows - 1}, got {min(order)}..{max(order)}")
        self._reserve(len(order), self.length)
        if all(a < b for a, b in zip(order, order[1:])):
            self._copy_rows(order, 0)  # increasing: every source is read before a write can reach it
        else:
            for buf in (self._k, self._v):
                buf[: len(order), :, : self.length] = buf[: self.rows, :, : self.length].index_select(0, indices)
        self.rows = len(order)
        self._view()

    def _copy_rows(self, sources: list[int], dest: int) -> None:
        """``buf[dest + j] = buf[sources[j]]`` over the filled length, one strided ``copy_`` per run of
        equal sources (an expanded row) or per row: an ``index_select`` of a strided view gathers
        element-wise and runs several times slower than these row copies."""
        j = 0
        while j < len(sources):
            end = j + 1
            while end < len(sources) and sources[end] == sources[j]:
                end += 1
            if sources[j] != dest + j or end - j > 1:
                for buf in (self._k, self._v):
                    row = buf[sources[j]: sources[j] + 1, :, : self.length]
                    buf[dest + j: dest + end, :, : self.length].copy_(row.expand(end - j, -1, -1, -1))
            j = end


class RowBufferCache(DynamicCache):
    """A ``DynamicCache`` whose layers are :class:`RowBufferLayer`, built from ``(keys, values)`` per
    layer with room for ``capacity`` rows and ``max_len`` positions."""

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor]], capacity: int, max_len: int):
        super().__init__()
        self.layers = [RowBufferLayer(k, v, capacity, max_len) for k, v in layers]

    def append_rows(self, source: torch.Tensor) -> None:
        for layer in self.layers:
            layer.append_rows(source)


__all__ = ["RowBufferCache", "RowBufferLayer"]
