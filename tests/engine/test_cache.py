"""The on-disk trace cache: resume after interruption, reuse, invalidation, fp16 round trip."""

from __future__ import annotations

import pytest
import torch

from codi_probe.engine.cache import INDEX, TraceCache

SHA = "a" * 64
CONFIG = {"site": "resid_post", "layer": 2}


def _tensors(p: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(int(p[1:]))
    return {"latents": torch.randn(7, 16, generator=g), "ids": torch.arange(int(p[1:]) + 1)}


def _compute(calls: list):
    def compute(chunk):
        calls.extend(chunk)
        return [_tensors(p) for p in chunk]
    return compute


PROBLEMS = [f"p{i}" for i in range(10)]


def test_resume_after_interruption(tmp_path):
    calls: list = []

    def failing(chunk):
        if "p6" in chunk:
            raise KeyboardInterrupt
        return _compute(calls)(chunk)

    cache = TraceCache(tmp_path, SHA, CONFIG, shard_size=2)
    with pytest.raises(KeyboardInterrupt):
        cache.sweep(PROBLEMS, failing, batch=3, progress=False)
    assert calls == PROBLEMS[:6]
    calls.clear()
    again = TraceCache(tmp_path, SHA, CONFIG, shard_size=2)
    assert again.done() == set(PROBLEMS[:6])
    again.sweep(PROBLEMS, _compute(calls), batch=3, progress=False)
    assert calls == PROBLEMS[6:]
    for p in PROBLEMS:
        assert torch.equal(again.get(p)["latents"], _tensors(p)["latents"])
        assert torch.equal(again.get(p)["ids"], _tensors(p)["ids"])


def test_rerun_reuses_everything(tmp_path):
    TraceCache(tmp_path, SHA, CONFIG).sweep(PROBLEMS, _compute([]), progress=False)
    calls: list = []
    TraceCache(tmp_path, SHA, CONFIG).sweep(PROBLEMS, _compute(calls), progress=False)
    assert calls == []
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.pkl"))


@pytest.mark.parametrize("change", [{"sha": "b" * 64}, {"config": {**CONFIG, "layer": 3}}, {"fp16": True}])
def test_changed_model_or_config_invalidates(tmp_path, change):
    TraceCache(tmp_path, SHA, CONFIG).sweep(PROBLEMS, _compute([]), progress=False)
    calls: list = []
    cache = TraceCache(tmp_path, change.get("sha", SHA), change.get("config", CONFIG), fp16=change.get("fp16", False))
    assert cache.done() == set()
    cache.sweep(PROBLEMS, _compute(calls), progress=False)
    assert calls == PROBLEMS


def test_index_of_another_model_is_refused(tmp_path):
    cache = TraceCache(tmp_path, SHA, CONFIG)
    cache.sweep(PROBLEMS[:2], _compute([]), progress=False)
    index = cache.dir / INDEX
    index.write_text(index.read_text().replace(SHA, "c" * 64))
    with pytest.raises(ValueError, match="written for model"):
        TraceCache(tmp_path, SHA, CONFIG)


def test_fp16_round_trip_tolerance(tmp_path):
    cache = TraceCache(tmp_path, SHA, CONFIG, fp16=True)
    cache.sweep(PROBLEMS, _compute([]), progress=False)
    for p in PROBLEMS:
        got, want = TraceCache(tmp_path, SHA, CONFIG, fp16=True).get(p), _tensors(p)
        assert got["latents"].dtype == torch.float32
        assert torch.allclose(got["latents"], want["latents"], rtol=1e-3, atol=1e-3)
        assert torch.equal(got["ids"], want["ids"])
    shard = next(cache.dir.glob("shard-*.safetensors"))
    from safetensors.torch import load_file

    assert all(v.dtype in (torch.float16, torch.int64) for v in load_file(str(shard)).values())


def test_dtypes_round_trip_without_fp16(tmp_path):
    want = {"kl": torch.rand(3, 4, dtype=torch.float64), "flags": torch.tensor([1, 0], dtype=torch.uint8),
            "h": torch.randn(2, dtype=torch.float32)}
    cache = TraceCache(tmp_path, SHA, CONFIG)
    cache.put("p0", want)
    cache.flush()
    got = TraceCache(tmp_path, SHA, CONFIG).get("p0")
    for k, v in want.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k
