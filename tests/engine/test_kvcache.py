"""The preallocated row-buffer KV cache holds exactly what HF's DynamicCache would, under any sequence
of steps, row admissions and row selections (a property test against the DynamicCache reference)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.cache_utils import DynamicCache

from codi_probe.engine.kvcache import RowBufferCache

H, D = 2, 3


def _ops():
    step = st.tuples(st.just("step"), st.integers(1, 3))
    admit = st.tuples(st.just("admit"), st.lists(st.integers(0, 50), min_size=1, max_size=5))
    select = st.tuples(st.just("select"), st.lists(st.integers(0, 50), min_size=1, max_size=6))
    return st.lists(st.one_of(step, admit, select), max_size=10)


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 4), length=st.integers(1, 5), ops=_ops(), capacity=st.integers(1, 12),
       max_len=st.integers(1, 12), seed=st.integers(0, 2**16))
def test_row_buffer_cache_equals_dynamic_cache(rows, length, ops, capacity, max_len, seed):
    g = torch.Generator().manual_seed(seed)
    rand = lambda b, s: torch.randn(b, H, s, D, generator=g)
    layers = [(rand(rows, length), rand(rows, length)) for _ in range(2)]
    ours = RowBufferCache([(k.clone(), v.clone()) for k, v in layers], capacity=capacity, max_len=max_len)
    ref = DynamicCache(ddp_cache_data=layers)
    n = rows
    for op, arg in ops:
        if op == "step":
            for i in range(2):
                k, v = rand(n, arg), rand(n, arg)
                ours.update(k, v, i)
                ref.update(k, v, i)
        elif op == "admit":
            src = torch.tensor([a % n for a in arg])
            ours.append_rows(src)
            ref.batch_select_indices(torch.cat([torch.arange(n), src]))
            n += len(src)
        else:
            keep = sorted({a % n for a in arg}) if arg[0] % 2 else [a % n for a in arg]  # subsets and shuffles
            idx = torch.tensor(keep)
            ours.batch_select_indices(idx)
            ref.batch_select_indices(idx)
            n = len(keep)
        for a, b in zip(ours.layers, ref.layers):
            assert torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
        assert ours.get_seq_length() == ref.get_seq_length()


def test_update_refuses_a_step_with_the_wrong_row_count():
    import pytest

    cache = RowBufferCache([(torch.zeros(2, H, 1, D), torch.zeros(2, H, 1, D))], capacity=4, max_len=4)
    with pytest.raises(ValueError, match="holds 2 rows"):
        cache.update(torch.zeros(3, H, 1, D), torch.zeros(3, H, 1, D), 0)


def test_row_indices_out_of_range_are_refused():
    import pytest

    cache = RowBufferCache([(torch.zeros(2, H, 1, D), torch.zeros(2, H, 1, D))], capacity=4, max_len=4)
    for bad in ([2], [-1], [0, 5]):
        with pytest.raises(IndexError, match="0..1"):
            cache.batch_select_indices(torch.tensor(bad))
        with pytest.raises(IndexError, match="0..1"):
            cache.append_rows(torch.tensor(bad))
