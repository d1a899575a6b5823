"""Session fixtures shared by the claims: the engine, the problem set and the clean traces.

The model itself (``codi_model``), the options and the ``claim`` recorder come from the codi-probe
pytest plugin. Everything here is built once per process (once per xdist worker).
"""

import pytest

DEFAULT_PROBLEMS = 8  # invariants are exact checks: a few problems of mixed length suffice


@pytest.fixture(scope="session")
def codi_engine(codi_model):
    from codi_probe.engine import CodiEngine

    return CodiEngine(codi_model)


@pytest.fixture(scope="session")
def codi_problems(pytestconfig, codi_options):
    """The first N GSM8K test problems in file order (no filtering; N = --codi-problems)."""
    from codi_probe.data import load_gsm8k
    from codi_probe.plugin.metadata import add_session_metadata

    n = codi_options.problems or DEFAULT_PROBLEMS
    problems = list(load_gsm8k("test"))[:n]
    add_session_metadata(pytestconfig, "invariant_problems",
                         {"source": "gsm8k/test", "n": len(problems), "ids": [p.id for p in problems]},
                         section="data")
    return problems


@pytest.fixture(scope="session")
def codi_questions(codi_problems):
    return [p.question for p in codi_problems]


@pytest.fixture(scope="session")
def clean_trace(codi_engine, codi_questions):
    """One clean traced run of every problem (all module sites, attention), shared by the claims."""
    from codi_probe.engine import Record

    return codi_engine.run(codi_questions, record=Record(sites=("resid_post", "attn_out", "mlp_out"),
                                                         attention=True), max_new_tokens=8)
