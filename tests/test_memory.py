"""``release_free_heap`` returns freed heap to the OS on glibc and does nothing elsewhere."""

import platform

from codi_probe import memory


def test_release_free_heap_runs_on_glibc():
    ran = memory.release_free_heap()
    assert ran == (platform.libc_ver()[0] == "glibc")


def test_without_malloc_trim_it_does_nothing(monkeypatch):
    monkeypatch.setattr(memory, "_libc", lambda: None)
    assert memory.release_free_heap() is False
