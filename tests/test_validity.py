"""codi_probe.validity: rows, the summary and its floors, on reports whose verdicts are set by hand."""

from __future__ import annotations

import json

import pytest

from codi_probe.design import Design
from codi_probe.planted import planted_truths
from codi_probe.validity import check_floors, rows_of, summarise, validate


def report(design: Design, verdicts: dict[str, str], status: str = "complete") -> dict:
    return {"status": status, "options": {"model": "m"}, "expectations": {"design": design.to_json()},
            "claims": [{"id": k, "verdict": v} for k, v in verdicts.items()]}


PLANTED = Design("planted", {"step1": 2, "step2": 4})
PAUSE = Design("pause")


def all_right(design: Design) -> dict[str, str]:
    return {k: t.verdicts[0] for k, t in planted_truths(design).items()}


def test_every_truth_recovered_meets_the_floors() -> None:
    rows = rows_of(report(PLANTED, all_right(PLANTED))) + rows_of(report(PAUSE, all_right(PAUSE)))
    s = summarise(rows)
    assert s.truths == 4 + 32 and s.recovered == s.truths and s.accuracy == 1.0
    # pause: PATCH-01 at six positions, NEW-08, LAY-08, OP-01, OP-02, OP-04, PATCH-05; planted: NEW-08
    assert s.constraints == 13 and s.constraints_broken == 0
    assert check_floors(s) == []


def test_an_inconclusive_planted_truth_is_a_miss() -> None:
    verdicts = all_right(PLANTED) | {"CARRY-PATCH[step1@P2]": "inconclusive"}
    s = summarise(rows_of(report(PLANTED, verdicts)))
    assert (s.recovered, s.inconclusive) == (3, 1)
    assert any("recovered 3/4" in p for p in check_floors(s))


def test_a_supported_content_claim_on_the_control_bites() -> None:
    verdicts = all_right(PAUSE) | {"CARRY-DECODE[step1@P1]": "supported", "PATCH-01[P2]": "supported"}
    s = summarise(rows_of(report(PAUSE, verdicts)))
    assert s.control_false_supported == 2 and s.constraints_broken == 1
    problems = check_floors(s)
    assert any("negative control" in p for p in problems) and any("forbids" in p for p in problems)


def test_a_claim_that_did_not_run_is_a_miss() -> None:
    verdicts = all_right(PLANTED)
    del verdicts["CARRY-DECODE[step2@P4]"]
    rows = rows_of(report(PLANTED, verdicts))
    assert [r.measured for r in rows if r.claim == "CARRY-DECODE[step2@P4]"] == [None]
    assert summarise(rows).recovered == 3


def test_validate_reads_reports_and_refuses_partial_ones(tmp_path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(report(PLANTED, all_right(PLANTED))))
    out = validate(["a"], tmp_path, run=False)
    assert out["problems"] == [] and out["total"]["recovered"] == 4 and "| a | planted | 4/4 |" in out["markdown"]
    (tmp_path / "b.json").write_text(json.dumps(report(PLANTED, {}, status="interrupted")))
    with pytest.raises(ValueError, match="did not complete"):
        validate(["b"], tmp_path, run=False)
    with pytest.raises(FileNotFoundError, match="no hypotheses directory"):
        validate(["a"], tmp_path, hypotheses=tmp_path / "none")
