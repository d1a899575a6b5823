"""codi_probe.plugin.progress: long fixtures show progress on a watched terminal, never under -q, when
piped, or in an xdist worker (issue 32 item 10)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from codi_probe import progress
from codi_probe.plugin.progress import TerminalStream, watched
from codi_probe.plugin.sharing import shared_problems

pytest_plugins = ["pytester"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def config(verbosity: int = 0, worker: bool = False):
    cfg = SimpleNamespace(get_verbosity=lambda: verbosity)
    if worker:
        cfg.workerinput = {}
    return cfg


def test_progress_is_shown_only_to_someone_watching():
    assert watched(config(), Tty())
    assert not watched(config(verbosity=-1), Tty())  # -q
    assert not watched(config(), io.StringIO())  # piped: not a terminal
    assert not watched(config(worker=True), Tty())  # an xdist worker's output is not seen


def test_a_shared_grid_counts_its_problems_with_the_time_left(pytestconfig, monkeypatch):
    """The shared grids (clean traces, CCTA, mean ablation) compute in chunks inside one fixture: the bar
    counts them."""
    stream = Tty()
    monkeypatch.setattr(progress, "_stream", stream)
    monkeypatch.setattr("codi_probe.plugin.sharing.shared_cache_dir", lambda config: None)
    monkeypatch.setattr("codi_probe.plugin.sharing._record", lambda *a, **k: None)
    rows = shared_problems(pytestconfig, "ccta", None, {}, ["a", "b", "c"], lambda idx: [{"i": i} for i in idx],
                           chunk=2)
    assert [r["i"] for r in rows] == [0, 1, 2]
    assert "ccta" in stream.getvalue() and "/3 [" in stream.getvalue() and "<" in stream.getvalue()


def test_the_bar_writes_past_pytests_capture(pytestconfig, capsys):
    stream = TerminalStream(pytestconfig)
    stream.write("\r")  # a bar's carriage return: invisible on the terminal
    assert capsys.readouterr().err == ""  # not captured as the test's output
