"""On-disk trace storage for long sweeps: resumable, reusable, never pickled.

A :class:`TraceCache` lives in ``root/<key>/`` where ``key`` = sha256 of (model fingerprint sha256,
config). Per-problem tensors are buffered and written as safetensors shards (``shard-NNNNN.safetensors``)
plus a JSON ``index.json`` naming the problems of every shard; both are written to a temporary file
and moved into place (``os.replace``), so an interrupted sweep leaves only complete shards and
resumes after the last one, and a rerun on an unchanged model reads everything back. A changed model
fingerprint or config gives another key, so nothing stale is reused. ``fp16=True`` stores floating
tensors as float16 (returned as float32); otherwise tensors come back in the dtype they were put in.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch
from safetensors.torch import load_file, save_file

from ..atomic import atomic_write, write_text_atomic

INDEX = "index.json"
Tensors = Mapping[str, torch.Tensor]


def cache_key(model_sha256: str, config: Mapping) -> str:
    """The directory name for (model fingerprint, config)."""
    blob = json.dumps({"model": model_sha256, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class TraceCache:
    """Sharded per-problem tensor store keyed by (model fingerprint sha256, problem id, config)."""

    def __init__(self, root: str | os.PathLike, model_sha256: str, config: Mapping, *, fp16: bool = False,
                 shard_size: int = 64):
        self.config = {**config, "fp16": fp16}
        self.dir = Path(root) / cache_key(model_sha256, self.config)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fp16, self.shard_size = fp16, shard_size
        self.model_sha256 = model_sha256
        self.index = self._read_index()
        self._where = {p: s["file"] for s in self.index["shards"] for p in s["problems"]}
        self._pending: dict[str, dict[str, torch.Tensor]] = {}
        self._loaded: dict[str, dict[str, torch.Tensor]] = {}

    def _read_index(self) -> dict:
        path = self.dir / INDEX
        if not path.exists():
            return {"model": self.model_sha256, "config": self.config, "shards": []}
        index = json.loads(path.read_text())
        if index.get("model") != self.model_sha256:
            raise ValueError(f"{path}: written for model {index.get('model')!r}, not {self.model_sha256!r}")
        return index

    # ---------------------------------------------------------------- query
    def __contains__(self, problem: str) -> bool:
        return problem in self._where or problem in self._pending

    def done(self) -> set[str]:
        return set(self._where) | set(self._pending)

    def get(self, problem: str) -> dict[str, torch.Tensor]:
        """The tensors stored for ``problem`` (half-precision ones as float32, others as stored)."""
        if problem in self._pending:
            return self._pending[problem]
        name = self._where[problem]
        if name not in self._loaded:
            self._loaded = {name: load_file(str(self.dir / name))}  # keep one shard in memory
        prefix = f"{problem}/"
        return {k[len(prefix):]: (v.float() if v.dtype in (torch.float16, torch.bfloat16) else v)
                for k, v in self._loaded[name].items() if k.startswith(prefix)}

    # ---------------------------------------------------------------- write
    def put(self, problem: str, tensors: Tensors) -> None:
        """Buffer one problem's tensors; a full buffer is written as a shard."""
        if "/" in problem:
            raise ValueError(f"problem id {problem!r} must not contain '/'")
        store = {}
        for name, t in tensors.items():
            t = t.detach().cpu().contiguous()
            store[name] = t.half() if self.fp16 and t.is_floating_point() else t
        self._pending[problem] = store
        if len(self._pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the buffered problems as one shard, then the index (both atomically)."""
        if not self._pending:
            return
        name = f"shard-{len(self.index['shards']):05d}.safetensors"
        flat = {f"{p}/{k}": v for p, ts in self._pending.items() for k, v in ts.items()}
        atomic_write(self.dir / name, lambda tmp: save_file(flat, tmp))
        self.index["shards"].append({"file": name, "problems": list(self._pending)})
        write_text_atomic(self.dir / INDEX, json.dumps(self.index, indent=1))
        self._where.update({p: name for p in self._pending})
        self._pending = {}

    # ---------------------------------------------------------------- sweep
    def sweep(self, problems: Sequence[str], compute: Callable[[list[str]], Iterable[Tensors]], *,
              batch: int = 8, progress: bool = True) -> None:
        """Compute and store every problem not yet stored, ``batch`` at a time, with a tqdm bar whose
        rate and time left come from the problems computed in this call (cached ones are skipped)."""
        from tqdm.auto import tqdm

        todo = [p for p in problems if p not in self]
        bar = tqdm(total=len(problems), initial=len(problems) - len(todo), disable=not progress,
                   desc="trace cache", unit="problem")
        start = time.perf_counter()
        try:
            for i in range(0, len(todo), batch):
                chunk = todo[i: i + batch]
                for p, tensors in zip(chunk, compute(chunk), strict=True):
                    self.put(p, tensors)
                bar.update(len(chunk))
                done = i + len(chunk)
                bar.set_postfix(eta_s=round((time.perf_counter() - start) / done * (len(todo) - done), 1))
        finally:  # also on an interruption: every buffered problem is complete, keep it
            self.flush()
            bar.close()


__all__ = ["TraceCache", "cache_key"]
