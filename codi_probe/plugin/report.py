"""Assemble the JSON report (schema 1.5) from the collected tests and the session metadata."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from .collector import OUTCOMES, TestEntry
from .metadata import SessionMetadata
from .randomization import attach_twins, split_twins
from .records import KINDS, VERDICTS

SCHEMA_VERSION = "1.5"  # 1.5: the model-randomization check (randomization, claim randomized and not_specific_to_training, options.randomization_check); 1.4: claim worker and device, processes' shared_work; 1.1: invalid verdicts, declared hypotheses, min_n, evidence, p_refute, family; 1.2: design-derived expectations with why; 1.3: collection errors, status collection_error, reruns, the git state, the selection, every dtype
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schema" / "report.schema.json"
PACKAGES = ("codi-probe", "torch", "transformers", "peft", "numpy", "scipy", "pytest", "pytest-xdist")


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_report(report: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``report`` matches the shipped schema."""
    import jsonschema

    jsonschema.validate(report, load_schema())


def package_versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (imports nothing)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def bh_q_values(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``)."""
    if not p_values:
        return []
    from scipy.stats import false_discovery_control

    return [float(q) for q in false_discovery_control(p_values, method="bh")]


def _claims(entries: list[TestEntry]) -> list[dict[str, Any]]:
    """Claim records joined with their test outcome, with BH q-values over all p-values."""
    claims = [{"nodeid": e.nodeid, **e.claim, **e.to_dict(), "q_value": None} for e in entries if e.claim]
    with_p = [c for c in claims if c.get("p_value") is not None]
    for claim, q in zip(with_p, bh_q_values([c["p_value"] for c in with_p])):
        claim["q_value"] = q
    return claims


def _summary(entries: list[TestEntry], claims: list[dict[str, Any]], collection_errors: int) -> dict[str, Any]:
    outcomes = Counter(e.to_dict()["outcome"] for e in entries)
    verdicts = Counter(c.get("verdict") or "none" for c in claims)
    return {
        "tests": len(entries),
        "outcomes": {o: outcomes[o] for o in OUTCOMES},
        "claims": len(claims),
        "kinds": {k: sum(c["kind"] == k for c in claims) for k in KINDS},
        "verdicts": {v: verdicts[v] for v in (*VERDICTS, "none")},
        "check_failures": sum(bool(c.get("failures")) for c in claims),
        "collection_errors": collection_errors,
    }


def _warnings(claims: list[dict[str, Any]], metadata: SessionMetadata) -> list[str]:
    from ..vocabulary import describe_unknown

    ids = Counter(c["id"] for c in claims)
    duplicated = [f"claim id {cid!r} is used by {count} tests" for cid, count in sorted(ids.items()) if count > 1]
    unknown = [f"{name}: the tokenizer does not know {describe_unknown(entry['unknown_words'])} (read as its unknown "
               "token: the model never sees these words)" for name, entry in sorted(metadata.sections["data"].items())
               if isinstance(entry, dict) and entry.get("unknown_words")]
    return duplicated + unknown + sorted(metadata.warnings)


def build_report(*, entries: dict[str, TestEntry], metadata: SessionMetadata, options: dict[str, Any],
                 environment: dict[str, Any], expectations: dict[str, Any], baseline: Any,
                 status: str, exitstatus: int | None, created: str, duration_s: float,
                 collection_errors: list[dict[str, Any]] | None = None,
                 extra_warnings: list[str] | None = None) -> dict[str, Any]:
    """The report dict; tests sorted by nodeid so serial and xdist runs agree.

    ``baseline`` is a :class:`~.baseline.Baseline` or ``None``; ``collection_errors``: ``{nodeid,
    message}`` per module that failed to collect.
    """
    errors = sorted(collection_errors or [], key=lambda e: e["nodeid"])
    ordered, twins = split_twins([entries[k] for k in sorted(entries)])  # twins: --codi-randomization-check
    claims = _claims(ordered)
    randomization = (attach_twins(claims, twins, metadata.sections.get("session", {}))
                     if options.get("randomization_check") or twins else None)
    processes = [{"worker": wid, **info} for wid, info in sorted(metadata.processes.items())]
    return {
        "schema_version": SCHEMA_VERSION,
        "created": created,
        "duration_s": round(duration_s, 3),
        "status": status,
        "exitstatus": exitstatus,
        "model": metadata.sections.get("model") or None,
        "data": metadata.sections.get("data", {}),
        "session": metadata.sections.get("session", {}),
        "environment": {**environment, "processes": processes},
        "options": options,
        "expectations": expectations,
        "baseline": (baseline.describe({c["id"] for c in claims}, metadata.sections.get("model") or None)
                     if baseline is not None else None),
        "multiple_testing": {"method": "benjamini-hochberg", "family": "all claims with a p-value",
                             "m": sum(c["q_value"] is not None for c in claims)},
        "summary": _summary(ordered, claims, len(errors)),
        "collection_errors": errors,
        "claims": claims,
        "randomization": randomization,
        "other_tests": [e.to_dict() for e in ordered if not e.claim],
        "warnings": _warnings(claims, metadata) + list(extra_warnings or []),
    }


def base_environment() -> dict[str, Any]:
    """Interpreter, platform and package versions."""
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "machine": platform.machine(), "packages": package_versions()}


def git_state(root: Path) -> dict[str, Any] | None:
    """The git commit of the code under ``root`` (the pytest rootdir) and whether tracked files differ
    from it; ``None`` outside a git checkout or without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def selection(config: Any) -> dict[str, Any]:
    """How the run chose its tests. ``subset``: a ``-k``/``-m`` expression, ``--lf``/``--ff``-style
    reselection or explicit test ids narrowed it, so its claims are not the whole catalogue."""
    keyword = config.getoption("keyword", "") or None
    markexpr = config.getoption("markexpr", "") or None
    last_failed = bool(config.getoption("lf", False))
    nodeids = [str(a) for a in config.args if "::" in str(a)]
    return {"keyword": keyword, "markexpr": markexpr, "last_failed": last_failed, "nodeids": nodeids,
            "subset": bool(keyword or markexpr or last_failed or nodeids)}
