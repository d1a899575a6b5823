"""docs/fidelity.md (codi_probe.fidelity) is in step with the claim markers in hypotheses/: one row per tested
id of claims.md and claims-2026, the suite's comparisons and minimum n as the markers declare them, every
deviation stated in the claim's own statement, and the document rendered from the rows (no model is run)."""

import dataclasses
import importlib
import sys

import pytest

from codi_probe import fidelity
from codi_probe.fidelity_rows import ROWS
from codi_probe.hypothesis import Hypothesis, Prediction
from test_catalogue_coverage import IDS, ROOT


def in_scope(cid: str) -> bool:
    """claims.md section 4 and 7 ids, NEW-*, and IMP-13a (IMP-13's never-fed half); not the suite's own ids."""
    return cid in IDS or cid == "IMP-13a"


@pytest.fixture(scope="module")
def markers() -> dict[str, list[tuple[str, object]]]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    out: dict[str, list[tuple[str, object]]] = {}
    for path in sorted((ROOT / "hypotheses").glob("test_*.py")):
        module = importlib.import_module(f"hypotheses.{path.stem}")
        for fn in vars(module).values():
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "claim" and in_scope(mark.kwargs["id"]):
                    out.setdefault(mark.kwargs["id"], []).append((mark.kwargs["statement"], mark.kwargs.get("hypothesis")))
    return out


def test_the_table_and_the_markers_are_in_step(markers):
    assert fidelity.audit(ROWS, markers) == []


def test_the_document_is_rendered_from_the_rows():
    text = (ROOT / "docs" / "fidelity.md").read_text()
    assert text == fidelity.render(ROWS), "docs/fidelity.md is stale: run python -m codi_probe.fidelity"


def _first(status: str):
    return next(r for r in ROWS if r.status == status and r.checks)


def test_a_drifted_threshold_is_caught(markers):
    r = _first("faithful")
    drifted = dataclasses.replace(r, checks=tuple(c + "1" for c in r.checks))
    problems = fidelity.audit([drifted if x is r else x for x in ROWS], markers)
    assert problems and all(p.startswith(f"{r.id}: the row says") for p in problems)
    fewer = dataclasses.replace(r, min_n=r.min_n + 1)
    assert fidelity.audit([fewer if x is r else x for x in ROWS], markers)


def test_a_deviation_must_be_stated_in_the_statement(markers):
    r = _first("faithful")
    unstated = dataclasses.replace(r, status="deviates", note="a difference nobody wrote into the statement")
    assert fidelity.audit([unstated if x is r else x for x in ROWS], markers) == [
        f"{r.id}: deviates, but its statement does not say {fidelity.DIFFERS!r}"]
    d = _first("deviates")
    hidden = dataclasses.replace(d, status="faithful", note="")
    assert f"{d.id}: its statement says {fidelity.DIFFERS!r}, but the row is faithful" in \
        fidelity.audit([hidden if x is d else x for x in ROWS], markers)


def test_missing_and_extra_rows_are_caught(markers):
    r = ROWS[0]
    assert fidelity.audit(ROWS[1:], markers) == [f"{r.id}: tested but has no fidelity row"]
    extra = dataclasses.replace(r, id="ACC-99")
    assert fidelity.audit([*ROWS, extra], markers) == ["ACC-99: has a fidelity row but no claim marker"]
    assert fidelity.audit([*ROWS, r], markers) == [f"{r.id}: listed twice"]


def test_declared_reads_every_member_of_a_parameterized_claim():
    one = Hypothesis((Prediction("a", "greater", 0.2), Prediction("b", "equivalent", 0.05)), min_n=60)
    two = Hypothesis(Prediction("c", "less", 0.1), min_n=60)
    assert fidelity.declared({"x": one, "y": two}) == (("< 0.1", "> 0.2", "within ±0.05"), 60)
    assert fidelity.declared(None) == ((), None)
    with pytest.raises(ValueError, match="different minimum n"):
        fidelity.declared({"x": one, "y": Hypothesis(Prediction("c", "less", 0.1))})


def test_a_deviating_row_needs_its_difference():
    side = fidelity.Side("s", "p", "m", "c", "t", "n")
    with pytest.raises(ValueError, match="states its difference"):
        fidelity.Row("X-01", "deviates", side, side)
    with pytest.raises(ValueError, match="status must be one of"):
        fidelity.Row("X-01", "roughly", side, side)
