"""codi_probe.threads: one thread policy for the CLI and the plugin."""

import pytest

from codi_probe.threads import cpu_count, default_threads, threads_source, user_threads


@pytest.fixture(autouse=True)
def _no_user_setting(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_requested_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert default_threads(5) == 5 and threads_source(5) == "requested"


def test_the_users_omp_setting_is_respected(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert user_threads() == 1
    assert default_threads(processes=4) == 1 and threads_source() == "OMP_NUM_THREADS"


@pytest.mark.parametrize("text", ["", "0", "two", "-1"])
def test_an_unusable_omp_setting_is_ignored(text, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", text)
    assert user_threads() is None and default_threads() == cpu_count()


def test_cpus_are_shared_among_processes():
    assert default_threads() == cpu_count()
    assert default_threads(processes=cpu_count() * 2) == 1  # never 0
    assert threads_source() == "cpu count"
