"""codi_probe.defaults holds torch-free copies of names the torch modules define; they stay in step."""

import pytest

from codi_probe.defaults import DTYPE_CHOICES, PRECISIONS, TINY_MODELS


def test_the_torch_free_tiny_names_match_the_tiny_configs():
    from codi_probe.tiny import TINY_CONFIGS

    assert set(TINY_MODELS) == set(TINY_CONFIGS)


def test_the_dtype_vocabulary_is_the_models():
    from codi_probe.model import DTYPES, check_precision

    assert PRECISIONS == (*DTYPES, "mixed")
    for name in DTYPE_CHOICES:
        check_precision(name, native=True)
    with pytest.raises(ValueError, match="unknown dtype 'fp64'"):
        check_precision("fp64", native=True)


def test_the_cli_and_the_plugin_offer_the_same_dtypes():
    from codi_probe.cli import build_parser
    from codi_probe.plugin.options import SPECS

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in ("info", "run"):
        dtype = next(a for a in sub.choices[command]._actions if a.dest == "dtype")
        assert tuple(dtype.choices) == DTYPE_CHOICES
    spec = next(s for s in SPECS if s.name == "dtype")
    assert all(spec.parse(name) == name for name in DTYPE_CHOICES)
    with pytest.raises(ValueError):
        spec.parse("fp64")
