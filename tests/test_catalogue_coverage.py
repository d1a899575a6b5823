"""docs/catalogue.md lists every claims.md id (91), NEW-01..10 and F-01..22 once, and agrees with the claim
markers in hypotheses/: an id marked `claim` is tested in the file named, and every tested id is marked
`claim` (read from the source, no model)."""

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {"ACC": 6, "IMP": 13, "COR": 4, "ATT": 4, "SAN": 14, "LAY": 8, "FLOW": 9, "LENS": 12, "PATCH": 6, "OP": 5,
            "NOISE": 3, "INTERP": 2, "PROBE": 5}  # claims.md section 4: 91 ids
IDS = ([f"{f}-{n:02d}" for f, k in FAMILIES.items() for n in range(1, k + 1)]
       + [f"NEW-{n:02d}" for n in range(1, 11)] + [f"F-{n:02d}" for n in range(1, 23)])


def marker_ids() -> dict[str, set[str]]:
    out = defaultdict(set)
    for path in sorted((ROOT / "hypotheses").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    if isinstance(dec, ast.Call) and getattr(dec.func, "attr", None) == "claim":
                        kw = {k.arg: k.value for k in dec.keywords}
                        out[kw["id"].value].add(path.name)
    return out


def doc_rows() -> dict[str, tuple[str, str, str]]:
    rows = {}
    for line in (ROOT / "docs" / "catalogue.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")[1:-1]]
        if len(cells) == 4 and re.fullmatch(r"[A-Z]+-\d\d", cells[0]):
            assert cells[0] not in rows, f"{cells[0]} is listed twice"
            rows[cells[0]] = (cells[1], cells[2], cells[3])
    return rows


def test_every_id_is_listed_once_with_its_status():
    rows, tested = doc_rows(), marker_ids()
    assert sorted(rows) == sorted(IDS), f"missing {sorted(set(IDS) - set(rows))}, extra {sorted(set(rows) - set(IDS))}"
    for cid, (files, status, why) in rows.items():
        if cid in tested:
            assert status == "claim" and set(files.split(", ")) == tested[cid], f"{cid}: tested in {sorted(tested[cid])}"
        else:
            assert status in ("not covered", "not a claim") and why, f"{cid}: untested, so it needs a status and a why"


def test_the_coverage_line_counts_the_table():
    rows = doc_rows()
    text = (ROOT / "docs" / "catalogue.md").read_text()
    claimed = {p: sum(1 for c, r in rows.items() if c.startswith(p) and r[1] == "claim") for p in ("NEW-", "F-")}
    base = sum(1 for c, r in rows.items() if not c.startswith(("NEW-", "F-")) and r[1] == "claim")
    assert f"Coverage: {base} of 91 claims.md ids, {claimed['NEW-']} of NEW-01..10, {claimed['F-']} of F-01..22." in text
