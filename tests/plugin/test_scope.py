"""A pytest run that is not about CODI is left alone by the installed plugin (scope.py)."""

from __future__ import annotations

import re

import pytest

pytest_plugins = ["pytester"]

UNRELATED_CONFTEST = """
import torch
torch.set_num_threads(1)  # the project's own choice
"""
UNRELATED_TEST = """
import torch

def test_threads_are_the_projects():
    assert torch.get_num_threads() == 1

def test_other():
    assert 1 + 1 == 2
"""


def _normalised(text: str) -> list[str]:
    """Output lines without timings and the plugin list (which names codi_probe when it is loaded)."""
    keep = []
    for line in text.splitlines():
        if line.startswith(("plugins:", "rootdir:", "platform ", "cachedir:")):
            continue
        keep.append(re.sub(r"in [0-9.]+s", "in Ts", line))
    return keep


def test_an_unrelated_run_is_unchanged(pytester: pytest.Pytester) -> None:
    """No thread change (the project set 1; the plugin used to set the cpu count), no codi-probe line, no
    report, and the same output as with the plugin switched off. Subprocesses with the installed
    entry points, as a user's run has them."""
    pytester.makeconftest(UNRELATED_CONFTEST)
    pytester.makepyfile(test_unrelated=UNRELATED_TEST)
    with_plugin = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    without = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:codi_probe")
    with_plugin.assert_outcomes(passed=2)
    without.assert_outcomes(passed=2)
    assert not [line for line in _normalised(with_plugin.stdout.str()) if "codi" in line]
    assert _normalised(with_plugin.stdout.str()) == _normalised(without.stdout.str())
    assert not (pytester.path / "reports").exists()


def test_a_codi_run_names_its_settings_after_collection(pytester: pytest.Pytester, run_claims) -> None:
    pytester.makepyfile(test_c="""
import pytest

@pytest.mark.claim(id="C-01", statement="s", kind="empirical")
def test_c(claim):
    claim.record("x", 0.5, verdict="supported")
""")
    run = run_claims("--codi-expect=none")
    lines = run.result.stdout.lines
    collected = next(i for i, line in enumerate(lines) if line.startswith("collected "))
    assert lines[collected + 1].startswith("codi-probe: model=")


@pytest.mark.parametrize(("source", "expected"), [("fixture", True), ("marker", True), ("none", False)])
def test_uses_codi(source: str, expected: bool, pytester: pytest.Pytester) -> None:
    from codi_probe.plugin.scope import uses_codi

    body = {"fixture": "@pytest.fixture\ndef mine(codi_options):\n    return 1\n\ndef test_x(mine):\n    pass\n",
            "marker": "@pytest.mark.claim(id='X', statement='s', kind='invariant')\ndef test_x():\n    pass\n",
            "none": "def test_x(tmp_path):\n    pass\n"}[source]
    path = pytester.makepyfile("import pytest\n\n" + body)
    items, _ = pytester.inline_genitems(path)
    assert [uses_codi(item) for item in items] == [expected]
