"""How many torch threads a codi-probe process uses: one policy for the CLI and the pytest plugin.

An explicit request (``--threads``, ``--codi-threads``) wins; then the user's own setting in the
environment (``OMP_NUM_THREADS``, which torch itself honours), which codi-probe leaves as it is; then the
CPUs this process may run on, divided among the processes that share them (xdist workers). Torch's own
default counts physical cores and ignores affinity, so on a 2-core container shared by two workers it
oversubscribes (10-40x slower on this project's kernels).
"""

from __future__ import annotations

import os

USER_ENV = "OMP_NUM_THREADS"


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def user_threads() -> int | None:
    """The user's ``OMP_NUM_THREADS`` when it is a positive integer, else ``None``."""
    text = os.environ.get(USER_ENV, "").strip()
    return int(text) if text.isdigit() and int(text) > 0 else None


def default_threads(requested: int | None = None, *, processes: int = 1) -> int:
    """Threads for one process: ``requested``, else the user's ``OMP_NUM_THREADS``, else
    cpu count // ``processes`` (at least 1)."""
    if requested is not None:
        return requested
    return user_threads() or max(1, cpu_count() // max(1, processes))


def threads_source(requested: int | None = None) -> str:
    """Which rule chose :func:`default_threads`: ``requested``, ``OMP_NUM_THREADS`` or ``cpu count``."""
    if requested is not None:
        return "requested"
    return USER_ENV if user_threads() is not None else "cpu count"
