"""On-disk trace storage for long sweeps: resumable, reusable, shared between processes, never pickled.

A :class:`TraceCache` lives in ``root/<key>/`` where ``key`` = sha256 of (model fingerprint sha256,
config, storage format). Per-problem tensors are written as safetensors shards
(``shard-<sha256 of the problem ids>.safetensors``) whose metadata names the model and the problems
they hold, so the directory listing is the index: there is no shared index file to race on, and a
shard is written to a temporary file and moved into place (``os.replace``). An interrupted sweep
therefore leaves only complete shards and resumes after them; a rerun on an unchanged model reads
everything back; a changed model fingerprint or config gives another key, so nothing stale is reused.
``fp16=True`` stores floating tensors as float16 (returned as float32); otherwise tensors come back in
the dtype they were put in.

Several processes (pytest-xdist workers, hosts sharing a directory) divide a sweep between them:
:meth:`TraceCache.sweep` splits the problems into chunks, and a process computes a chunk only after
claiming it, by creating ``claims/<chunk>.claim`` exclusively (``O_CREAT | O_EXCL``). While it holds
claims, a daemon thread refreshes their modification time every ``stale_s / 4`` seconds. A claim is
taken over when its holder is gone: a process on this host that no longer exists, or a claim not
refreshed for ``stale_s`` seconds (another host, or a hung process). The takeover renames the claim
away first, so of two processes racing for it exactly one wins. Each process then reads the others'
shards. Every chunk is computed once, unless its holder dies first.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..atomic import atomic_write, write_text_atomic

FORMAT = 2  # shards name their problems in their metadata (format 1 kept a shared index.json)
CONFIG_FILE = "config.json"  # what the key was made of, for people reading the directory
STALE_S = 60.0  # a claim not refreshed for this long is taken over
Tensors = Mapping[str, torch.Tensor]


def cache_key(model_sha256: str, config: Mapping) -> str:
    """The directory name for (model fingerprint, config)."""
    blob = json.dumps({"model": model_sha256, "config": config, "format": FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def chunk_name(problems: Sequence[str]) -> str:
    """A chunk's name: the sha256 of its problem ids (a shard and a claim of the same chunk share it)."""
    return hashlib.sha256(json.dumps(list(problems)).encode()).hexdigest()[:32]


class TraceCache:
    """Sharded per-problem tensor store keyed by (model fingerprint sha256, problem id, config)."""

    def __init__(self, root: str | os.PathLike, model_sha256: str, config: Mapping, *, fp16: bool = False,
                 shard_size: int = 64, stale_s: float = STALE_S):
        self.config = {**config, "fp16": fp16}
        self.dir = Path(root) / cache_key(model_sha256, self.config)
        self.claims = self.dir / "claims"
        self.claims.mkdir(parents=True, exist_ok=True)
        if not (self.dir / CONFIG_FILE).exists():
            write_text_atomic(self.dir / CONFIG_FILE, json.dumps({"model": model_sha256, "config": self.config,
                                                                  "format": FORMAT}, indent=1, default=str))
        self.fp16, self.shard_size, self.stale_s = fp16, shard_size, stale_s
        self.model_sha256 = model_sha256
        self._where: dict[str, str] = {}
        self._seen: set[str] = set()
        self._pending: dict[str, dict[str, torch.Tensor]] = {}
        self._loaded: dict[str, dict[str, torch.Tensor]] = {}
        self.computed: list[str] = []  # problems this object computed in sweep() (the others were read)
        self.refresh()

    def refresh(self) -> None:
        """Read the metadata of shards written since the last look (by this or another process)."""
        for path in sorted(self.dir.glob("shard-*.safetensors")):
            if path.name in self._seen:
                continue
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
            if meta.get("model") != self.model_sha256:
                raise ValueError(f"{path}: written for model {meta.get('model')!r}, not {self.model_sha256!r}")
            self._seen.add(path.name)
            self._where.update({p: path.name for p in json.loads(meta["problems"])})

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
        """Write the buffered problems as one shard (atomically), named after its problems."""
        if not self._pending:
            return
        problems = list(self._pending)
        name = f"shard-{chunk_name(problems)}.safetensors"
        flat = {f"{p}/{k}": v for p, ts in self._pending.items() for k, v in ts.items()}
        meta = {"model": self.model_sha256, "problems": json.dumps(problems)}
        atomic_write(self.dir / name, lambda tmp: save_file(flat, tmp, metadata=meta))
        self._seen.add(name)
        self._where.update({p: name for p in problems})
        self._pending = {}

    # ---------------------------------------------------------------- claims
    def _claim_path(self, chunk: Sequence[str]) -> Path:
        return self.claims / f"{chunk_name(chunk)}.claim"

    def _try_claim(self, chunk: Sequence[str]) -> bool:
        """Create the chunk's claim exclusively, taking over a claim whose holder is gone."""
        path = self._claim_path(chunk)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale(path):
                    return False
                try:  # of two processes taking over the same claim, one rename succeeds
                    os.replace(path, path.with_name(f"{path.name}.{uuid.uuid4().hex}.stale"))
                except FileNotFoundError:
                    return False
                for old in self.claims.glob(f"{path.name}.*.stale"):
                    old.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}, f)
            return True
        return False

    def _stale(self, path: Path) -> bool:
        """The holder is gone: a process of this host that no longer runs, or no refresh for ``stale_s``."""
        try:
            holder = json.loads(path.read_text() or "{}")
            age = time.time() - path.stat().st_mtime
        except (OSError, ValueError):
            return False  # being written or just released: look again later
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            try:
                os.kill(holder["pid"], 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        return age > self.stale_s

    # ---------------------------------------------------------------- sweep
    def sweep(self, problems: Sequence[str], compute: Callable[[list[str]], Iterable[Tensors]], *,
              batch: int = 8, progress: bool = True, poll_s: float = 0.2) -> None:
        """Make every problem's tensors available, computing only chunks (of ``batch`` problems) that no other
        process has stored or holds a live claim on, then waiting for the others' chunks.

        The progress bar (:func:`codi_probe.progress.bar`: drawn when ``progress`` or when a front end shows
        bars) counts problems stored by any process; its rate and time left come from the chunks this process
        computed. Interrupted (an exception, Ctrl-C), this process's finished chunks stay stored and its
        claims are released for the others."""
        from ..progress import bar as progress_bar

        chunks = [list(problems[i: i + batch]) for i in range(0, len(problems), batch)]
        bar = progress_bar(len(problems), "trace cache", force=progress)
        held: set[Path] = set()
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(held, stop), daemon=True)
        beat.start()
        start, mine = time.perf_counter(), 0
        try:
            while True:
                self.refresh()
                missing = [[p for p in c if p not in self] for c in chunks]
                bar.n = len(problems) - sum(map(len, missing))
                bar.refresh()
                todo = [(c, m) for c, m in zip(chunks, missing) if m]
                if not todo:
                    break
                progressed = False
                for chunk, need in todo:
                    if not self._try_claim(chunk):
                        continue
                    path = self._claim_path(chunk)
                    held.add(path)
                    try:
                        self.refresh()
                        need = [p for p in chunk if p not in self]  # it may have been stored meanwhile
                        if need:
                            for p, tensors in zip(need, compute(need), strict=True):
                                self.put(p, tensors)
                            self.flush()
                            self.computed.extend(need)
                            mine += len(need)
                            bar.update(len(need))
                            bar.set_postfix(eta_s=round((time.perf_counter() - start) / mine
                                                        * (len(problems) - bar.n), 1))
                    finally:
                        held.discard(path)
                        path.unlink(missing_ok=True)
                    progressed = True
                if not progressed:
                    time.sleep(poll_s)  # every missing chunk is held by a live process: wait for its shard
        finally:  # also on an interruption: every computed problem is complete, keep it
            stop.set()
            self.flush()
            bar.close()

    def _heartbeat(self, held: set, stop: threading.Event) -> None:
        while not stop.wait(self.stale_s / 4):
            for path in list(held):
                try:
                    os.utime(path)
                except FileNotFoundError:
                    pass


__all__ = ["TraceCache", "cache_key", "chunk_name"]
