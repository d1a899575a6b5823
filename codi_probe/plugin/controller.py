"""The controller-side plugin: collects every test report and writes the JSON report.

Registered only in the process that is not an xdist worker. The report is written when the
session finishes, when it is interrupted, and as a last resort at unconfigure; a JSON-lines
journal (``<report>.partial.jsonl``) keeps finished tests until the report is in place.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from .baseline import BASELINE_KEY
from .collector import Collector
from .files import write_json_atomic
from .expectations import PROFILE_KEY, expectations_label
from .metadata import WORKEROUTPUT_KEY, get_metadata
from .options import OPTIONS_KEY, CodiOptions, cpu_count, torch_threads, worker_count
from .report import base_environment, build_report
from .summary import summary_lines


def report_paths(config: pytest.Config, options: CodiOptions) -> tuple[Path, Path | None]:
    """The report path and the ``latest.json`` copy (only for the default location)."""
    if options.report is not None:
        return Path(options.report), None
    folder = config.rootpath / "reports"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = folder / f"{stamp}.json", 0
    while path.exists():
        n += 1
        path = folder / f"{stamp}-{n}.json"
    return path, folder / "latest.json"


def _last_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else repr(error)


class Controller:
    """Collects reports (local or relayed by xdist) and owns the report file."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.options: CodiOptions = config.stash[OPTIONS_KEY]
        self.collector = Collector()
        self.started = time.time()
        self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.path, self.latest = report_paths(config, self.options)
        self.journal = self.path.with_suffix(".partial.jsonl")
        self.interrupted = False
        self.written: Path | None = None
        self.report: dict[str, Any] | None = None

    def wants_report(self) -> bool:
        """A report is written when asked for (``--codi-report``) or when any claim ran."""
        return self.options.report is not None or self.collector.has_claims()

    def pytest_report_header(self) -> str:
        o, profile = self.options, self.config.stash[PROFILE_KEY]
        return (f"codi-probe: model={o.model} dtype={o.dtype} device={o.device} "
                f"expectations={expectations_label(profile.describe())}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.collector.add(report)
        if self.collector.journal is None and self.wants_report():
            self.collector.start_journal(self.journal)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """xdist: merge a finished worker's session metadata; note a worker that went down."""
        worker = getattr(node, "workerinput", {}).get("workerid", "?")
        payload = (getattr(node, "workeroutput", None) or {}).get(WORKEROUTPUT_KEY)
        metadata = get_metadata(self.config)
        if payload:
            metadata.merge(payload, origin=worker)
        if error is not None:
            metadata.warnings.append(f"worker {worker} went down: {_last_line(error)}")

    def pytest_keyboard_interrupt(self) -> None:
        self.interrupted = True
        self.write("interrupted", None)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, exitstatus: int) -> None:
        interrupted = self.interrupted or exitstatus == pytest.ExitCode.INTERRUPTED
        self.write("interrupted" if interrupted else "complete", int(exitstatus))

    def pytest_unconfigure(self) -> None:
        if self.written is None:
            self.write("incomplete", None)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None:
            return
        terminalreporter.write_sep("=", "codi-probe claims")
        for line in summary_lines(self.report):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"codi-probe report: {self.written}")

    def environment(self) -> dict[str, Any]:
        return {**base_environment(), "device": self.options.device, "cpu_count": cpu_count(),
                "workers": worker_count(self.config),
                "threads_per_process": torch_threads(self.config, self.options),
                "invocation": [str(a) for a in self.config.invocation_params.args]}

    def write(self, status: str, exitstatus: int | None) -> None:
        """Build and write the report (atomically), its ``latest.json`` copy, and drop the journal."""
        if not self.wants_report():
            return
        self.report = build_report(
            entries=self.collector.entries, metadata=get_metadata(self.config),
            options=self.options.as_dict(), environment=self.environment(),
            expectations=self.config.stash[PROFILE_KEY].describe(), baseline=self.config.stash[BASELINE_KEY],
            status=status, exitstatus=exitstatus, created=self.created, duration_s=time.time() - self.started,
        )
        write_json_atomic(self.path, self.report)
        if self.latest is not None:
            write_json_atomic(self.latest, self.report)
        self.written = self.path
        self.journal.unlink(missing_ok=True)
        self.collector.journal = None
