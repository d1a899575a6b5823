"""Expectation profiles: the verdict each empirical claim should reach on a given model, and why.

By default the profile is derived from the model's *design* (``codi_probe.design``, stored in its
``codi_config.json``): every claim the design decides (``codi_probe.planted.planted_truths``) is pinned
to the verdicts it allows, with the planted fact as its ``why``; every other claim is recorded (its why:
the design decides nothing). A model retrained with another seed or carrier map is checked against its
own map. ``--codi-expect PATH`` replaces it with a TOML file::

    model = "my-checkpoint"           # optional, informational
    default = "record"                # for claims not listed
    [claims]
    "IMP-01" = "refuted"              # full id ("IMP-01[P5]") first, then the marker id
    "LENS-02" = ["supported", "inconclusive"]   # any of these
    "CARRY-PATCH[step1@P2]" = {verdict = "supported", why = "planted by IIT"}   # with its reason
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .records import VERDICTS, ClaimRecord
from .files import read_toml

RECORD = "record"
_KEYS = {"model", "description", "default", "default_why", "claims"}
PROFILE_KEY = pytest.StashKey["ExpectationProfile"]()


@dataclass(frozen=True)
class ExpectationProfile:
    """Expected verdicts by claim id; ``source`` is "design" (derived from the model's design),
    "option" (``--codi-expect``) or "none"; ``why`` holds each entry's reason."""

    source: str = "none"
    path: str | None = None
    default: str = RECORD
    claims: dict[str, str] = field(default_factory=dict)
    why: dict[str, str] = field(default_factory=dict)
    default_why: str = ""
    design: dict[str, Any] | None = None

    def expected(self, record: ClaimRecord) -> str | None:
        """The profile entry for an empirical claim (``"refuted"``, ``"supported|inconclusive"``,
        ``"record"``); ``None`` for invariants, which judge themselves."""
        if record.kind != "empirical":
            return None
        return self.claims.get(record.id) or self.claims.get(record.base_id) or self.default

    def reason(self, record: ClaimRecord) -> str | None:
        """The ``why`` of the entry that ``expected`` used."""
        if record.kind != "empirical":
            return None
        for key in (record.id, record.base_id):
            if key in self.claims:
                return self.why.get(key) or None
        return self.default_why or None

    def describe(self) -> dict[str, Any]:
        out = {"source": self.source, "path": self.path, "default": self.default,
               "claims": dict(sorted(self.claims.items()))}
        if self.why or self.default_why:
            out["why"] = dict(sorted(self.why.items()))
            out["default_why"] = self.default_why
        if self.design is not None:
            out["design"] = self.design
        return out


def expectations_label(described: dict[str, Any]) -> str:
    """One phrase for a report's ``expectations`` section: the design, the file, or record-only."""
    if described.get("source") == "design":
        from ..design import Design

        return f"design ({Design.from_json(described.get('design')).describe()})"
    return described.get("path") or "record-only"


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
    verdicts, why = {}, {}
    for k, v in claims.items():
        where = f"claims.{k!r}"
        if isinstance(v, dict):
            extra = sorted(set(v) - {"verdict", "why"})
            if extra or "verdict" not in v:
                raise pytest.UsageError(f"{path}: {where}: an entry table holds verdict (required) and why, "
                                        f"got {sorted(v)}")
            if "why" in v:
                why[str(k)] = str(v["why"])
            v = v["verdict"]
        verdicts[str(k)] = _verdict(path, where, v)
    return ExpectationProfile(
        source=source, path=str(path), default=_verdict(path, "default", data.get("default", RECORD)),
        claims=verdicts, why=why, default_why=str(data.get("default_why", "")),
    )


def design_profile(design) -> ExpectationProfile:
    """The profile a ``codi_probe.design.Design`` decides (``codi_probe.planted.planted_truths``)."""
    from ..planted import UNDECIDED, planted_truths

    truths = planted_truths(design)
    return ExpectationProfile(source="design", path=None, default=RECORD,
                              claims={k: t.expected for k, t in truths.items()},
                              why={k: t.why for k, t in truths.items()}, default_why=UNDECIDED,
                              design=design.to_json())


def load_profile(expect: str | None, model: str) -> ExpectationProfile:
    """``--codi-expect`` (a path, or "none"), else the profile derived from the model's design."""
    from ..design import design_for_spec

    if expect is not None and expect.lower() == "none":
        return ExpectationProfile()
    if expect is not None:
        return parse_profile(Path(expect), "option")
    return design_profile(design_for_spec(model))


def profile_text(profile: ExpectationProfile, model: str = "", head: list[str] | None = None) -> str:
    """A profile as TOML, every entry with its why (``codi-probe expect --design`` prints this)."""
    lines = list(head or [])
    if model:
        lines.append(f"model = {json.dumps(str(model))}")
    lines += [f"default = {json.dumps(profile.default)}", f"default_why = {json.dumps(profile.default_why)}",
              "", "[claims]"]
    for k, v in sorted(profile.claims.items()):
        verdict = json.dumps(v.split("|")) if "|" in v else json.dumps(v)
        why = profile.why.get(k)
        lines.append(f"{json.dumps(k)} = {{verdict = {verdict}" + (f", why = {json.dumps(why)}}}" if why else "}"))
    return "\n".join(lines) + "\n"


def profile_from_report(report: dict[str, Any], *, description: str = "") -> str:
    """A draft profile (TOML text) from a JSON report, every entry with its why. A claim the model's design
    decides (the report's ``expectations.design``) is written from the design, whatever was measured;
    every other empirical claim is pinned to its measured verdict as a snapshot, and says so. Refuses a
    report that is not a whole run (interrupted, stopped early, or a ``-k``/``-m``/test-id subset would pin
    a subset; :func:`codi_probe.regression.baseline_problems`)."""
    from ..design import Design

    from ..regression import baseline_problems

    problems = baseline_problems(report)
    if problems:
        raise ValueError(f"not a whole run: {'; '.join(problems)}: pin verdicts from a complete run of the "
                         "whole catalogue only")
    measured = {c["id"]: c["verdict"] for c in report.get("claims", [])
                if c.get("kind") == "empirical" and c.get("verdict")}
    if not measured:
        raise ValueError("the report holds no empirical claim with a verdict: nothing to pin")
    design = Design.from_json((report.get("expectations") or {}).get("design"))
    planted = design_profile(design)
    when = report.get("created", "an earlier run")
    claims = dict(planted.claims)
    why = dict(planted.why)
    for cid, verdict in measured.items():
        if cid not in claims:
            claims[cid] = verdict
            why[cid] = f"snapshot: measured {verdict} in the run of {when}; the design ({design.describe()}) " \
                       "does not decide it"
    model = (report.get("model") or {}).get("name") or (report.get("options") or {}).get("model", "")
    head = [f"# Expected verdicts of the empirical claims on {model}: planted truths from its design, and",
            "# snapshots of a run (`codi-probe expect`) for the claims the design does not decide."]
    if description:
        head.append(f"description = {json.dumps(description)}")
    profile = ExpectationProfile(source="option", default=RECORD, claims=claims, why=why,
                                 default_why=planted.default_why)
    return profile_text(profile, str(model), head)
