"""The verdict matrix: every empirical claim's verdict on every shipped model, and the claims it flags.

Built from saved JSON reports of ``pytest hypotheses`` (one per model), so it can be regenerated without a
run (``codi-probe matrix --no-run``). Two kinds of claim are flagged, each of which must be explained
(:class:`Notes`: a TOML file ``[claims] "ID" = "why"``, the id or its base id) or fixed:

- ``random = trained``: the same decisive verdict (supported or refuted) on a random model as on a trained
  one (design ``not planted`` or ``planted``: the models whose latents carry what training put there). The
  claim's verdict does not depend on what training did (the model-randomization sanity check, Adebayo et
  al. 2018, across the shipped models).
- ``single verdict``: one and the same verdict on every model that ran it, where the models' designs differ
  (at least two designs among them): nothing the designs change moves the claim.

A claim that a model's run skipped or could not run shows its test outcome instead of a verdict; a claim a
report lacks is ``-``. Only verdicts enter the flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

MATRIX_MODELS = ("codi-tiny-arith", "codi-tiny-planted", "codi-tiny-mcyw", "codi-tiny-adjacent", "codi-tiny-pause", "codi-tiny-echo", "tiny-random-gpt2", "tiny-random-llama")
TRAINED = ("not planted", "planted")  # designs whose latents carry what training put there
RANDOM = "random"
DECISIVE = ("supported", "refuted")
VERDICTS = ("supported", "refuted", "inconclusive", "invalid")
RANDOM_EQUALS_TRAINED = "random = trained"
SINGLE_VERDICT = "single verdict"


@dataclass(frozen=True)
class Column:
    """One model's run: its name, design mechanism and each empirical claim's cell (a verdict, else the
    test outcome)."""

    model: str
    mechanism: str
    cells: dict[str, str]

    def verdict(self, claim: str) -> str | None:
        cell = self.cells.get(claim)
        return cell if cell in VERDICTS else None


@dataclass(frozen=True)
class Flag:
    claim: str
    kinds: tuple[str, ...]  # RANDOM_EQUALS_TRAINED and/or SINGLE_VERDICT
    detail: str


def column_of(report: Mapping[str, Any], model: str | None = None) -> Column:
    """The column of one report (its empirical claims; the design from its expectations)."""
    design = (report.get("expectations") or {}).get("design") or {}
    name = model or (report.get("options") or {}).get("model") or "?"
    cells = {c["id"]: c.get("verdict") or c.get("outcome") or "none"
             for c in report.get("claims", []) if c.get("kind") == "empirical"}
    return Column(name, str(design.get("mechanism", "not planted")), cells)


SLIM_CLAIM = ("id", "base_id", "kind", "verdict", "outcome", "statistic", "value", "n", "min_n", "verdict_reason")


def slim(report: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a report the matrix reads (and each claim's key numbers), to keep beside the page: the
    status, the model, the design, the schema version, the git commit and every claim's verdict."""
    environment = report.get("environment") or {}
    return {"schema_version": report.get("schema_version"), "created": report.get("created"),
            "status": report.get("status"), "options": {"model": (report.get("options") or {}).get("model")},
            "model": {k: (report.get("model") or {}).get(k) for k in ("name", "sha256")},
            "environment": {"git": environment.get("git")},
            "expectations": {"design": (report.get("expectations") or {}).get("design")},
            "claims": [{k: c.get(k) for k in SLIM_CLAIM} for c in report.get("claims", [])]}


def claim_ids(columns: Sequence[Column]) -> list[str]:
    """Every claim id of any column, in the first column's order, then the others' new ones."""
    seen: dict[str, None] = {}
    for column in columns:
        seen.update(dict.fromkeys(column.cells))
    return list(seen)


def flags(columns: Sequence[Column]) -> list[Flag]:
    """The flagged claims (module docstring), in matrix order."""
    out = []
    for claim in claim_ids(columns):
        kinds, details = [], []
        same = [(r.model, t.model, r.verdict(claim)) for r in columns if r.mechanism == RANDOM
                for t in columns if t.mechanism in TRAINED and r.verdict(claim) in DECISIVE
                and r.verdict(claim) == t.verdict(claim)]
        if same:
            kinds.append(RANDOM_EQUALS_TRAINED)
            verdict = same[0][2]
            randoms = sorted({m for m, _, _ in same})
            trained = sorted({m for _, m, _ in same})
            details.append(f"{verdict} on {', '.join(randoms)} as on {', '.join(trained)}")
        ran = [c for c in columns if c.verdict(claim) is not None]
        verdicts = {c.verdict(claim) for c in ran}
        if len(verdicts) == 1 and len({c.mechanism for c in ran}) > 1:
            kinds.append(SINGLE_VERDICT)
            details.append(f"{next(iter(verdicts))} on all {len(ran)} models that ran it")
        if kinds:
            out.append(Flag(claim, tuple(kinds), "; ".join(details)))
    return out


def base_id(claim: str) -> str:
    return claim.split("[", 1)[0]


def explanation(claim: str, explanations: Mapping[str, str]) -> str | None:
    """The explanation of ``claim``: its own entry, else its base id's."""
    return explanations.get(claim) or explanations.get(base_id(claim))


@dataclass(frozen=True)
class Notes:
    """The hand-written part of the matrix page: its ``preamble`` (Markdown) and the explanation of each
    flagged claim (``[claims] "ID" = "why"``, by id or base id)."""

    preamble: str = ""
    explanations: dict[str, str] | None = None


def load_notes(path: str | Path | None) -> Notes:
    """The :class:`Notes` of a TOML file (``None``: none); a missing or malformed file is a one-line
    ``ValueError``."""
    if path is None:
        return Notes(explanations={})
    import pytest

    from .plugin.files import read_toml

    try:
        data = read_toml(Path(path), "verdict-matrix notes")
    except pytest.UsageError as exc:
        raise ValueError(str(exc)) from None
    claims = data.get("claims", {})
    bad = [k for k, v in claims.items() if not isinstance(v, str) or not v.strip()]
    if bad:
        raise ValueError(f"{path}: explanations must be non-empty strings: {', '.join(sorted(bad))}")
    return Notes(str(data.get("preamble", "")), {str(k): " ".join(str(v).split()) for k, v in claims.items()})


def unexplained(found: Sequence[Flag], explanations: Mapping[str, str]) -> list[str]:
    return [f.claim for f in found if explanation(f.claim, explanations) is None]


def unused(found: Sequence[Flag], explanations: Mapping[str, str]) -> list[str]:
    """Explanations that no flagged claim uses (a claim fixed since, or a mistyped id)."""
    used = {key for f in found for key in (f.claim, base_id(f.claim)) if key in explanations}
    return sorted(set(explanations) - used)


def markdown(columns: Sequence[Column], found: Sequence[Flag], explanations: Mapping[str, str],
             preamble: str = "") -> str:
    """The matrix (one row per claim, one column per model), then the flagged claims with their
    explanations."""
    lines = [preamble.rstrip() + "\n"] if preamble else []
    marks = {f.claim: f for f in found}
    lines += ["| claim | " + " | ".join(f"{c.model} ({c.mechanism})" for c in columns) + " | flag |",
              "|---|" + "---|" * len(columns) + "---|"]
    for claim in claim_ids(columns):
        flag = marks.get(claim)
        cells = [c.cells.get(claim, "-") for c in columns]
        lines.append(f"| {claim} | " + " | ".join(cells) + f" | {', '.join(flag.kinds) if flag else ''} |")
    lines += ["", f"## Flagged claims ({len(found)})", "",
              "| claim | flag | verdicts | explanation |", "|---|---|---|---|"]
    for f in found:
        why = explanation(f.claim, explanations) or "**unexplained**"
        lines.append(f"| {f.claim} | {', '.join(f.kinds)} | {f.detail} | {why} |")
    return "\n".join(lines) + "\n"


def read_columns(models: Sequence[str], folder: Path) -> list[Column]:
    """The column of each model from ``folder/<model>.json`` (a complete run each)."""
    columns = []
    for model in models:
        name = Path(model).name
        path = folder / f"{name}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no report for {model}")
        report = json.loads(path.read_text(encoding="utf-8"))
        if report.get("status") != "complete":
            raise ValueError(f"{path}: the run did not complete (status {report.get('status')!r})")
        columns.append(column_of(report, name))
    return columns


def build(models: Sequence[str], folder: Path, *, run: bool = True, hypotheses: Path | None = None,
          extra: Sequence[str] = (), notes: Notes | None = None) -> dict[str, Any]:
    """Run (or, with ``run=False``, read back) one report per model in ``folder`` and tabulate them.
    Returns ``{"columns", "flags", "unexplained", "unused", "exit_codes", "markdown"}``."""
    from .validity import catalogue_dir, run_catalogue

    folder.mkdir(parents=True, exist_ok=True)
    exit_codes: dict[str, int] = {}
    if run:
        catalogue = catalogue_dir(hypotheses)
        for model in models:
            exit_codes[model] = run_catalogue(model, folder / f"{Path(model).name}.json", catalogue, extra)
    columns = read_columns(models, folder)
    found = flags(columns)
    notes = notes or Notes()
    explanations = dict(notes.explanations or {})
    return {"columns": [{"model": c.model, "mechanism": c.mechanism, "cells": c.cells} for c in columns],
            "flags": [{"claim": f.claim, "kinds": list(f.kinds), "detail": f.detail,
                       "explanation": explanation(f.claim, explanations)} for f in found],
            "unexplained": unexplained(found, explanations), "unused": unused(found, explanations),
            "exit_codes": exit_codes,
            "markdown": markdown(columns, found, explanations, notes.preamble)}


__all__ = ["Column", "Flag", "MATRIX_MODELS", "Notes", "build", "column_of", "flags", "load_notes", "markdown",
           "read_columns", "slim", "unexplained", "unused"]
