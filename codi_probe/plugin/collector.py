"""Controller side: fold each test's setup/call/teardown reports (local or from xdist workers)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .records import PROPERTY

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "incomplete")
_MAX_MESSAGE = 2000


def claim_property(report: pytest.TestReport) -> dict[str, Any] | None:
    """The claim record a report carries in ``user_properties`` (the latest one)."""
    found = None
    for prop in getattr(report, "user_properties", None) or ():
        if len(prop) == 2 and prop[0] == PROPERTY and isinstance(prop[1], dict):
            found = prop[1]
    return found


def failure_message(report: pytest.TestReport) -> str | None:
    """The short reason of a failed or skipped report."""
    longrepr = report.longrepr
    if longrepr is None:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, lineno, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr).strip()
    return text[:_MAX_MESSAGE]


@dataclass
class TestEntry:
    """One test's outcome so far; ``finished`` once teardown (or a worker crash) reported.

    The outcome is pytest's own category for each report (``pytest_report_teststatus``, which plugins
    extend): ``passed``/``failed``/``skipped``/``xfailed``/``xpassed`` from the call, ``error`` from a
    failed setup or teardown. A ``rerun`` (pytest-rerunfailures) starts the test over and is counted.
    """

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: str | None = None
    duration_s: float = 0.0
    message: str | None = None
    claim: dict[str, Any] | None = None
    finished: bool = False
    reruns: int = 0
    crashed: bool = False  # its worker died while running it (xdist's "???" report)

    def update(self, report: pytest.TestReport, category: str) -> None:
        """Fold one phase's report in; ``category`` is its ``pytest_report_teststatus`` category. A test
        whose worker crashed stays ``failed`` when xdist runs it again elsewhere (the catalogue's scope
        scheduler puts a crashed unit back), as the terminal counts it; its claim record is the rerun's."""
        self.duration_s += float(report.duration or 0.0)
        self.claim = claim_property(report) or self.claim
        if report.when == "???" and report.failed:
            self.crashed = True
        if self.crashed and report.when != "???":
            pass  # the rerun after a crash: the crash's failure stands
        elif category == "rerun":
            self.reruns += 1
            self.outcome, self.message = None, None
        elif category == "error":
            if self.outcome in (None, "passed"):
                self.outcome, self.message = "error", failure_message(report)
        elif category in ("skipped", "xfailed"):
            self.outcome = category
            self.message = self.message or getattr(report, "wasxfail", None) or failure_message(report)
        elif category in ("passed", "xpassed"):
            if report.when == "call":
                self.outcome = category
        elif category == "failed" or (category not in ("", None) and report.failed):
            self.outcome, self.message = "failed", failure_message(report)
        self.finished = report.when in ("teardown", "???") and category != "rerun"

    def to_dict(self) -> dict[str, Any]:
        return {"nodeid": self.nodeid, "outcome": self.outcome or "incomplete",
                "duration_s": round(self.duration_s, 6), "message": self.message, "reruns": self.reruns}


def report_category(config: pytest.Config, report: pytest.TestReport) -> str:
    """pytest's category for a report (``""`` for a passing setup or teardown); a failing report that
    no plugin categorises counts as ``failed`` (call) or ``error`` (setup, teardown)."""
    status = config.hook.pytest_report_teststatus(report=report, config=config)
    category = status[0] if status else ""
    if not category and report.failed:
        return "failed" if report.when in ("call", "???") else "error"
    return str(category)


class Collector:
    """All tests' entries, plus an append-only JSON-lines journal of finished ones."""

    def __init__(self) -> None:
        self.entries: dict[str, TestEntry] = {}
        self.journal: Path | None = None  # set once the run decides to write a report

    def add(self, report: pytest.TestReport, category: str) -> TestEntry:
        entry = self.entries.setdefault(report.nodeid, TestEntry(report.nodeid))
        entry.update(report, category)
        if entry.finished and self.journal is not None:
            self.append_journal(entry)
        return entry

    def has_claims(self) -> bool:
        return any(e.claim is not None for e in self.entries.values())

    def start_journal(self, path: Path) -> None:
        """Start the journal at ``path`` with every test finished so far."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
        self.journal = path
        for entry in self.entries.values():
            if entry.finished:
                self.append_journal(entry)

    def append_journal(self, entry: TestEntry) -> None:
        assert self.journal is not None
        with self.journal.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({**entry.to_dict(), "claim": entry.claim}, allow_nan=False) + "\n")
            handle.flush()
