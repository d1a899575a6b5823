"""The fidelity table: for every tested id of claims.md (sections 4 and 7) and of claims-2026 (NEW-*),
what the source measures beside what the suite measures (docs/fidelity.md).

Each :class:`Row` holds both sides as :class:`Side` s (site, position convention, metric, comparison and
threshold, test, n) and a ``status``:

- ``faithful``: the suite measures the source's claim with the source's comparison (or a stricter one
  that needs no words: the suite-wide one-sided ``ALPHA`` = 0.025 and problem-level n >= 50 apply to all);
- ``deviates``: a difference remains, and the claim's own marker ``statement`` says so with the words
  :data:`DIFFERS` followed by the difference and its reason (a data set that is not shipped, a model
  that is not the source's, a deliberate stricter test).

The suite side's comparison is not prose: ``checks`` lists the distinct declared comparisons of the
claim's :class:`~codi_probe.hypothesis.Hypothesis` (``"> 0.2"``, ``"within ±0.03"``) and ``min_n`` its
minimum n, and ``tests/test_fidelity.py`` fails when they drift from the markers in ``hypotheses/``.
Positions are canonical (claims.md 1.3): P0 is BOT (output h_0), P1..P6 the fed latents (input e_k =
prj(h_(k-1)), output h_k), EOT after P6.

``python -m codi_probe.fidelity`` rewrites docs/fidelity.md from :mod:`codi_probe.fidelity_rows`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

DIFFERS = "Differs from the source:"
STATUSES = ("faithful", "deviates")
COLUMNS = ("site", "positions", "metric", "comparison", "test", "n")


@dataclass(frozen=True)
class Side:
    """One side of a row: where it measures, in which position convention, what, against what, how, on how many."""

    site: str
    positions: str
    metric: str
    comparison: str
    test: str
    n: str


@dataclass(frozen=True)
class Row:
    """One tested id. ``checks``/``min_n``: the suite's declared comparisons and minimum n (``min_n`` None
    and ``checks`` empty for an invariant, an exact check with no statistics)."""

    id: str
    status: str
    source: Side
    suite: Side
    checks: tuple[str, ...] = ()
    min_n: int | None = None
    note: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"fidelity row {self.id}: status must be one of {STATUSES}, got {self.status!r}")
        if self.status == "deviates" and not self.note:
            raise ValueError(f"fidelity row {self.id}: a deviating row states its difference in note")


def declared(hypothesis) -> tuple[tuple[str, ...], int | None]:
    """The distinct comparisons (sorted) and the minimum n a claim's ``hypothesis=`` declares; a mapping
    from parameter id to hypothesis (a parameterized claim) gives the union and needs one min_n."""
    if hypothesis is None:
        return (), None
    members = list(hypothesis.values()) if isinstance(hypothesis, dict) else [hypothesis]
    checks = sorted({_check(p) for h in members for p in h.predictions})
    ns = {h.min_n for h in members}
    if len(ns) != 1:
        raise ValueError(f"members of one claim declare different minimum n: {sorted(ns)}")
    return tuple(checks), ns.pop()


def audit(rows: list[Row], markers: dict[str, list[tuple[str, object]]]) -> list[str]:
    """Every way ``rows`` and the claim ``markers`` (id -> [(statement, hypothesis)] of the ids in scope) are
    out of step, one line each: an id without a row or a row without a tested id, a repeated row, a
    suite comparison or minimum n other than the marker's, a ``deviates`` row whose statement does not
    say :data:`DIFFERS`, or a statement that says it on a row that is not ``deviates``."""
    problems, seen = [], set()
    for r in rows:
        if r.id in seen:
            problems.append(f"{r.id}: listed twice")
        seen.add(r.id)
    problems += [f"{cid}: tested but has no fidelity row" for cid in sorted(set(markers) - seen)]
    problems += [f"{cid}: has a fidelity row but no claim marker" for cid in sorted(seen - set(markers))]
    for r in rows:
        if r.id not in markers:
            continue
        for statement, hypothesis in markers[r.id]:
            checks, min_n = declared(hypothesis)
            if (checks, min_n) != (r.checks, r.min_n):
                problems.append(f"{r.id}: the row says {list(r.checks)} with n >= {r.min_n}, the marker declares "
                                f"{list(checks)} with n >= {min_n}")
            says = DIFFERS in statement
            if r.status == "deviates" and not says:
                problems.append(f"{r.id}: deviates, but its statement does not say {DIFFERS!r}")
            if r.status != "deviates" and says:
                problems.append(f"{r.id}: its statement says {DIFFERS!r}, but the row is {r.status}")
    return problems


def _check(prediction) -> str:
    t = f"{prediction.threshold:g}"
    return {"greater": f"> {t}", "less": f"< {t}", "equivalent": f"within ±{t}"}[prediction.direction]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: list[Row]) -> str:
    """docs/fidelity.md: a header, the counts by status, and one table (two lines per id: source, suite)."""
    counts = {s: sum(1 for r in rows if r.status == s) for s in STATUSES}
    lines = [
        "# Fidelity: what each claim's source measures, and what the suite measures",
        "",
        "Generated from `codi_probe/fidelity_rows.py` by `python -m codi_probe.fidelity`; do not edit by hand.",
        "`tests/test_fidelity.py` keeps it in step with the claim markers in `hypotheses/`: every tested id of",
        "claims.md (sections 4 and 7) and claims-2026 (NEW-*) has a row and no untested id has one; the suite's",
        "comparisons and minimum n are those its `Hypothesis` declares; and every `deviates` row's claim says",
        f"`{DIFFERS}` in its own statement, with the difference and its reason.",
        "",
        "Positions are canonical (claims.md 1.3): P0 = BOT (output h_0), P1..P6 = fed latents (input e_k =",
        "prj(h_(k-1)), output h_k), EOT after P6. Sources' indices are translated in the source column",
        "(CYW index k = e_(k+1) / h_k; AO z_k = h_k; GS CT_k / T_k = P_k in a 5-iteration loop). Suite-wide rules",
        "that are not listed per row: every deciding test is one-sided at ALPHA = 0.025 (sources' p < 0.01 or",
        "p < 0.05 become 0.025); problem-level n >= 50 for any significance claim (F-05); 'depth' is relative",
        "(0.25 / 0.5 / 0.75 of the blocks: the sources' L4 / L8 / L14 on a 16-block Llama); the checkpoint is",
        "the one under test, not necessarily the source's.",
        "",
        "Status: " + ", ".join(f"{counts[s]} {s}" for s in STATUSES) + f" ({len(rows)} ids).",
        "",
        "| id | status | side | " + " | ".join(COLUMNS) + " | difference |",
        "|---|---|---|" + "---|" * len(COLUMNS) + "---|",
    ]
    for r in rows:
        for name, side, note in (("source", r.source, ""), ("suite", r.suite, r.note)):
            cells = [r.id if name == "source" else "", r.status if name == "source" else "", name,
                     *(getattr(side, c) for c in COLUMNS), note]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from .atomic import write_text_atomic
    from .fidelity_rows import ROWS

    argv = sys.argv[1:] if argv is None else argv
    dest = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "docs" / "fidelity.md"
    write_text_atomic(dest, render(ROWS))
    print(f"wrote {dest} ({len(ROWS)} ids)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
