"""Where :mod:`codi_probe.progress` draws during a pytest run: on the terminal, through pytest's output
capture (a fixture's own output is captured, its progress is not), only when someone watches: stderr is a
terminal, the run is not ``-q``, and this is not an xdist worker (whose output nobody sees)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from .. import progress


class TerminalStream:
    """A file-like object that writes to the real stderr with pytest's capture suspended."""

    def __init__(self, config: pytest.Config):
        self.capture = config.pluginmanager.getplugin("capturemanager")
        self.started = False

    def write(self, text: str) -> int:
        if self.capture is None:
            return sys.__stderr__.write(text)
        with self.capture.global_and_fixture_disabled():
            if not self.started:  # a bar starts below pytest's current line ("test_x.py ..."), not over it
                sys.stderr.write("\n")
                self.started = True
            written = sys.stderr.write(text)
            sys.stderr.flush()
        return written

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def watched(config: pytest.Config, stream: Any = None) -> bool:
    """Does anyone watch this process's progress: a terminal, not ``-q``, not an xdist worker."""
    stream = stream if stream is not None else sys.__stderr__
    return (config.get_verbosity() >= 0 and not hasattr(config, "workerinput")
            and stream is not None and stream.isatty())


def configure_progress(config: pytest.Config) -> None:
    progress.show_on(TerminalStream(config) if watched(config) else None)


def unconfigure_progress() -> None:
    progress.show_on(None)
