"""Loaders: shipped fixtures, both pair schemas, user files, errors and the optional hub path."""

import json
import sys
import types
from collections import Counter
from pathlib import Path

import pytest

from codi_probe.data import loaders
from codi_probe.data.errors import DataFormatError, FixtureNotFoundError, MissingOptionalDependency
from codi_probe.data.hub import load_from_hub
from codi_probe.data.loaders import (
    ENV_VAR,
    data_file,
    fixtures_dir,
    load_gsm8k,
    load_gsm8k_aug,
    load_pairs,
    load_problems,
)
from codi_probe.data.pairs import shipped_pairs_path

GSM8K_ROW = {
    "question": "Janet has 16 eggs. She eats 3. How many are left?",
    "answer": "She has 16 - 3 = <<16-3=13>>13 eggs.\n#### 13",
}
NESTED = [
    {
        "pair_id": 7,
        "clean": {"question": "Tom has 16 apples and eats 3. How many are left?", "answer": 13,
                  "full_answer": "16-3=<<16-3=13>>13"},
        "corrupted": {"question": "Tom has 17 apples and eats 3. How many are left?", "answer": 14,
                      "changed_number": "16 -> 17"},
        "review_status": "needs_review",
    },
    {
        "pair_id": 8,
        "clean": {"question": "A box holds 2 pens. How many pens in 5 boxes?", "answer": 10},
        "corrupted": {"question": "A box holds 3 pens. How many pens in 5 boxes?", "answer": None,
                      "changed_number": "2 -> 3"},
    },
]


def flat_rows(nested):
    rows = []
    for pair in nested:
        for variant in ("clean", "corrupted"):
            side = pair[variant]
            rows.append({"pair_id": pair["pair_id"], "variant": variant, "question": side["question"],
                         "answer": side["answer"], "reasoning_steps": 1, "baseline_correct": True,
                         "changed_number": pair["corrupted"]["changed_number"]})
    return rows


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("loader", "split", "size", "steps"),
    [
        (load_gsm8k, "test", 1319, {0: 18, 1: 65, 2: 357, 3: 364, 4: 290, 5: 138, 6: 57, 7: 21, 8: 9}),
        (load_gsm8k, "train", 7473, None),
        (load_gsm8k_aug, "test", 1319, {0: 18, 1: 65, 2: 357, 3: 364, 4: 290, 5: 138, 6: 57, 7: 21, 8: 9}),
        (load_gsm8k_aug, "valid", 500, None),
    ],
)
def test_shipped_splits_load(loader, split, size, steps):
    problems = loader(split)
    assert len(problems) == size
    assert len({p.id for p in problems}) == size
    assert all(p.question and p.answer is not None and p.answer.is_integer() for p in problems)
    assert all(p.steps == len(p.meta["annotations"] if "annotations" in p.meta else []) for p in problems)
    assert all(len(p.intermediates) == p.steps for p in problems)
    if steps is not None:
        assert dict(sorted(Counter(p.steps for p in problems).items())) == steps


def test_negative_and_comma_gold_answers_parse():
    # SOURCE.txt: negative gold answers: train 3, test 2; comma-written: train 79, test 14
    for split, negatives, commas in [("train", 3, 79), ("test", 2, 14)]:
        problems = load_gsm8k(split)
        assert sum(p.answer < 0 for p in problems) == negatives
        assert sum("," in p.meta["solution"].rsplit("####", 1)[1] for p in problems) == commas


def test_gsm8k_aug_test_is_gsm8k_test_in_order():
    gsm8k, aug = load_gsm8k("test"), load_gsm8k_aug("test")
    for g, a in zip(gsm8k, aug, strict=True):
        assert (g.question, g.answer, g.steps) == (a.question, a.answer, a.steps)
        assert g.meta.get("annotations", []) == a.meta.get("annotations", [])


def test_questions_are_verbatim():
    assert "  " in load_gsm8k("test")[1].question  # double spaces kept; normalising is the engine's job


def test_fixtures_dir_defaults_to_repo(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert fixtures_dir() == Path(__file__).resolve().parents[2] / "fixtures"
    assert data_file("gsm8k", "test.jsonl").is_file()


def test_env_override(monkeypatch, tmp_path):
    (tmp_path / "data" / "gsm8k").mkdir(parents=True)
    write(tmp_path / "data" / "gsm8k", "test.jsonl", json.dumps(GSM8K_ROW) + "\n")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    problems = load_gsm8k("test")
    assert [p.answer for p in problems] == [13.0]
    with pytest.raises(FixtureNotFoundError, match=ENV_VAR) as info:
        load_gsm8k_aug("valid")
    assert isinstance(info.value, FileNotFoundError) and "\n" not in str(info.value)


@pytest.mark.parametrize("bad", ["dev", "validation", ""])
def test_unknown_split(bad):
    with pytest.raises(ValueError, match="split"):
        load_gsm8k(bad)


def test_load_problems_gsm8k_jsonl_and_gs_json(tmp_path):
    jsonl = write(tmp_path, "p.jsonl", "\n".join(json.dumps(GSM8K_ROW) for _ in range(2)) + "\n\n")
    problems = load_problems(jsonl)
    assert [p.id for p in problems] == ["p_0", "p_1"]
    assert problems[0].steps == 1 and problems[0].intermediates == (13.0,)
    gs = write(tmp_path, "gs.json", [{"gsm8k_id": "train_53", "question": "Q?", "answer": "36",
                                      "full_solution": "<<6*6=36>>"}])
    (problem,) = load_problems(gs)
    assert (problem.id, problem.answer, problem.steps) == ("train_53", 36.0, 1)


def test_load_problems_reads_both_sides_of_both_pair_schemas(tmp_path):
    nested = load_problems(write(tmp_path, "nested.json", NESTED))
    flat = load_problems(write(tmp_path, "flat.json", flat_rows(NESTED)))
    expected = ["7/clean", "7/corrupted", "8/clean", "8/corrupted"]
    assert [p.id for p in nested] == [p.id for p in flat] == expected
    assert [p.answer for p in nested] == [p.answer for p in flat] == [13.0, 14.0, 10.0, None]


@pytest.mark.parametrize("schema", ["nested", "flat"])
@pytest.mark.parametrize("fmt", ["json", "jsonl", "wrapped"])
def test_load_pairs_schemas(tmp_path, schema, fmt):
    records = NESTED if schema == "nested" else flat_rows(NESTED)
    text = {"json": json.dumps(records), "jsonl": "\n".join(map(json.dumps, records)),
            "wrapped": json.dumps({"meta": {}, "pairs": records})}[fmt]
    pairs = load_pairs(write(tmp_path, f"pairs.{'jsonl' if fmt == 'jsonl' else 'json'}", text))
    assert [p.pair_id for p in pairs] == ["7", "8"]
    assert [p.changed_number for p in pairs] == ["16 -> 17", "2 -> 3"]
    assert pairs[0].clean.question.startswith("Tom has 16") and pairs[0].corrupted.question.startswith("Tom has 17")
    assert (pairs[0].clean.answer, pairs[0].corrupted.answer, pairs[1].corrupted.answer) == (13.0, 14.0, None)


def test_nested_pair_keeps_top_level_fields(tmp_path):
    pair = load_pairs(write(tmp_path, "n.json", NESTED))[0]
    assert pair.meta["review_status"] == "needs_review"
    assert pair.clean.meta["annotations"] == ["16-3=13"]


def test_shipped_pair_file_loads():
    pairs = load_pairs(shipped_pairs_path())
    assert len(pairs) >= 300
    assert all(p.clean.intermediates[-1] == p.clean.answer for p in pairs)
    assert all(p.corrupted.intermediates[-1] == p.corrupted.answer for p in pairs)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("bad.jsonl", json.dumps(GSM8K_ROW) + "\n{not json\n", r"bad\.jsonl:2: malformed JSON line"),
        ("bad.json", "[1, 2", r"bad\.json:1: malformed JSON"),
        ("obj.json", json.dumps({"rows": []}), "unknown schema"),
        ("scalar.json", "3", "expected a list"),
        ("noq.json", json.dumps([{"prompt": "x", "answer": 1}]), r"record 0: .*no string 'question'.*unknown schema"),
        ("notdict.jsonl", "[1, 2]\n", r"notdict\.jsonl:1: record 0: record is a list"),
        ("badans.json", json.dumps([{"question": "q", "answer": "many"}]), "'answer' is not a number"),
        ("badsteps.json", json.dumps([{"question": "q", "answer": 1, "reasoning_steps": "3"}]), "reasoning_steps"),
        ("aug.txt", "question without separators\n", r"aug\.txt:1: expected 'question\|\|cot #### answer'"),
        ("latin.json", b"\xff\xfe".decode("latin-1"), "not UTF-8"),
    ],
)
def test_bad_problem_files(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1") if name == "latin.json" else content.encode("utf-8"))
    with pytest.raises(DataFormatError, match=match) as info:
        load_problems(path)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("records", "match"),
    [
        ([], "no records"),
        (flat_rows(NESTED)[:3], "has only a 'clean' row"),
        (flat_rows(NESTED)[:2] * 2, "two 'clean' rows"),
        ([{"pair_id": 1, "variant": "other", "question": "q", "answer": 1}], "not a pair row"),
        ([GSM8K_ROW], "not a pair row"),
        ([{"clean": {"question": "q", "answer": 1}, "corrupted": {"question": "q", "answer": 2}}], "without 'pair_id'"),
        ([{"pair_id": 1, "clean": {"question": "q", "answer": 1}}], "no 'corrupted' object"),
    ],
)
def test_bad_pair_files(tmp_path, records, match):
    path = write(tmp_path, "pairs.json", records)
    with pytest.raises(DataFormatError, match=match) as info:
        load_pairs(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FixtureNotFoundError, match="nothing.json: file not found"):
        load_pairs(tmp_path / "nothing.json")


def test_hub_without_datasets_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(MissingOptionalDependency, match=r"pip install 'codi-probe\[datasets\]'") as info:
        load_from_hub()
    assert "\n" not in str(info.value)


def test_hub_rows_in_both_shapes(monkeypatch):
    calls = []

    def load_dataset(repo_id, config, split, streaming):
        calls.append((repo_id, config, split, streaming))
        if repo_id == "openai/gsm8k":
            return [GSM8K_ROW] * 3
        return [{"question": "Q", "cot": "<<2*3=6>> <<6+1=7>>", "answer": "7"}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    gsm8k = load_from_hub(limit=2)
    aug = load_from_hub("zen-E/GSM8k-Aug", "train", None, streaming=True)
    assert calls == [("openai/gsm8k", "main", "test", False), ("zen-E/GSM8k-Aug", None, "train", True)]
    assert [p.answer for p in gsm8k] == [13.0, 13.0]
    assert (aug[0].answer, aug[0].steps, aug[0].intermediates) == (7.0, 2, (6.0, 7.0))
    assert aug.name == "hub:zen-E/GSM8k-Aug/train"


def test_loaders_module_has_no_hub_import():
    assert "datasets" not in loaders.__dict__
