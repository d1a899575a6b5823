"""Which tests involve codi-probe. A pytest run that collects none (an unrelated project with the plugin
installed) is left alone: no torch thread change, no codi-probe lines, no report unless asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

USES_CODI_KEY = pytest.StashKey[bool]()
SESSION_DIR_KEY = "codi_session_dir"  # workerinput key: the xdist controller's directory for its workers' notes
SESSION_DIR_STASH = pytest.StashKey[str]()  # the same directory, on the controller
USES_CODI_NOTE = ".uses_codi"  # written there by a worker that collected a codi test
CODI_FIXTURES = ("claim", "codi_options", "codi_model")


def uses_codi(item: pytest.Item) -> bool:
    """Does this test involve codi-probe: a claim marker, or a codi fixture anywhere in its fixture
    closure (``claim``, ``codi_options``, ``codi_model`` or any fixture built on them)?"""
    if item.get_closest_marker("claim") is not None:
        return True
    names = getattr(item, "fixturenames", ())
    return any(name in names for name in CODI_FIXTURES)


def note_collected(config: pytest.Config, uses: bool) -> None:
    """Record whether this process collected a codi test; an xdist worker also tells its controller (which
    collects nothing itself) through a note in the controller's session directory, at once, so that a
    Ctrl-C before any test reports still finds a codi session there."""
    config.stash[USES_CODI_KEY] = uses
    directory = getattr(config, "workerinput", {}).get(SESSION_DIR_KEY)
    if uses and directory:
        (Path(directory) / USES_CODI_NOTE).touch()


def codi_session(config: pytest.Config) -> bool:
    """Did this process collect any test that involves codi-probe (on an xdist controller: did a worker)?
    A run that did not is left alone: no torch thread change, no codi-probe lines, no report unless
    ``--codi-report`` asks for one."""
    if config.stash.get(USES_CODI_KEY, False):
        return True
    directory = config.stash.get(SESSION_DIR_STASH, None)
    return directory is not None and (Path(directory) / USES_CODI_NOTE).exists()
