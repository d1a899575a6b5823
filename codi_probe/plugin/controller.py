"""The controller-side plugin: collects every test report and writes the JSON report.

Registered only in the process that is not an xdist worker. The report is written when the
session finishes, when it is interrupted, and as a last resort at unconfigure; a JSON-lines
journal (``<report>.partial.jsonl``) keeps finished tests until the report is in place.
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from ..atomic import write_text_atomic
from .baseline import BASELINE_KEY, claim_run_number, storage_dir
from .collector import Collector, failure_message, report_category
from .files import check_writable, write_json_together
from .expectations import PROFILE_KEY, expectations_label
from .metadata import WORKEROUTPUT_KEY, get_metadata
from ..threads import cpu_count
from .options import OPTIONS_KEY, CodiOptions, regression_rule, torch_threads, worker_count
from .scope import codi_session
from .report import base_environment, build_report, git_state, selection
from .summary import summary_lines


def report_paths(config: pytest.Config, options: CodiOptions) -> tuple[Path, Path | None]:
    """The report path and the ``latest.json`` copy (only for the default location). ``--codi-report
    none`` writes nothing (see :func:`report_off`)."""
    if options.report is not None:
        return Path(options.report), None
    folder = config.rootpath / "reports"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = folder / f"{stamp}.json", 0
    while path.exists():
        n += 1
        path = folder / f"{stamp}-{n}.json"
    return path, folder / "latest.json"


def report_off(options: CodiOptions) -> bool:
    """``--codi-report none``: no report, no ``latest.json``, no journal."""
    return options.report is not None and options.report.lower() == "none"


def check_output_folders(config: pytest.Config, options: CodiOptions) -> None:
    """Before any work: refuse (one line, exit 4) a report, ``latest.json``, saved-run or profile folder the
    run could not write into. The default ``reports/`` folder is checked when it exists (a project without
    one that runs no claim writes nothing there)."""
    if not report_off(options):
        folder = Path(options.report).parent if options.report is not None else config.rootpath / "reports"
        if options.report is not None or folder.exists():
            check_writable(folder, "report")
    if options.autosave:
        check_writable(storage_dir(config, options), "saved run (--codi-autosave)")
    if options.update_expect:
        check_writable(Path(options.update_expect).parent, "expectation profile (--codi-update-expect)")


def settings_line(config: pytest.Config) -> str:
    """``codi-probe: model=... dtype=... device=... expectations=...`` for the terminal."""
    o, profile = config.stash[OPTIONS_KEY], config.stash[PROFILE_KEY]
    return (f"codi-probe: model={o.model} dtype={o.dtype} device={o.device} "
            f"expectations={expectations_label(profile.describe())}")


def _last_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[-1] if lines else repr(error)


class Controller:
    """Collects reports (local or relayed by xdist) and owns the report file."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.options: CodiOptions = config.stash[OPTIONS_KEY]
        check_output_folders(config, self.options)
        self.collector = Collector()
        self.started = time.time()
        self.created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.path, self.latest = report_paths(config, self.options)
        self.journal = self.path.with_suffix(".partial.jsonl")
        self.interrupted = False
        self.collection_errors: list[dict[str, Any]] = []
        self.written: Path | None = None
        self.report: dict[str, Any] | None = None
        self.saved: Path | None = None  # --codi-autosave's numbered copy
        self.updated_profile: Path | None = None  # --codi-update-expect's profile
        self.write_error: str | None = None  # why the report could not be written (one line)

    def wants_report(self) -> bool:
        """A report is written when asked for (``--codi-report PATH``), or when any claim ran, or when
        collection failed in a run that collected codi tests; never with ``--codi-report none``."""
        if report_off(self.options):
            return False
        return (self.options.report is not None or self.collector.has_claims()
                or bool((self.collection_errors or self.interrupted) and codi_session(self.config)))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A module (or class) that failed to collect: kept for the report (xdist relays workers')."""
        if report.failed:
            self.collection_errors.append({"nodeid": report.nodeid, "message": failure_message(report)})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.collector.add(report, report_category(self.config, report))
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

    @pytest.hookimpl(trylast=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """Ctrl-C or ``pytest.exit``: write what finished now. pytest stops a run with collection errors
        by the same route (``Session.Interrupted``); that one is not an interruption (see sessionfinish).
        A codi-probe stop (``pytest.exit("codi-probe: ...")``) is shown as its own line, not as
        ``_pytest.outcomes.Exit: ...`` (after the terminal reporter kept it: this hook runs last)."""
        if self.collection_errors and excinfo.errisinstance(pytest.Session.Interrupted):
            return
        if excinfo.errisinstance(pytest.exit.Exception) and str(excinfo.value.msg).startswith("codi-probe"):
            kept = getattr(self.config.pluginmanager.get_plugin("terminalreporter"), "_keyboardinterrupt_memo", None)
            if getattr(kept, "reprcrash", None) is not None:
                kept.reprcrash.message = str(excinfo.value.msg)
        self.interrupted = True
        self.write("interrupted", None)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """The status: ``interrupted`` (Ctrl-C or ``pytest.exit``), ``collection_error`` (a module failed to
        collect, whether or not the run went on), ``incomplete`` (stopped early: ``-x``, ``--maxfail``),
        else ``complete``."""
        if self.interrupted:
            status = "interrupted"
        elif self.collection_errors:
            status = "collection_error"
        elif session.shouldfail or session.shouldstop:
            status = "incomplete"
        else:
            status = "complete"
        self.write(status, int(exitstatus), final=True)

    def pytest_unconfigure(self) -> None:
        if self.written is None:
            self.write("incomplete", None)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.report is None:
            return
        terminalreporter.write_sep("=", "codi-probe claims")
        terminalreporter.write_line(settings_line(self.config))
        for line in summary_lines(self.report, shutil.get_terminal_size().columns):
            terminalreporter.write_line(line)
        for warning in self.report["warnings"]:
            terminalreporter.write_line(f"codi-probe warning: {warning}")
        if self.write_error is not None:
            terminalreporter.write_line(f"codi-probe: {self.write_error}", red=True)
        else:
            terminalreporter.write_line(f"codi-probe report: {self.written}")
        if self.saved is not None:
            terminalreporter.write_line(f"codi-probe saved run: {self.saved}")
        if self.updated_profile is not None:
            terminalreporter.write_line(f"codi-probe expectation profile written: {self.updated_profile}")

    def environment(self) -> dict[str, Any]:
        return {**base_environment(), "device": self.options.device, "cpu_count": cpu_count(),
                "workers": worker_count(self.config),
                "threads_per_process": torch_threads(self.config, self.options),
                "invocation": [str(a) for a in self.config.invocation_params.args],
                "git": git_state(self.config.rootpath),
                "selection": selection(self.config)}

    def entry_warnings(self, seen: set[str]) -> list[str]:
        """Entries of the user's own files that match no claim of a whole run (a mistyped id would
        otherwise fall back to "record" or the global tolerance without a word), and a forced comparison."""
        warnings = []
        whole = not selection(self.config)["subset"]
        profile = self.config.stash[PROFILE_KEY]
        if whole and profile.source == "option":
            warnings += [f"expectation profile {profile.path}: entry {cid!r} matches no claim of this run"
                         for cid in sorted(set(profile.claims) - seen)]
        if whole:
            warnings += [f"claim tolerance pattern {p!r} matches no claim of this run"
                         for p in regression_rule(self.options).unused_patterns(seen)]
        baseline = self.config.stash[BASELINE_KEY]
        if baseline is not None and baseline.forced:
            warnings.append(f"baseline {baseline.path} compared although not comparable (forced): "
                            + "; ".join(baseline.forced))
        return warnings

    def write(self, status: str, exitstatus: int | None, *, final: bool = False) -> None:
        """Build the report and write it, its ``latest.json`` copy and (at the end of the session, ``final``,
        with ``--codi-autosave`` and status ``complete``) the numbered saved run together or not at all,
        then drop the journal. ``final`` also writes the drafted profile (``--codi-update-expect``). A
        failed write is one line in the terminal (:attr:`write_error`), never a traceback."""
        if not self.wants_report():
            return
        seen = {e.claim.get(key) for e in self.collector.entries.values() if e.claim
                for key in ("id", "base_id") if e.claim.get(key)}  # a profile entry may name either
        self.report = build_report(
            entries=self.collector.entries, metadata=get_metadata(self.config),
            options=self.options.as_dict(), environment=self.environment(),
            expectations=self.config.stash[PROFILE_KEY].describe(), baseline=self.config.stash[BASELINE_KEY],
            status=status, exitstatus=exitstatus, created=self.created, duration_s=time.time() - self.started,
            collection_errors=self.collection_errors, extra_warnings=self.entry_warnings(seen),
        )
        saved = None
        if final:
            self.update_profile()
            saved = self.autosave_path(status)
        paths = [self.path, *([self.latest] if self.latest is not None else []), *([saved] if saved else [])]
        try:
            write_json_together(paths, self.report)
        except OSError as exc:
            if saved is not None:
                saved.unlink(missing_ok=True)  # the claimed number
            self.write_error = f"report not written ({exc.filename or self.path}: {exc.strerror or exc})"
            return
        self.write_error = None  # an earlier failed write (e.g. at Ctrl-C) is superseded
        self.saved = saved
        self.written = self.path
        self.journal.unlink(missing_ok=True)
        self.collector.journal = None

    def autosave_path(self, status: str) -> Path | None:
        """``--codi-autosave``: the claimed number of this run in the storage folder, for a ``complete`` run
        only (an interrupted, stopped or broken run is never numbered, so it cannot be taken for a
        comparable baseline; the report's warnings say so)."""
        if not self.options.autosave:
            return None
        assert self.report is not None
        if status != "complete":
            self.report["warnings"].append(f"--codi-autosave: not saved as a numbered run: its status is {status!r} "
                                           "(only complete runs are numbered)")
            return None
        try:
            return claim_run_number(storage_dir(self.config, self.options), self.report)
        except OSError as exc:
            self.report["warnings"].append(f"--codi-autosave: not saved: {exc.strerror or exc}")
            return None

    def update_profile(self) -> None:
        """``--codi-update-expect``, with its outcome in the report's warnings (a profile is written from a
        complete, whole run only)."""
        assert self.report is not None
        if self.options.update_expect:
            from .expectations import profile_from_report

            try:
                text = profile_from_report(self.report)  # refuses a partial or subset run
            except ValueError as exc:
                self.report["warnings"].append(f"--codi-update-expect: {self.options.update_expect} not written: {exc}")
            else:
                write_text_atomic(Path(self.options.update_expect), text)
                self.updated_profile = Path(self.options.update_expect)
