"""Shared fixtures for the unit tests: tiny random CODI models, built once per session."""

import pytest
import torch

torch.set_num_threads(2)  # 2 cores: oversubscription makes generation 10-40x slower

ARCHES = ("tiny-random-gpt2", "tiny-random-llama")
QUESTIONS = [
    "A team starts with 3 members. They recruit 5 new members. How many members are there now?",
    "Janet has 16 eggs and eats 3. How many are left?",
    "What is 7 plus 8?",
]


@pytest.fixture(scope="session", params=ARCHES)
def tiny(request):
    from codi_probe.loading import load_codi

    return load_codi(request.param)


@pytest.fixture(scope="session")
def engine(tiny):
    from codi_probe.engine import CodiEngine

    return CodiEngine(tiny)


@pytest.fixture(scope="session")
def questions():
    return list(QUESTIONS)


@pytest.fixture(scope="session")
def cyw_checkpoint(tmp_path_factory):
    """``(checkpoint dir, base dir)`` of the tiny bcywinski-layout checkpoint (tests/bcywinski_reference.py),
    built once per session (about 20 s on 2 busy cores): test_variants and test_hub share it; copy before editing."""
    from bcywinski_reference import build_checkpoint
    from codi_probe.data.loaders import fixtures_dir

    return build_checkpoint(tmp_path_factory.mktemp("cyw"), fixtures_dir() / "tokenizers" / "gpt2")
