"""The catalogue's pytest configuration: ``-n K`` runs each claim module in one worker (see
:func:`codi_probe.plugin.sharing.group_modules`)."""

from codi_probe.plugin.sharing import group_modules


def pytest_configure(config):
    group_modules(config)
