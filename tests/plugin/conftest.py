"""Helpers for the plugin tests: run a small claim file under pytester and read its report."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codi_probe.plugin.options import SPECS
from codi_probe.plugin.report import validate_report

# Subprocess runs skip unrelated entry-point plugins (hypothesis alone costs ~0.7 s a start).
SUBPROCESS_PLUGINS = ("-p", "xdist.plugin", "-p", "codi_probe.plugin")


@pytest.fixture
def subprocess_plugins() -> tuple[str, ...]:
    """:data:`SUBPROCESS_PLUGINS` for tests that start pytest themselves (``from conftest import`` would
    find another directory's conftest module when the whole suite runs)."""
    return SUBPROCESS_PLUGINS


@dataclass
class Run:
    result: pytest.RunResult
    path: Path

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.path.read_text())

    def claim(self, claim_id: str) -> dict[str, Any]:
        matches = [c for c in self.report["claims"] if c["id"] == claim_id]
        assert len(matches) == 1, [c["id"] for c in self.report["claims"]]
        return matches[0]

    @property
    def output(self) -> str:
        return self.result.stdout.str() + self.result.stderr.str()


@pytest.fixture(autouse=True)
def _no_codi_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The caller's CODI_* and OMP_NUM_THREADS settings must not leak into the runs under test."""
    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the thread default follows it (codi_probe.threads)


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """In-process runs set torch threads when torch is loaded; restore this process's setting."""
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    yield
    if threads is not None:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def _scipy_stats() -> None:
    """Import scipy.stats before any pytester snapshot of sys.modules.

    pytester drops the modules first imported during a test; the report's q-values import
    scipy.stats, whose C extensions cannot be imported twice in one process.
    """
    import scipy.stats  # noqa: F401


@pytest.fixture
def run_claims(_scipy_stats: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):
    """Run pytest in ``pytester.path`` (in process, or as a subprocess) with ``--codi-report``.

    Returns a :class:`Run`; the report is validated against the schema when it exists.
    """

    def run(*args: str, subprocess: bool = False, report: str = "report.json") -> Run:
        args = (*args, f"--codi-report={report}") if report else args
        if subprocess:
            monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
            result = pytester.runpytest_subprocess(*SUBPROCESS_PLUGINS, "-p", "no:cacheprovider", *args)
        else:
            result = pytester.runpytest("-p", "no:cacheprovider", *args)
        done = Run(result, pytester.path / (report or "report.json"))
        if done.path.exists():
            validate_report(done.report)
        return done

    return run
