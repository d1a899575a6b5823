"""The on-disk trace cache: resume after interruption, reuse, invalidation, fp16 round trip, and the
claim protocol that divides a sweep between processes."""

from __future__ import annotations

import pytest
import torch

from codi_probe.engine.cache import TraceCache, chunk_name

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


def test_shard_of_another_model_is_refused(tmp_path):
    cache = TraceCache(tmp_path, SHA, CONFIG)
    cache.sweep(PROBLEMS[:2], _compute([]), progress=False)
    from safetensors.torch import save_file

    save_file({"p9/x": torch.zeros(1)}, str(cache.dir / "shard-other.safetensors"),
              metadata={"model": "c" * 64, "problems": '["p9"]'})
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


# ------------------------------------------------------------------ several processes
WORKER = r"""
import json, os, sys, time
import torch
from codi_probe.engine.cache import TraceCache

root, out, delay, stale = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
problems = [f"p{i}" for i in range(12)]

def compute(chunk):
    time.sleep(delay)
    return [{"x": torch.full((3,), float(p[1:]))} for p in chunk]

cache = TraceCache(root, "a" * 64, {"site": "resid_post"}, stale_s=stale)
cache.sweep(problems, compute, batch=2, progress=False, poll_s=0.05)
assert all(float(cache.get(p)["x"][0]) == float(p[1:]) for p in problems)
with open(out, "w") as f:
    json.dump(cache.computed, f)
"""


def _worker(tmp_path, name, delay=0.3, stale=60.0):
    import subprocess
    import sys

    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / f"{name}.json"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "cache"), str(out), str(delay), str(stale)])
    return proc, out


def _cache(tmp_path):
    return TraceCache(tmp_path / "cache", SHA, {"site": "resid_post"})


def test_two_processes_divide_a_sweep_and_each_reads_all(tmp_path):
    import json

    (a, out_a), (b, out_b) = _worker(tmp_path, "a"), _worker(tmp_path, "b")
    assert a.wait(timeout=120) == 0 and b.wait(timeout=120) == 0
    done_a, done_b = set(json.loads(out_a.read_text())), set(json.loads(out_b.read_text()))
    assert done_a | done_b == {f"p{i}" for i in range(12)}
    assert not done_a & done_b, "a chunk was computed twice"
    assert done_a and done_b, "one process did all the work"
    assert not list((_cache(tmp_path).dir / "claims").iterdir()), "claims left behind"


def test_a_killed_process_leaves_its_chunk_to_the_others(tmp_path):
    """A worker killed (SIGKILL: no cleanup) while it holds a claim; a second worker on this host sees
    that the holder is gone, takes the chunk over, reuses the killed worker's finished chunks and
    completes the sweep."""
    import json
    import time

    a, _ = _worker(tmp_path, "a", delay=1.0)
    cache = _cache(tmp_path)
    deadline = time.time() + 60
    while time.time() < deadline and len(cache.done()) < 4:  # two chunks stored, the third claimed
        time.sleep(0.1)
        cache.refresh()
    a.kill()
    a.wait()
    held = list((cache.dir / "claims").glob("*.claim"))
    assert held, "the killed worker held no claim"
    stored_before = cache.done()
    b, out_b = _worker(tmp_path, "b", delay=0.0)
    assert b.wait(timeout=120) == 0
    done_b = set(json.loads(out_b.read_text()))
    assert done_b == {f"p{i}" for i in range(12)} - stored_before
    assert not list((cache.dir / "claims").glob("*.claim"))


def test_a_live_claim_is_waited_for_and_a_stale_one_taken_over(tmp_path):
    """Another host's claim (its pid cannot be checked) is respected while it is refreshed and taken
    over once it is older than ``stale_s``."""
    import json
    import os
    import threading
    import time

    cache = TraceCache(tmp_path, SHA, CONFIG, stale_s=1.0)
    chunk = PROBLEMS[:2]
    claim = cache.claims / f"{chunk_name(chunk)}.claim"
    claim.write_text(json.dumps({"host": "another-host", "pid": 1, "time": time.time()}))
    calls: list = []
    t0 = time.time()
    keep = threading.Event()

    def refresh():  # the other host's heartbeat, for 0.5 s
        while not keep.wait(0.1) and time.time() - t0 < 0.5:
            os.utime(claim)

    threading.Thread(target=refresh, daemon=True).start()
    cache.sweep(PROBLEMS, _compute(calls), batch=2, progress=False, poll_s=0.05)
    keep.set()
    assert set(calls) == set(PROBLEMS)
    assert calls[-2:] == chunk, "the claimed chunk was computed before its claim went stale"
    assert time.time() - t0 >= 1.0


def test_claims_are_released_on_interruption(tmp_path):
    def failing(chunk):
        raise KeyboardInterrupt

    cache = TraceCache(tmp_path, SHA, CONFIG)
    with pytest.raises(KeyboardInterrupt):
        cache.sweep(PROBLEMS, failing, batch=3, progress=False)
    assert not list(cache.claims.iterdir())
