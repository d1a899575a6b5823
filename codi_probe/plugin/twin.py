"""``--codi-randomization-check``'s hook and fixture (see :mod:`.randomization`): the twin items, appended
after collection, and ``codi_randomized_model``, the model's weight-randomized twin."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from .randomization import make_twin, wants_twin


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> Generator[None, Any, Any]:
    """After every other plugin selected and ordered the items: append a twin of each empirical claim."""
    result = yield
    from .options import OPTIONS_KEY

    if config.stash[OPTIONS_KEY].randomization_check:
        items.extend([make_twin(item) for item in items if wants_twin(item)])
    return result


@pytest.fixture(scope="session")
def codi_randomized_model(pytestconfig: pytest.Config, codi_options: Any) -> Any:
    """The model's weight-randomized twin (:func:`codi_probe.randomization.randomize_weights`, seeded by
    ``--codi-seed``), loaded with the same options; its fingerprint goes to ``session.randomized_model``."""
    from ..randomization import METHOD, randomize_weights
    from .fixtures import load_session_model
    from .metadata import add_session_metadata

    model = randomize_weights(load_session_model(pytestconfig, codi_options), codi_options.seed)
    fingerprint = model.fingerprint()
    add_session_metadata(pytestconfig, "randomized_model",
                         {"name": fingerprint["name"], "sha256": fingerprint["sha256"], "seed": codi_options.seed,
                          "method": METHOD}, section="session")
    return model
