"""``--codi-compare`` / ``--codi-baseline``: each claim against the same claim of a saved run, under the
rule :mod:`codi_probe.regression` shares with ``codi-probe compare``; and ``--codi-autosave``'s numbered
saved runs (as pytest-benchmark's ``--benchmark-autosave`` / ``--benchmark-compare``).

The comparison is checked before anything runs: a partial or subset baseline, or one whose options,
codi-probe version or schema differ, is a one-line usage error unless ``--codi-force-compare``; the
model's weights are checked when the model loads (:func:`check_model`).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from ..regression import MODEL_SHAPE, Rule, baseline_problems, differences, match, weights_changed
from .files import read_json
from .options import OPTIONS_KEY, CodiOptions, regression_rule
from .records import ClaimRecord

BASELINE_KEY = pytest.StashKey["Baseline | None"]()
FORCE_FLAG = "--codi-force-compare"
SAVED = re.compile(r"^(\d{4,})_.*\.json$")


@dataclass(frozen=True)
class Baseline:
    """The saved run's claims, indexed by claim id, and the rule that judges the new ones."""

    path: str
    rule: Rule
    report: dict[str, Any] = field(repr=False, default_factory=dict)
    claims: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    forced: tuple[str, ...] = ()  # what differed when --codi-force-compare let the comparison go ahead
    weights: str | None = None  # "weights sha256 a -> b" once the model loaded: a retrained checkpoint

    @property
    def created(self) -> str | None:
        return self.report.get("created")

    def match(self, record: ClaimRecord, nodeid: str) -> dict[str, Any] | None:
        """The baseline claim this record is judged against (:func:`codi_probe.regression.match`)."""
        return match(self.claims.get(record.id, []), record.id, nodeid)

    def describe(self, seen_ids: set[str], model: dict[str, Any] | None = None) -> dict[str, Any]:
        """The report's ``baseline`` section. ``model``: the run's model fingerprint (the report's ``model``,
        merged from xdist workers), from which ``weights_changed`` is computed, so that a ``-n`` run whose
        controller never loads the model says what a serial run says."""
        rule = self.rule
        weights = weights_changed(self.report, {"model": model}) if model else self.weights
        return {"path": self.path, "tolerance": rule.tolerance.abs, "rel_tolerance": rule.tolerance.rel,
                "fail_on": sorted(rule.fail_on), "claim_tolerances": [f"{p} abs={t.abs:g} rel={t.rel:g}"
                                                                       for p, t in rule.per_claim],
                "created": self.created, "forced": list(self.forced), "weights_changed": weights,
                "missing": sorted(set(self.claims) - seen_ids)}


def saved_runs(storage: Path) -> list[tuple[int, Path]]:
    """``(number, path)`` of the runs saved in ``storage``, in number order."""
    if not storage.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in storage.iterdir() if (m := SAVED.match(p.name))]
    return sorted(found)


def storage_dir(config: pytest.Config, options: CodiOptions) -> Path:
    return Path(options.storage) if options.storage else config.rootpath / "reports" / "runs"


def resolve_compare(config: pytest.Config, options: CodiOptions) -> str | None:
    """The baseline report path: ``--codi-compare latest|N|PATH``, else ``--codi-baseline PATH``."""
    if options.compare is None:
        return options.baseline
    if options.baseline is not None:
        raise pytest.UsageError("--codi-compare and --codi-baseline both given: use one")
    choice = options.compare.strip()
    if choice.lower() == "none":
        return None
    storage = storage_dir(config, options)
    if choice == "latest":
        for _, path in reversed(saved_runs(storage)):
            data = read_json(path, "saved run")
            if isinstance(data, dict) and not baseline_problems(data):
                return str(path)
        raise pytest.UsageError(f"--codi-compare latest: no complete whole run saved in {storage} "
                                f"(save runs with --codi-autosave)")
    if choice.isdigit():
        matches = [p for n, p in saved_runs(storage) if n == int(choice)]
        if not matches:
            raise pytest.UsageError(f"--codi-compare {choice}: no run {int(choice):04d} saved in {storage}")
        return str(matches[0])
    return str(config.invocation_params.dir / choice)


def run_facts(options: CodiOptions) -> dict[str, Any]:
    """What this run is known to be before it starts, shaped like a report (for :func:`differences`)."""
    from .. import __version__
    from .report import SCHEMA_VERSION

    return {"schema_version": SCHEMA_VERSION,
            "options": {"problems": options.problems, "depth": options.depth, "seed": options.seed,
                        "dtype": options.dtype},
            "environment": {"packages": {"codi-probe": __version__}}}


def load_baseline(config: pytest.Config, options: CodiOptions) -> Baseline | None:
    """Read and check the baseline; ``None`` when there is none. A missing, malformed, partial or
    incomparable one is a one-line ``pytest.UsageError`` (unless ``--codi-force-compare``)."""
    path = resolve_compare(config, options)
    if path is None or path.lower() == "none":
        return None
    data = read_json(Path(path), "baseline report")
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, str) or version.split(".")[0] != "1" or not isinstance(data.get("claims"), list):
        raise pytest.UsageError(f"{path}: not a codi-probe report (schema_version 1.x with a claims list)")
    try:
        rule = regression_rule(options)
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None
    problems = baseline_problems(data) + differences(data, run_facts(options))
    if problems and not options.force_compare:
        raise pytest.UsageError(f"{path}: not comparable ({'; '.join(problems)}); pass {FORCE_FLAG} to compare anyway")
    claims: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for claim in data["claims"]:
        if isinstance(claim, dict) and isinstance(claim.get("id"), str):
            claims[claim["id"]].append(claim)
    return Baseline(path=str(path), rule=rule, report=data, claims=dict(claims), forced=tuple(problems))


def check_model(config: pytest.Config, fingerprint: dict[str, Any]) -> None:
    """At model load: refuse a baseline of a model of another shape (``pytest.exit``, one line) unless
    forced; note changed weights (a retrained checkpoint: what a regression check compares)."""
    baseline = config.stash.get(BASELINE_KEY, None)
    if baseline is None:
        return
    now = {"model": fingerprint}
    differs = differences(baseline.report, now, MODEL_SHAPE)
    if differs and not config.stash[OPTIONS_KEY].force_compare:
        pytest.exit(f"codi-probe: {baseline.path}: not comparable ({'; '.join(differs)}: the baseline is of "
                    f"another model); pass {FORCE_FLAG} to compare anyway", returncode=pytest.ExitCode.USAGE_ERROR)
    rule = replace(baseline.rule, dtype=fingerprint.get("dtype") or baseline.rule.dtype)  # the float noise of the loaded model
    config.stash[BASELINE_KEY] = replace(baseline, rule=rule, forced=baseline.forced + tuple(differs),
                                         weights=weights_changed(baseline.report, now))


def check_baseline(record: ClaimRecord, rule: Rule) -> list[str]:
    """Failure messages of this claim against its baseline (``record.baseline``) under ``rule``."""
    if record.baseline is None:
        return []
    return [f.message for f in rule.check(record.baseline, record.to_dict()) if f.fails]


def claim_run_number(storage: Path, report: dict[str, Any]) -> Path:
    """The path of the next numbered run ``NNNN_<model>.json`` in ``storage`` for ``report``, claimed with an
    exclusive create (an empty file) so that concurrent runs never share a number; the caller writes it
    (or removes it when the write fails)."""
    storage.mkdir(parents=True, exist_ok=True)
    model = (report.get("model") or {}).get("name") or Path(str(report["options"]["model"])).name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(model)).strip("-.")
    saved = saved_runs(storage)
    number = saved[-1][0] + 1 if saved else 1
    while True:
        path = storage / f"{number:04d}_{name or 'model'}.json"
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return path
        except FileExistsError:
            number += 1
