"""The pair audit re-derives corrupted answers; checked on hand-made pairs and on the shipped generated pairs."""

from __future__ import annotations

import json

import pytest

from codi_probe.data.audit import audit_pair, audit_pairs, keep_agreeing, solutions_by_question
from codi_probe.data.loaders import load_pairs
from codi_probe.data.pairs import shipped_pairs_path

# A download problem in the shape of the first wrong pair of the hand check (issue #16): a 200 -> 201 GB
# file, whose corrected time is 160.7 minutes, while the file claims 120.
DOWNLOAD = {
    "question": "Ada downloads a 200 GB file at 2 GB/minute. At 40% a forced restart takes 20 minutes, and then "
                "she starts over from the beginning. How many minutes does the download take?",
    "answer": 160,
    "full_answer": "40% of the file is <<200*40*.01=80>>80 GB. That takes <<80/2=40>>40 minutes. The whole file "
                   "takes <<200/2=100>>100 minutes. In total <<40+100+20=160>>160 minutes.\n#### 160",
}


def _pair(clean: dict, corrupted_question: str, corrupted_answer, changed: str = "", pair_id: int = 0) -> dict:
    return {"pair_id": pair_id, "clean": clean,
            "corrupted": {"question": corrupted_question, "answer": corrupted_answer, "changed_number": changed}}


def _load(tmp_path, records) -> list:
    path = tmp_path / "pairs.json"
    path.write_text(json.dumps(records))
    return list(load_pairs(path))


def test_a_wrong_corrupted_answer_disagrees(tmp_path):
    wrong = _pair(DOWNLOAD, DOWNLOAD["question"].replace("200 GB", "201 GB"), 120, "200 -> 201")
    row = audit_pair(_load(tmp_path, [wrong])[0])
    assert row.status == "disagree" and "160.7" in row.derived and row.changed == "200 -> 201"
    assert "the file says 120" in row.reason


def test_a_right_corrupted_answer_agrees(tmp_path):
    clean = {"question": "Tom has 12 apples and buys 5 more. He eats 3. How many are left?", "answer": 14,
             "full_answer": "<<12+5=17>>17 then <<17-3=14>>14\n#### 14"}
    row = audit_pair(_load(tmp_path, [_pair(clean, clean["question"].replace("12", "13"), 15)])[0])
    assert (row.status, row.derived, row.readings) == ("agree", ("15",), 1)


def test_an_ambiguous_literal_is_unverifiable_when_its_readings_differ(tmp_path):
    """The question's 40 (percent) and the step result 40 are both literals '40' in the last step: one
    reading gives 160.5, another 160.7; a file stating either one cannot be confirmed."""
    rows = [_pair(DOWNLOAD, DOWNLOAD["question"].replace("200 GB", "201 GB"), answer, pair_id=i)
            for i, answer in enumerate((160.7, 160.5))]
    for row in audit_pairs(_load(tmp_path, rows)).rows:
        assert row.status == "unverifiable" and row.reason.startswith("ambiguous_readings")


@pytest.mark.parametrize("clean,corrupted_question,label", [
    ({"question": "She had 5 left after selling 2 more and half the rest. How many at first?", "answer": 18,
      "full_answer": "<<5*2=10>>10 and <<10+2=12>>12 and then x = 18\n#### 18"}, None, "clean_chain_incomplete"),
    ({"question": "Bo has 4 cats and 6 dogs. How many pets?", "answer": 10, "full_answer": "<<4+6=10>>10\n#### 10"},
     "Bo has 5 cats and 7 dogs. How many pets?", "question_diff"),
    ({"question": "A week has 7 days; Al works 5 of them. How many days off?", "answer": 2,
      "full_answer": "<<7-5=2>>2\n#### 2"}, "A week has 7 days; Al works 5 of them. How many days off? 9", "question_diff"),
    ({"question": "Cy reads 3 books a day for a week. How many books?", "answer": 21,
      "full_answer": "<<3*7=21>>21\n#### 21"}, "Cy reads 3 books a day for a week. How many books in 2 weeks?",
     "question_diff"),
    ({"question": "Di has 8 pens and 2 boxes of 3. How many?", "answer": 14, "full_answer": "<<8+6=14>>14\n#### 14"},
     "Di has 8 pens and 2 boxes of 4. How many?", "number_not_in_annotations"),
    ({"question": "Ed has 2 coins.", "answer": 2, "full_answer": "<<__import__('os').getcwd()=2>>\n#### 2"},
     "Ed has 3 coins.", "clean_annotation_unparsable"),
    ({"question": "Fa has 2 coins.", "answer": 2}, "Fa has 3 coins.", "no_annotations"),
])
def test_unverifiable_pairs_name_their_reason(tmp_path, clean, corrupted_question, label):
    question = corrupted_question or clean["question"].replace("5", "6", 1)
    row = audit_pair(_load(tmp_path, [_pair(clean, question, 99)])[0])
    assert row.status == "unverifiable" and row.reason.startswith(label), row


def test_rows_without_a_solution_are_looked_up_by_question(tmp_path):
    flat = [{"pair_id": 1, "variant": "clean", "question": "Tom has 12 apples and buys 5 more.", "answer": 17},
            {"pair_id": 1, "variant": "corrupted", "question": "Tom has 13 apples and buys 5 more.", "answer": 18}]
    pair = _load(tmp_path, flat)[0]
    assert audit_pair(pair).reason.startswith("no_annotations")

    class Solved:
        question = "Tom  has 12 apples and buys 5 more."
        meta = {"annotations": ["12+5=17"]}

    assert audit_pair(pair, solutions_by_question([Solved()])).status == "agree"


def test_every_shipped_generated_pair_agrees():
    """The generator and the auditor are independent re-derivations: they must agree on every shipped pair."""
    result = audit_pairs(load_pairs(shipped_pairs_path()))
    assert result.counts["agree"] == len(result.rows) > 100, (result.counts, result.reasons)


def test_planted_bug_a_shifted_answer_is_caught(tmp_path):
    """Plant the published flaw into the shipped pairs: one corrupted answer off by one must disagree."""
    records = json.loads(shipped_pairs_path().read_text())
    target = next(r for r in records if r["variant"] == "corrupted")
    target["answer"] = target["answer"] + 1
    path = tmp_path / "planted.json"
    path.write_text(json.dumps(records))
    result = audit_pairs(load_pairs(path))
    assert result.counts["disagree"] == 1
    assert [r.pair_id for r in result.rows if r.status == "disagree"] == [str(target["pair_id"])]


def test_keep_agreeing_filters_and_logs(tmp_path):
    pairs = load_pairs(_write(tmp_path, [
        _pair(DOWNLOAD, DOWNLOAD["question"].replace("200 GB", "201 GB"), 120, pair_id=1),
        _pair({"question": "Tom has 12 apples and buys 5 more.", "answer": 17, "full_answer": "<<12+5=17>>\n#### 17"},
              "Tom has 13 apples and buys 5 more.", 18, pair_id=2)]))
    kept = keep_agreeing(pairs, audit_pairs(pairs))
    assert [p.pair_id for p in kept] == ["2"]
    assert kept.filters[-1]["filter"] == "audit_agree" and kept.filters[-1]["before"] == 2


def _write(tmp_path, records):
    path = tmp_path / "f.json"
    path.write_text(json.dumps(records))
    return path


def test_cli_pairs_audit(tmp_path, capsys):
    from codi_probe.cli import main

    path = _write(tmp_path, [_pair(DOWNLOAD, DOWNLOAD["question"].replace("200 GB", "201 GB"), 120, "200 -> 201", 7)])
    assert main(["pairs", "audit", str(path)]) == 0
    text = capsys.readouterr().out
    assert "1 pairs: 0 agree, 1 disagree, 0 unverifiable" in text and "  7  disagree" in text
    assert main(["pairs", "audit", str(path), "--check", "--json", "--out", str(tmp_path / "a.json")]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["disagree"] == 1 and json.loads((tmp_path / "a.json").read_text()) == out
    assert main(["pairs", "audit", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
