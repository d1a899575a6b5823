"""pyproject.toml installs the whole product: every subpackage, the catalogue (hypotheses/ as
codi_probe.hypotheses) and the fixtures (fixtures/ inside the package). The built wheel is run from an
empty directory by .ci/wheel-check."""

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed():
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "codi_probe").rglob("__init__.py")}
    assert found <= set(SETUPTOOLS["packages"]), sorted(found - set(SETUPTOOLS["packages"]))


def test_the_catalogue_and_the_fixtures_install_inside_the_package():
    assert SETUPTOOLS["package-dir"] == {"codi_probe.hypotheses": "hypotheses", "codi_probe.fixtures": "fixtures"}
    assert {"codi_probe.hypotheses", "codi_probe.fixtures"} <= set(SETUPTOOLS["packages"])
    assert (ROOT / "hypotheses" / "__init__.py").is_file()
    assert not (ROOT / "hypotheses" / "conftest.py").exists()  # its fixtures come from the plugin


def test_fixtures_dir_prefers_an_installed_copy(tmp_path, monkeypatch):
    from codi_probe.data import loaders

    monkeypatch.delenv(loaders.ENV_VAR, raising=False)
    assert loaders.fixtures_dir() == ROOT / "fixtures"  # a clone: codi_probe/fixtures does not exist
    monkeypatch.setenv(loaders.ENV_VAR, str(tmp_path))
    assert loaders.fixtures_dir() == tmp_path


pytest_plugins = ["pytester"]


def test_a_users_own_test_file_gets_the_catalogue_fixtures(pytester: pytest.Pytester):
    """The fixtures the claims use come from the plugin, so a test file outside hypotheses/ has them."""
    result = pytester.runpytest("--fixtures", "-p", "no:cacheprovider")
    out = result.stdout.str()
    for name in ("codi_engine", "template_problems", "template_trace", "answer_problems", "ccta", "empirical_n",
                 "codi_model", "claim"):
        assert f"{name} [session scope]" in out or f"\n{name}\n" in out or f"{name} --" in out, name
