"""``codi-probe compare``: the plugin's regression rule (flips and moves exit 1), incomparable runs refused
(exit 2 unless --force), bad input exits 2."""

import sys

import pytest

from codi_probe.cli import main
from codi_probe.report import compare_reports


@pytest.fixture
def pair(tmp_path, report, write_report):
    """Write OLD from the fixture; returns (old path, new report dict to edit, writer of NEW)."""
    old = write_report(tmp_path / "old.json", report)
    new = __import__("copy").deepcopy(report)
    return old, new, lambda: write_report(tmp_path / "new.json", new)


def test_identical_reports_exit_0(report_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # compare needs no matplotlib
    assert main(["compare", str(report_path), str(report_path)]) == 0
    out = capsys.readouterr().out
    assert "no claim changed" in out and "0 verdict flip(s)" in out


def test_a_verdict_flip_exits_1(pair, capsys, claim_of):
    old, new, write = pair
    claim_of(new, "LENS-10")["verdict"] = "supported"
    assert main(["compare", str(old), str(write())]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("LENS-10"))
    assert "refuted -> supported" in row and row.endswith("FLIP")
    assert "LENS-10: verdict flipped" in out and "1 verdict flip(s)" in out


def test_an_invariant_flip_counts(pair, claim_of):
    old, new, write = pair
    claim_of(new, "SAN-CAUSAL")["verdict"] = "refuted"
    cmp = compare_reports(old, write())
    assert [r.id for r in cmp.flips] == ["SAN-CAUSAL"] and cmp.exit_code == 1


def test_moved_statistics_and_deltas(pair, capsys, claim_of):
    old, new, write = pair
    claim_of(new, "ACC-03")["value"] = 0.9  # old CI is [0, 0.2]
    claim_of(new, "FLOW-01")["value"] = 0.15  # inside the widened CI
    new_path = write()
    cmp = compare_reports(old, new_path, tolerance=0.5)
    changes = {r.id: (r.change, r.delta) for r in cmp.rows if r.delta}
    assert changes["ACC-03"] == ("moved", pytest.approx(0.8)) and changes["FLOW-01"] == ("", pytest.approx(-0.35))
    assert cmp.exit_code == 1  # a move fails, as the plugin fails the claim's test
    assert main(["compare", str(old), str(new_path)]) == 1
    out = capsys.readouterr().out
    assert "+0.8" in out and "0.9 [0, 0.2]" in out and "ACC-03: a statistic=0.9 outside baseline" in out
    assert main(["compare", str(old), str(new_path), "--fail-on", "flip"]) == 0
    out = capsys.readouterr().out
    assert "changes the failure rule lets pass:" in out and "exit 0" in out
    assert main(["compare", str(old), str(new_path), "--rel-tolerance", "10"]) == 0  # 10 x |0.1| covers 0.9
    assert main(["compare", str(old), str(new_path), "--claim-tolerance", "ACC-* abs=1"]) == 1  # FLOW-01 moved
    assert main(["compare", str(old), str(new_path), "--claim-tolerance", "ACC-* abs=1",
                 "--claim-tolerance", "* abs=0.5"]) == 0  # first match wins
    capsys.readouterr()


def test_added_and_removed_claims(pair, capsys):
    old, new, write = pair
    new["claims"][-1]["id"] = "NEW-01"
    new["claims"][-1]["base_id"] = "NEW-01"
    assert main(["compare", str(old), str(write()), "--all"]) == 0
    out = capsys.readouterr().out
    assert "new claims (not in OLD): NEW-01" in out and "claims missing from NEW: SAN-CAUSAL" in out
    assert "IMP-01[P3]" in out  # --all lists unchanged claims


@pytest.mark.parametrize("content,problem", [
    (None, "file not found"), ("nope", "malformed JSON"), ('{"a": 1}', "not a codi-probe report"),
    ('{"schema_version": "1.0", "claims": []}', "schema-invalid"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, report_path, capsys, content, problem):
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    for args in ([str(bad), str(report_path)], [str(report_path), str(bad)]):
        assert main(["compare", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"codi-probe: error: {bad}: ") and problem in err


def test_negative_tolerance_is_an_error(report_path, capsys):
    assert main(["compare", str(report_path), str(report_path), "--tolerance", "-1"]) == 2
    assert "--tolerance and --rel-tolerance must be >= 0" in capsys.readouterr().err
    assert main(["compare", str(report_path), str(report_path), "--fail-on", "moves"]) == 2
    assert "--fail-on 'moves': must be a comma list of flip, moved, or none" in capsys.readouterr().err


@pytest.mark.parametrize(("edit", "differs"), [
    (lambda r: r["model"].update(n_layers=5), "layers: 4 -> 5"),
    (lambda r: r["options"].update(seed=5), "seed: 0 -> 5"),
])
def test_two_different_runs_are_refused_unless_forced(pair, capsys, edit, differs):
    old, new, write = pair
    edit(new)
    new_path = write()
    assert main(["compare", str(old), str(new_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"not comparable with {new_path} ({differs}); pass --force" in err
    assert main(["compare", str(old), str(new_path), "--force"]) == 0
    assert f"forced although not comparable: {differs}" in capsys.readouterr().out


def test_a_retrained_checkpoint_is_compared_and_named(pair, capsys):
    old, new, write = pair
    new["model"]["sha256"] = "cd" * 32
    assert main(["compare", str(old), str(write())]) == 0
    assert "weights sha256 abababababab -> cdcdcdcdcdcd (another checkpoint of the same model)" in capsys.readouterr().out


def test_other_problem_sets_are_refused(pair, capsys):
    old, new, write = pair
    new["data"]["answer_problems"] = {"family": "cyw", "n": 20, "fingerprint": "ff" * 32}
    old_report = __import__("json").loads(old.read_text())
    old_report["data"]["answer_problems"] = {"family": "cyw", "n": 20, "fingerprint": "ee" * 32}
    old.write_text(__import__("json").dumps(old_report))
    assert main(["compare", str(old), str(write())]) == 2
    assert "problem set answer_problems: fingerprint eeeeeeeeeeee -> ffffffffffff" in capsys.readouterr().err


def test_a_partial_old_report_is_refused(tmp_path, report, write_report, report_path, capsys):
    partial = dict(report, status="interrupted")
    old = write_report(tmp_path / "partial.json", partial)
    assert main(["compare", str(old), str(report_path)]) == 2
    assert "its status is 'interrupted', not 'complete'" in capsys.readouterr().err
