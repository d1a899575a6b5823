"""Repository-level pytest configuration, shared by ``tests/`` and ``hypotheses/``.

The codi-probe plugin itself (options, fixtures, claim records, the report) is registered through the
``pytest11`` entry point of the installed package, so it also works outside this repository.
"""

import os

from hypothesis import settings

# Deterministic property tests in CI (CI=true); random exploration on developer machines.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
