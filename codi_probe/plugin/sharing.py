"""Shared session work: a grid or trace computed once for the whole run, not once per xdist worker.

Each shared fixture describes its work as per-problem tensors computed in fixed chunks of problems
(:func:`shared_problems`). In a serial run without ``--codi-cache`` the chunks run in this process.
Otherwise they go through a :class:`~codi_probe.engine.cache.TraceCache` in the shared directory,
whose claim protocol lets each worker compute the chunks no one else holds and read the others'.
The chunks are the same in every case, so a serial run and a parallel one compute the same batches.

The directory is ``--codi-cache`` when given (persistent: an interrupted run resumes and a rerun on
unchanged weights reads everything back; give hosts of a ``--tx`` run a path they all see). Otherwise
an xdist controller makes a temporary one for its workers on its own host and removes it at the end.
Each process records what it computed and what it read under ``processes.<worker>.shared_work`` in
the report, so the report shows that every shared grid was computed once.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from typing import Any, Callable, Mapping, Sequence

import pytest

from ..progress import bar
from .metadata import get_metadata, _publish
from .options import OPTIONS_KEY, worker_id
from .scope import SESSION_DIR_KEY, SESSION_DIR_STASH

SHARED_DIR_KEY = "codi_shared_cache"  # workerinput key: the controller's temporary shared directory
Tensors = Mapping[str, Any]


def shared_cache_dir(config: pytest.Config) -> str | None:
    """``--codi-cache``, else the xdist controller's temporary directory (workers only), else None."""
    options = config.stash[OPTIONS_KEY]
    if options.cache:
        return options.cache
    return getattr(config, "workerinput", {}).get(SHARED_DIR_KEY)


def shared_problems(config: pytest.Config, name: str, model, key: Mapping[str, Any], ids: Sequence[str],
                    compute: Callable[[list[int]], list[Tensors]], *, chunk: int = 16,
                    progress: bool = False) -> list[dict]:
    """Per-problem tensors of problems ``ids`` (their order is the problem index ``compute`` receives),
    computed ``chunk`` problems at a time, once across every process sharing the cache directory.

    ``key``: what besides the model weights and the problems determines the result (the cache is keyed
    by it; ``name`` is part of it). ``compute(indices)`` returns one tensor dict per index."""
    ids = [str(i) for i in ids]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: problem ids must be unique to share the work")
    where = {pid: i for i, pid in enumerate(ids)}
    directory = shared_cache_dir(config)
    with bar(len(ids), name, force=progress) as shown:  # this process's computed problems, with the time left

        def counted(indices: list[int]) -> list[Tensors]:
            out = compute(indices)
            shown.update(len(indices))
            return out

        if directory is None:
            out = [t for s in range(0, len(ids), chunk) for t in counted(list(range(s, min(len(ids), s + chunk))))]
            _record(config, name, computed=len(ids), read=0)
            return [dict(t) for t in out]
        from codi_probe.engine.cache import TraceCache

        cache = TraceCache(directory, model.weights_sha256(), {"fixture": name, "problems": ids, **key})
        cache.sweep(ids, lambda part: counted([where[p] for p in part]), batch=chunk, progress=False)
    _record(config, name, computed=len(cache.computed), read=len(ids) - len(cache.computed))
    return [cache.get(pid) for pid in ids]


def _record(config: pytest.Config, name: str, *, computed: int, read: int) -> None:
    """``processes.<worker>.shared_work.<name>``: problems this process computed and read."""
    info = get_metadata(config).processes.setdefault(worker_id(config), {})
    info.setdefault("shared_work", {})[name] = {"computed": computed, "read": read}
    _publish(config)


CATALOGUE_MODULE = re.compile(r"(^|/)hypotheses/test_[^/]+\.py$")  # the shipped claims, from a checkout or installed


def catalogue_scope(nodeid: str) -> str:
    """The scheduling unit of a test: its module for a catalogue module (whose fixtures hold the module's
    shared runs), else the test itself. The randomized twins of a module (``--codi-randomization-check``) are
    a unit of their own, queued after every unit on the model, so no worker switches models more than once."""
    from .randomization import SUFFIX, is_twin_nodeid

    path = nodeid.split("::", 1)[0]
    if not CATALOGUE_MODULE.search(path):
        return nodeid
    return path + SUFFIX if is_twin_nodeid(nodeid) else path


def _runs_catalogue(config: pytest.Config) -> bool:
    """The run names the catalogue (``hypotheses``, a file in it, or ``codi_probe.hypotheses``): only then
    is the scheduler changed. (xdist's scope scheduling puts a crashed worker's whole unit back, the
    crashed test included; other suites keep ``load``, which reports it failed once.)"""
    from pathlib import Path

    return any("hypotheses" in Path(a.split("::", 1)[0]).parts or a.startswith("codi_probe.hypotheses")
               for a in config.args)


def _dist_given(config: pytest.Config) -> bool:
    return any(a in ("--dist", "-d") or a.startswith("--dist=") for a in config.invocation_params.args)


class SharedDirectory:
    """Controller side of xdist: a temporary directory (made when the first worker starts, removed when the
    session ends) for the workers' notes to the controller (:func:`~codi_probe.plugin.scope.note_collected`)
    and, when ``--codi-cache`` is not given, for their shared work; and the scheduler of
    ``-n K`` without ``--dist``: every catalogue module goes to one worker, so its module fixtures are built
    once; every other test is scheduled on its own, as ``--dist load`` would."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.path: str | None = None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.path is None:
            self.path = tempfile.mkdtemp(prefix="codi-shared-")
            self.config.stash[SESSION_DIR_STASH] = self.path
        node.workerinput[SESSION_DIR_KEY] = self.path
        if not self.config.stash[OPTIONS_KEY].cache:
            node.workerinput[SHARED_DIR_KEY] = self.path

    @pytest.hookimpl(optionalhook=True, tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any):
        if config.getvalue("dist") != "load" or _dist_given(config) or not _runs_catalogue(config):
            return None
        from xdist.scheduler import LoadScopeScheduling

        class CatalogueScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return catalogue_scope(nodeid)

        return CatalogueScheduling(config, log)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


__all__ = ["SHARED_DIR_KEY", "SharedDirectory", "catalogue_scope", "shared_cache_dir", "shared_problems"]
