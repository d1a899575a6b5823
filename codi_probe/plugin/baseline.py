"""``--codi-baseline``: compare each empirical claim with the same claim in a previous report."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .files import read_json
from .records import ClaimRecord, brief

_KEPT = ("nodeid", "verdict", "statistic", "value", "ci", "p_value", "n", "min_n")
BASELINE_KEY = pytest.StashKey["Baseline | None"]()


@dataclass(frozen=True)
class Baseline:
    """The previous report's claims, indexed by claim id."""

    path: str
    tolerance: float
    created: str | None = None
    claims: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def match(self, record: ClaimRecord, nodeid: str) -> dict[str, Any] | None:
        """The baseline claim with the same id (and, among duplicates, the same nodeid)."""
        candidates = self.claims.get(record.id, [])
        same_node = [c for c in candidates if c.get("nodeid") == nodeid]
        chosen = same_node or (candidates if len(candidates) == 1 else [])
        return {k: chosen[0].get(k) for k in _KEPT} if chosen else None

    def describe(self, seen_ids: set[str]) -> dict[str, Any]:
        return {"path": self.path, "tolerance": self.tolerance, "created": self.created,
                "missing": sorted(set(self.claims) - seen_ids)}


def load_baseline(path: str | None, tolerance: float) -> Baseline | None:
    """Read a previous report (``none``: no comparison); a missing or malformed one is a one-line
    ``pytest.UsageError``."""
    if path is None or path.lower() == "none":
        return None
    data = read_json(Path(path), "baseline report")
    version = data.get("schema_version") if isinstance(data, dict) else None
    if not isinstance(version, str) or version.split(".")[0] != "1" or not isinstance(data.get("claims"), list):
        raise pytest.UsageError(f"{path}: not a codi-probe report (schema_version 1.x with a claims list)")
    claims: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for claim in data["claims"]:
        if isinstance(claim, dict) and isinstance(claim.get("id"), str):
            claims[claim["id"]].append(claim)
    return Baseline(path=str(path), tolerance=tolerance, created=data.get("created"), claims=dict(claims))


def check_baseline(record: ClaimRecord, tolerance: float) -> list[str]:
    """Failure messages: a verdict flip, or the statistic outside the baseline CI ± tolerance."""
    old = record.baseline
    if old is None or record.kind != "empirical":
        return []
    failures = []
    now = f"now {record.verdict} ({record.brief()})"
    was = f"baseline {old['verdict']} ({brief(old)})"
    if old["verdict"] and record.verdict and old["verdict"] != record.verdict:
        failures.append(f"{record.id}: verdict flipped: {was}, {now}")
    if old["statistic"] == record.statistic and None not in (old["value"], record.value):
        lo, hi = (old["ci"]["lo"], old["ci"]["hi"]) if old["ci"] else (old["value"], old["value"])
        if None not in (lo, hi):
            slack = tolerance + 1e-9 * max(1.0, abs(lo), abs(hi))  # float noise is not a move
            if not lo - slack <= record.value <= hi + slack:
                failures.append(f"{record.id}: {record.statistic}={record.value:.4g} outside baseline "
                                f"[{lo:.4g}, {hi:.4g}] widened by tolerance {tolerance:g}: {was}, {now}")
    return failures
