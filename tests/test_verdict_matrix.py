"""The verdict matrix: every empirical claim's verdict per model, the claims it flags, and the shipped page
(docs/verdict-matrix.md) in step with the saved reports it is built from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codi_probe.cli import main
from codi_probe.verdict_matrix import (MATRIX_MODELS, RANDOM_EQUALS_TRAINED, SINGLE_VERDICT, build,
                                       column_of, flags, load_notes, markdown, slim)

DOCS = Path(__file__).resolve().parents[1] / "docs"
MECHANISMS = {"arith": "not planted", "planted": "planted", "pause": "pause", "rnd": "random"}


def report(model: str, verdicts: dict[str, str | None], outcome: str = "passed") -> dict:
    claims = [{"id": cid, "kind": "empirical", "verdict": v, "outcome": outcome if v else "skipped"}
              for cid, v in verdicts.items()]
    claims.append({"id": "INV-01", "kind": "invariant", "verdict": "supported", "outcome": "passed"})
    return {"status": "complete", "options": {"model": model}, "claims": claims,
            "expectations": {"design": {"mechanism": MECHANISMS[model]}}}


TABLE = {  # claim: verdicts on arith, planted, pause, rnd
    "SAME-R": ("refuted", "inconclusive", "inconclusive", "refuted"),  # random = trained (refuted)
    "SAME-S": ("inconclusive", "supported", "refuted", "supported"),  # random = trained (supported, planted)
    "ONE": ("inconclusive", "inconclusive", "inconclusive", "inconclusive"),  # single verdict
    "ALL-S": ("supported", "supported", "supported", "supported"),  # both
    "FINE": ("supported", "supported", "refuted", "inconclusive"),
    "PAUSE-ONLY": ("inconclusive", "inconclusive", "supported", "supported"),  # the pause control is not trained
    "SKIP": ("refuted", None, None, None),  # one model ran it: nothing to compare
}


def columns():
    return [column_of(report(m, {c: v[i] for c, v in TABLE.items()})) for i, m in enumerate(MECHANISMS)]


def test_the_flags_name_random_equals_trained_and_single_verdict_claims() -> None:
    found = {f.claim: f for f in flags(columns())}
    assert set(found) == {"SAME-R", "SAME-S", "ONE", "ALL-S"}
    assert found["SAME-R"].kinds == (RANDOM_EQUALS_TRAINED,) and "refuted on rnd as on arith" in found["SAME-R"].detail
    assert found["SAME-S"].kinds == (RANDOM_EQUALS_TRAINED,) and "as on planted" in found["SAME-S"].detail
    assert found["ONE"].kinds == (SINGLE_VERDICT,) and "inconclusive on all 4 models" in found["ONE"].detail
    assert found["ALL-S"].kinds == (RANDOM_EQUALS_TRAINED, SINGLE_VERDICT)


def test_the_page_shows_every_cell_and_each_flag_with_its_explanation() -> None:
    cols = columns()
    text = markdown(cols, flags(cols), {"SAME-R": "because", "ONE": "reason"}, "# Matrix")
    assert text.startswith("# Matrix")
    assert "| SKIP | refuted | skipped | skipped | skipped |  |" in text
    assert "INV-01" not in text  # invariants are not in the matrix
    assert "| SAME-R | random = trained | refuted on rnd as on arith | because |" in text
    assert "| SAME-S | random = trained | supported on rnd as on planted | **unexplained** |" in text


def test_notes_explain_by_id_or_base_id(tmp_path: Path) -> None:
    path = tmp_path / "notes.toml"
    path.write_text('preamble = "# P"\n[claims]\n"ONE" = "one\\n  line"\n"ALL-S" = "all"\n"SAME-S" = "s"\n'
                    '"SAME-R" = "r"\n')
    notes = load_notes(path)
    assert notes.preamble == "# P" and notes.explanations["ONE"] == "one line"
    for name, report_ in zip(MECHANISMS, (report(m, {f"{c}[x]": v[i] for c, v in TABLE.items()})
                                          for i, m in enumerate(MECHANISMS))):
        (tmp_path / f"{name}.json").write_text(json.dumps(report_))
    result = build(list(MECHANISMS), tmp_path, run=False, notes=notes)
    assert result["unexplained"] == [] and {f["explanation"] for f in result["flags"]} == {"one line", "all", "s", "r"}
    assert result["unused"] == []
    notes.explanations["FINE"] = "a claim that is not flagged needs no explanation"
    assert build(list(MECHANISMS), tmp_path, run=False, notes=notes)["unused"] == ["FINE"]
    path.write_text('[claims]\n"ONE" = ""\n')
    with pytest.raises(ValueError, match="non-empty"):
        load_notes(path)


def test_the_command_reads_saved_reports_and_checks_every_flag_is_explained(tmp_path: Path, capsys) -> None:
    for i, m in enumerate(MECHANISMS):
        (tmp_path / f"{m}.json").write_text(json.dumps(report(m, {c: v[i] for c, v in TABLE.items()})))
    args = ["matrix", "--no-run", "--out", str(tmp_path), *[a for m in MECHANISMS for a in ("--model", m)]]
    assert main([*args, "--check"]) == 1
    assert "SAME-R: flagged but not explained" in capsys.readouterr().err
    assert main(args) == 0 and (tmp_path / "verdict-matrix.md").is_file() and (tmp_path / "verdict-matrix.json").is_file()
    page = tmp_path / "page.md"
    assert main([*args, "--doc", str(page)]) == 0 and page.read_text().startswith("| claim |")
    (tmp_path / "rnd.json").write_text(json.dumps({**report("rnd", {}), "status": "interrupted"}))
    assert main(args) == 2
    assert "did not complete" in capsys.readouterr().err


def test_the_shipped_page_is_the_one_its_reports_and_notes_give() -> None:
    """docs/verdict-matrix.md is generated (``codi-probe matrix --no-run --out docs/verdict-matrix --notes
    docs/verdict-matrix/notes.toml --doc docs/verdict-matrix.md``): it matches its saved reports, and every
    flagged claim is explained."""
    folder = DOCS / "verdict-matrix"
    models = [m for m in MATRIX_MODELS if (folder / f"{m}.json").is_file()]  # the page says which it lacks
    assert len(models) >= 4 and "tiny-random-gpt2" in models and "codi-tiny-arith" in models
    result = build(models, folder, run=False, notes=load_notes(folder / "notes.toml"))
    assert (DOCS / "verdict-matrix.md").read_text() == result["markdown"]
    assert result["unexplained"] == [] and result["unused"] == []


def test_a_slim_report_gives_the_same_column() -> None:
    full = report("rnd", {c: v[3] for c, v in TABLE.items()})
    full["claims"][0]["details"] = {"big": list(range(100))}
    small = slim(full)
    assert column_of(small) == column_of(full) and "details" not in small["claims"][0]
