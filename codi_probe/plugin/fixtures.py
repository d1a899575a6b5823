"""Session fixtures, each set up once per pytest process (once per xdist worker).

To add a session fixture (``codi_problems``, ``codi_traces``, ...), write it in a module of this
package and list that module in ``pytest_plugins`` in ``codi_probe/plugin/__init__.py``; use
:func:`~codi_probe.plugin.metadata.add_session_metadata` to put its fingerprint in the report.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from ..errors import first_line
from .baseline import check_model
from .metadata import add_process_info, add_session_metadata, set_torch_threads
from .options import OPTIONS_KEY, CodiOptions, worker_device
from .recorder import ClaimRecorder
from .records import DEVICE_KEY, RECORD_KEY, hypothesis_of


@pytest.fixture(scope="session")
def codi_options(pytestconfig: pytest.Config) -> CodiOptions:
    """The resolved ``--codi-*`` options (command line > environment > ini > default)."""
    return pytestconfig.stash[OPTIONS_KEY]


def load_session_model(pytestconfig: pytest.Config, codi_options: CodiOptions) -> Any:
    """Load the ``--codi-*`` model in this process (torch threads set first); a model that cannot load
    stops the run with one line (exit 4), its error in the report's model section."""
    set_torch_threads(pytestconfig, codi_options)
    from codi_probe.loading import load_codi

    try:
        device = worker_device(codi_options.device, pytestconfig)
        return load_codi(codi_options.model, base=codi_options.base, tokenizer=codi_options.tokenizer,
                         dtype=codi_options.dtype, device=device, lora_alpha=codi_options.lora_alpha)
    except Exception as exc:
        first = first_line(exc)
        add_session_metadata(pytestconfig, "load_error", f"{codi_options.model}: {type(exc).__name__}: {first}",
                             section="model")
        # one line that stops the run, instead of one error with a traceback per test that needs the model
        pytest.exit(f"codi-probe: cannot load model {codi_options.model!r}: {first}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.fixture(scope="session")
def codi_model(request: pytest.FixtureRequest, pytestconfig: pytest.Config, codi_options: CodiOptions) -> Any:
    """The CODI model, loaded once per process; its fingerprint and load time go to the report. In a twin
    item of ``--codi-randomization-check`` it is the weight-randomized twin (:mod:`.randomization`)."""
    from .randomization import is_randomized

    if is_randomized(request):
        return request.getfixturevalue("codi_randomized_model")
    start = time.perf_counter()
    model = load_session_model(pytestconfig, codi_options)
    add_process_info(pytestconfig, "model_load_s", round(time.perf_counter() - start, 3))
    where = str(getattr(model, "device", None) or worker_device(codi_options.device, pytestconfig))
    add_process_info(pytestconfig, "device", where)
    pytestconfig.stash[DEVICE_KEY] = where
    fingerprint = model.fingerprint()
    for key, value in fingerprint.items():
        add_session_metadata(pytestconfig, key, value, section="model")
    check_model(pytestconfig, fingerprint)  # a baseline of other weights stops the run here
    return model


@pytest.fixture
def claim(request: pytest.FixtureRequest) -> ClaimRecorder:
    """The recorder for this test's ``@pytest.mark.claim``."""
    record = request.node.stash.get(RECORD_KEY, None)
    if record is None:
        pytest.fail(f"{request.node.nodeid}: the claim fixture needs "
                    f"@pytest.mark.claim(id=..., statement=..., kind=...)", pytrace=False)
    return ClaimRecorder(record, hypothesis_of(request.node))
