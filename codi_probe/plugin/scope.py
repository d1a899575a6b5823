"""Which tests involve codi-probe. A pytest run that collects none (an unrelated project with the plugin
installed) is left alone: no torch thread change, no codi-probe lines, no report unless asked for."""

from __future__ import annotations

import pytest

USES_CODI_KEY = pytest.StashKey[bool]()
CODI_FIXTURES = ("claim", "codi_options", "codi_model")


def uses_codi(item: pytest.Item) -> bool:
    """Does this test involve codi-probe: a claim marker, or a codi fixture anywhere in its fixture
    closure (``claim``, ``codi_options``, ``codi_model`` or any fixture built on them)?"""
    if item.get_closest_marker("claim") is not None:
        return True
    names = getattr(item, "fixturenames", ())
    return any(name in names for name in CODI_FIXTURES)


def codi_session(config: pytest.Config) -> bool:
    """Did this process collect any test that involves codi-probe? A run that did not is left alone:
    no torch thread change, no codi-probe lines, no report unless ``--codi-report`` asks for one."""
    return config.stash.get(USES_CODI_KEY, False)
