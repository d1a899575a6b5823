"""Hooks that run in every pytest process (the controller and each xdist worker)."""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

from .baseline import BASELINE_KEY, check_baseline, load_baseline
from .controller import Controller, settings_line
from .scope import codi_session, note_collected, uses_codi
from .sharing import SharedDirectory
from .expectations import PROFILE_KEY, RECORD, check_expectation, load_profile
from .metadata import WORKEROUTPUT_KEY, get_metadata, set_torch_threads
from .options import OPTIONS_KEY, add_options, resolve_options, worker_id
from .progress import configure_progress, unconfigure_progress
from .randomization import TWIN_WHY, is_twin
from .records import DEVICE_KEY, KINDS, PROPERTY, RECORD_KEY, ClaimMarkerError, ClaimRecord, claim_from_item

MARKERS = (
    "claim(id, statement, source=None, reported=None, kind=None): a research claim; kind is "
    "'invariant' (the test asserts) or 'empirical' (judged against the expectation profile)",
    "invariant: a guard that must hold on any CODI model",
    "empirical: a measured claim judged against an expectation profile",
    "decided: an empirical claim whose expectation profile pins a verdict (not 'record'); with the design-"
    "derived profile, the claims the model's design decides (-m 'decided or invariant' runs only those)",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    options = resolve_options(config)
    config.stash[OPTIONS_KEY] = options
    config.stash[PROFILE_KEY] = load_profile(options.expect, options.model)
    config.stash[BASELINE_KEY] = load_baseline(config, options)
    configure_progress(config)
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(Controller(config), "codi_probe.controller")
        config.pluginmanager.register(SharedDirectory(config), "codi_probe.shared_directory")



@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each claim its kind as a marker too, so ``-m empirical`` selects it; and ``decided`` to an
    empirical claim whose profile entry pins a verdict, so ``-m decided`` selects what the design decides.
    Note whether any test involves codi-probe (before deselection: a ``-k`` that keeps none still
    collected some)."""
    profile = config.stash[PROFILE_KEY]
    note_collected(config, any(uses_codi(item) for item in items))
    for item in items:
        marker = item.get_closest_marker("claim")
        kind = marker.kwargs.get("kind") if marker is not None else None
        if kind in KINDS and item.get_closest_marker(kind) is None:
            item.add_marker(kind)
        if kind == "empirical":
            try:
                record = claim_from_item(item)
            except ClaimMarkerError:
                continue  # reported when the test runs
            if record is not None and profile.expected(record) != RECORD:
                item.add_marker("decided")


def pytest_collection_finish(session: pytest.Session) -> None:
    """In a run with codi tests, if collecting imported torch already, set this process's torch threads
    now (it costs nothing); ``codi_model`` sets them in any case before loading. Other runs keep theirs."""
    if codi_session(session.config) and "torch" in sys.modules:
        set_torch_threads(session.config, session.config.stash[OPTIONS_KEY])


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """The run's codi-probe settings, after the collected count, in a run with codi tests (an xdist
    controller collects nothing; its terminal summary carries the same line)."""
    if not codi_session(config):
        return []
    return [settings_line(config)]



def _sync(item: pytest.Item, record: ClaimRecord) -> None:
    """Put the record's current state into ``item.user_properties`` (which crosses xdist)."""
    props = [p for p in item.user_properties if p[0] != PROPERTY]
    item.user_properties[:] = [*props, (PROPERTY, record.to_dict())]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start the claim's record before fixtures run, so even a setup error names the claim."""
    try:
        record = claim_from_item(item)
    except ClaimMarkerError as exc:
        pytest.fail(str(exc), pytrace=False)
    if record is None:
        return
    if is_twin(item):  # --codi-randomization-check: the twin's verdict is only recorded
        record.expected, record.expected_why = RECORD, TWIN_WHY
    else:
        profile = item.config.stash[PROFILE_KEY]
        record.expected = profile.expected(record)
        record.expected_why = profile.reason(record)
        baseline = item.config.stash[BASELINE_KEY]
        if baseline is not None:
            record.baseline = baseline.match(record, item.nodeid)
    item.stash[RECORD_KEY] = record
    _sync(item, record)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    """After the test body returns: the expectation-profile and baseline checks. An invariant whose body
    returned without recording a verdict is supported (so that a flip from refuted is seen here too)."""
    result = yield
    record = pyfuncitem.stash.get(RECORD_KEY, None)
    if record is not None:
        if record.kind == "invariant" and record.verdict is None:
            record.verdict = "supported"
        baseline = None if is_twin(pyfuncitem) else pyfuncitem.config.stash[BASELINE_KEY]
        expectation = check_expectation(record)
        record.failures = ([expectation] if expectation else []) + (
            check_baseline(record, baseline.rule) if baseline is not None else [])
        if record.failures:
            pytest.fail("\n".join(record.failures), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Refresh the record in ``user_properties`` just before each phase's report is made.

    An invariant whose body failed an assertion without recording a verdict is refuted (one whose body
    returned is made supported in ``pytest_pyfunc_call``, before the baseline check).
    """
    record = item.stash.get(RECORD_KEY, None)
    if record is not None:
        if (call.when == "call" and record.kind == "invariant" and record.verdict is None
                and call.excinfo is not None and call.excinfo.errisinstance(AssertionError)):
            record.verdict = "refuted"
        record.worker = worker_id(item.config)
        record.device = item.config.stash.get(DEVICE_KEY, None)
        _sync(item, record)
    return (yield)


def pytest_unconfigure(config: pytest.Config) -> None:
    unconfigure_progress()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Workers: hand the session metadata to xdist, which ships it to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKEROUTPUT_KEY] = get_metadata(session.config).payload()
