"""Expectation profiles: the verdict each empirical claim should reach on a given model.

A profile is TOML::

    model = "tiny-random-gpt2"        # optional, informational
    default = "record"                # for claims not listed
    [claims]
    "IMP-01" = "refuted"              # full id ("IMP-01[P5]") first, then the marker id
    "ATT-01" = "record"               # measure and report, never fail
    "LENS-02" = ["supported", "inconclusive"]   # any of these
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .records import VERDICTS, ClaimRecord
from .files import read_toml

RECORD = "record"
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "expectations"
_KEYS = {"model", "description", "default", "claims"}
PROFILE_KEY = pytest.StashKey["ExpectationProfile"]()


@dataclass(frozen=True)
class ExpectationProfile:
    """Expected verdicts by claim id; ``source`` is "option", "bundled" or "none"."""

    source: str = "none"
    path: str | None = None
    default: str = RECORD
    claims: dict[str, str] = field(default_factory=dict)

    def expected(self, record: ClaimRecord) -> str | None:
        """The profile entry for an empirical claim (``"refuted"``, ``"supported|inconclusive"``,
        ``"record"``); ``None`` for invariants, which judge themselves."""
        if record.kind != "empirical":
            return None
        return self.claims.get(record.id) or self.claims.get(record.base_id) or self.default

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "path": self.path, "default": self.default,
                "claims": dict(sorted(self.claims.items()))}


def check_expectation(record: ClaimRecord) -> str | None:
    """The failure message when an empirical claim misses its expected verdict, else ``None``."""
    if record.kind != "empirical":
        return None
    if record.verdict is None:
        return (f"{record.id}: empirical claim recorded no verdict "
                f"(call claim.record(..., verdict=...) before returning)")
    expected = record.expected or RECORD
    if expected == RECORD or record.verdict in expected.split("|"):
        return None
    return f"{record.id}: expected {expected}, measured {record.verdict} ({record.brief()})"


def _verdict(path: Path, where: str, value: Any) -> str:
    """Validate one entry: a verdict, ``record``, or a list of verdicts; as "a|b" text."""
    items = value if isinstance(value, list) else [value]
    allowed = (*VERDICTS, RECORD) if not isinstance(value, list) else VERDICTS
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise pytest.UsageError(f"{path}: {where}: unknown verdict {bad[0] if bad else value!r} "
                                f"(use {', '.join(allowed)}{'' if isinstance(value, list) else ' or a list'})")
    return "|".join(items)


def parse_profile(path: Path, source: str) -> ExpectationProfile:
    """Read and validate a profile file; any problem is a one-line ``pytest.UsageError``."""
    data = read_toml(path, "expectation profile")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise pytest.UsageError(f"{path}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_KEYS))})")
    claims = data.get("claims", {})
    if not isinstance(claims, dict):
        raise pytest.UsageError(f"{path}: [claims] must be a table of claim id = verdict")
    return ExpectationProfile(
        source=source, path=str(path), default=_verdict(path, "default", data.get("default", RECORD)),
        claims={str(k): _verdict(path, f"claims.{k!r}", v) for k, v in claims.items()},
    )


def bundled_profile(model: str) -> Path | None:
    """The bundled profile for a model name or checkpoint path, if one ships."""
    name = Path(model).stem if Path(model).exists() else model
    candidate = BUNDLED_DIR / (re.sub(r"[^A-Za-z0-9._-]+", "--", name) + ".toml")
    return candidate if candidate.is_file() else None


def load_profile(expect: str | None, model: str) -> ExpectationProfile:
    """``--codi-expect`` (a path, or "none"), else the model's bundled profile, else record-only."""
    if expect is not None and expect.lower() == "none":
        return ExpectationProfile()
    if expect is not None:
        return parse_profile(Path(expect), "option")
    bundled = bundled_profile(model)
    return parse_profile(bundled, "bundled") if bundled else ExpectationProfile()


def profile_from_report(report: dict[str, Any], *, description: str = "") -> str:
    """A profile (TOML text) pinning every empirical claim of a JSON report to the verdict it measured,
    with ``default = "record"``: what ``codi-probe expect`` writes after a deliberate re-measurement."""
    import json

    claims = sorted({c["id"]: c["verdict"] for c in report.get("claims", [])
                     if c.get("kind") == "empirical" and c.get("verdict")}.items())
    if not claims:
        raise ValueError("the report holds no empirical claim with a verdict: nothing to pin")
    model = (report.get("model") or {}).get("name") or (report.get("options") or {}).get("model", "")
    head = [f"# Expected verdicts of the empirical claims on {model}, measured by `pytest hypotheses`",
            "# and written by `codi-probe expect`. A change to the model or to the engine that flips one",
            "# of these fails CI; re-record deliberately after retraining.",
            f"model = {json.dumps(str(model))}"]
    if description:
        head.append(f"description = {json.dumps(description)}")
    head += ['default = "record"', "", "[claims]"]
    return "\n".join(head + [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in claims]) + "\n"
