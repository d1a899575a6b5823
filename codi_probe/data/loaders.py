"""Offline loaders for the shipped fixtures and for user files (JSON, JSONL, GSM8K-Aug ``.txt``).

Fixtures are found at ``<repo>/fixtures`` (the folder next to the ``codi_probe`` package), or at
``$CODI_PROBE_FIXTURES`` when that is set. Data files live under ``<fixtures>/data/``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import DataFormatError, FixtureNotFoundError
from .problemset import PairSet, Problem, ProblemPair, ProblemSet
from .records import RecordError, problem_from_record

ENV_VAR = "CODI_PROBE_FIXTURES"
GSM8K_SPLITS = ("train", "test")
GSM8K_AUG_SPLITS = ("test", "valid")
Record = tuple[int | None, Any]
"""(line number or None, parsed record)."""


def fixtures_dir() -> Path:
    """The fixtures folder: ``$CODI_PROBE_FIXTURES`` if set; else the one installed inside the package
    (``codi_probe/fixtures`` in a wheel); else ``<repo>/fixtures`` (a clone or an editable install)."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    package = Path(__file__).resolve().parents[1]
    installed = package / "fixtures"
    return installed if installed.is_dir() else package.parent / "fixtures"


def data_file(*parts: str) -> Path:
    """Path of a shipped data file under ``<fixtures>/data``; FixtureNotFoundError if missing."""
    path = fixtures_dir().joinpath("data", *parts)
    if not path.is_file():
        raise FixtureNotFoundError(path, f"shipped fixture missing; set {ENV_VAR} to the fixtures folder")
    return path


FIXTURE_SETS = {"gsm8k": ("jsonl", GSM8K_SPLITS), "gsm8k_aug": ("txt", GSM8K_AUG_SPLITS)}
"""Shipped problem sets: dataset folder -> (file suffix, splits)."""


def load_fixture(dataset: str, split: str) -> ProblemSet:
    """A shipped split; ids ``<dataset>_<split>_<i>``, questions verbatim, family = dataset."""
    if dataset not in FIXTURE_SETS:
        raise ValueError(f"unknown shipped dataset {dataset!r}; one of {sorted(FIXTURE_SETS)}")
    suffix, splits = FIXTURE_SETS[dataset]
    if split not in splits:
        raise ValueError(f"{dataset} split must be one of {splits}, got {split!r}")
    return load_problems(data_file(dataset, f"{split}.{suffix}"), name=f"{dataset}/{split}",
                         id_prefix=f"{dataset}_{split}", family=dataset)


def load_gsm8k(split: str = "test") -> ProblemSet:
    """GSM8K ``train``/``test`` from the fixtures; ids ``gsm8k_<split>_<i>``; gold from ``#### N``."""
    return load_fixture("gsm8k", split)


def load_gsm8k_aug(split: str = "test") -> ProblemSet:
    """GSM8K-Aug ``test``/``valid`` (``question||cot #### answer``); steps = number of annotations."""
    return load_fixture("gsm8k_aug", split)


def read_records(path: str | Path) -> list[Record]:
    """Raw records of a ``.jsonl``, ``.json`` (list, or object with a ``pairs``/``problems`` list) or
    GSM8K-Aug ``.txt`` file."""
    path = Path(path)
    if not path.is_file():
        raise FixtureNotFoundError(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if path.suffix == ".txt":
        return list(_aug_lines(path, text))
    if path.suffix == ".jsonl":
        return list(_jsonl_lines(path, text))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"malformed JSON: {exc.msg} (column {exc.colno})", exc.lineno) from None
    if isinstance(data, dict):
        lists = [k for k in ("pairs", "problems") if isinstance(data.get(k), list)]
        if not lists:
            raise DataFormatError(path, "JSON object without a 'pairs' or 'problems' list; unknown schema")
        data = data[lists[0]]
    if not isinstance(data, list):
        raise DataFormatError(path, f"top-level JSON is a {type(data).__name__}, expected a list of records")
    return [(None, record) for record in data]


def _jsonl_lines(path: Path, text: str) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(path, f"malformed JSON line: {exc.msg} (column {exc.colno})", number) from None


def _aug_lines(path: Path, text: str) -> Iterator[Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        question, sep, rest = line.partition("||")
        cot, marker, answer = rest.rpartition(" #### ")
        if not sep or not marker:
            raise DataFormatError(path, "expected 'question||cot #### answer'", number)
        yield number, {"question": question, "cot": cot, "answer": answer}


def _problems(path: Path, records: list[Record], id_prefix: str, family: str | None) -> Iterator[Problem]:
    for index, (line, record) in enumerate(records):
        try:
            if isinstance(record, dict) and isinstance(record.get("clean"), dict):
                for variant in ("clean", "corrupted"):
                    yield _side(record, variant, f"{id_prefix}_{index}", family)
            else:
                yield problem_from_record(record, f"{id_prefix}_{index}", family)
        except RecordError as exc:
            raise DataFormatError(path, f"record {index}: {exc}", line) from None


def load_problems(
    path: str | Path, *, name: str | None = None, id_prefix: str | None = None, family: str | None = None
) -> ProblemSet:
    """Every problem of a file: GSM8K/GSM8K-Aug records, or both sides of every pair (either schema)."""
    path = Path(path)
    records = read_records(path)
    problems = list(_problems(path, records, id_prefix or path.stem, family))
    return ProblemSet(problems, name=name or path.stem, source=str(path))


def _side(record: dict[str, Any], variant: str, default_id: str, family: str | None) -> Problem:
    """One side of a nested pair record as a Problem with id ``<pair_id>/<variant>``."""
    side = record.get(variant)
    if not isinstance(side, dict):
        raise RecordError(f"nested pair has no '{variant}' object")
    pair_id = record.get("pair_id", default_id)
    return problem_from_record({**side, "pair_id": pair_id, "variant": variant}, default_id, family)


def load_pairs(path: str | Path, *, name: str | None = None) -> PairSet:
    """Clean/corrupted pairs from the nested schema (``clean``/``corrupted`` objects) or the flat
    schema (one row per variant, grouped by ``pair_id``); see claims.md 2.2."""
    path = Path(path)
    records = read_records(path)
    if not records:
        raise DataFormatError(path, "no records")
    first = records[0][1]
    nested = isinstance(first, dict) and "clean" in first
    try:
        pairs = _nested_pairs(records) if nested else _flat_pairs(records)
    except RecordError as exc:
        raise DataFormatError(path, str(exc)) from None
    return PairSet(pairs, name=name or path.stem, source=str(path))


def _nested_pairs(records: list[Record]) -> list[ProblemPair]:
    pairs = []
    for index, (_, record) in enumerate(records):
        if not isinstance(record, dict) or "pair_id" not in record:
            raise RecordError(f"record {index}: nested pair without 'pair_id'")
        clean, corrupted = (_side(record, v, str(record["pair_id"]), None) for v in ("clean", "corrupted"))
        changed = corrupted.meta.get("changed_number", record.get("changed_number", ""))
        meta = {k: v for k, v in record.items() if k not in ("pair_id", "clean", "corrupted")}
        pairs.append(ProblemPair(str(record["pair_id"]), clean, corrupted, str(changed), meta))
    return pairs


def _flat_pairs(records: list[Record]) -> list[ProblemPair]:
    groups: dict[str, dict[str, Problem]] = {}
    for index, (_, record) in enumerate(records):
        if not isinstance(record, dict) or "pair_id" not in record or record.get("variant") not in (
            "clean", "corrupted"):
            raise RecordError(f"record {index}: not a pair row (needs 'pair_id' and variant clean|corrupted)")
        group = groups.setdefault(str(record["pair_id"]), {})
        if record["variant"] in group:
            raise RecordError(f"pair {record['pair_id']!r}: two '{record['variant']}' rows")
        group[record["variant"]] = problem_from_record(record, str(record["pair_id"]))
    pairs = []
    for pair_id, group in groups.items():
        if len(group) != 2:
            raise RecordError(f"pair {pair_id!r}: has only a '{next(iter(group))}' row")
        changed = group["corrupted"].meta.get("changed_number", group["clean"].meta.get("changed_number", ""))
        pairs.append(ProblemPair(pair_id, group["clean"], group["corrupted"], str(changed)))
    return pairs
