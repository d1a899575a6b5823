"""Handing freed heap memory back to the operating system (glibc).

glibc keeps freed blocks of medium size (up to its dynamic mmap threshold, 32 MB on 64-bit) in the
heap for reuse, so a phase of large temporaries (the question prefix's MLP activations; a thousand-row
latent step) leaves hundreds of MB resident after they are freed, and the next phase's buffers come
on top of them. :func:`release_free_heap` asks glibc to return every free page (``malloc_trim(0)``); it
frees nothing that is in use and costs milliseconds. Elsewhere (not glibc) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_free_heap() -> bool:
    """Return free heap pages to the OS; True when glibc's ``malloc_trim`` ran."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


__all__ = ["release_free_heap"]
