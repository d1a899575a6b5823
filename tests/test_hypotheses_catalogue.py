"""The catalogue decides every verdict through the shared rule: no claim in ``hypotheses/`` writes a
verdict itself, and every empirical claim declares its hypothesis (read from the source, no model)."""

import ast
from pathlib import Path

import pytest

HYPOTHESES = Path(__file__).resolve().parents[1] / "hypotheses"
FILES = sorted(HYPOTHESES.glob("test_*.py"))
VERDICTS = ("supported", "refuted", "inconclusive", "invalid")


def _claim_markers(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for dec in node.decorator_list:
                if (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "claim"):
                    yield node, {k.arg: k.value for k in dec.keywords}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_no_hand_written_verdicts(path):
    source = path.read_text()
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            assert not any(k.arg == "verdict" for k in node.keywords), \
                f"{path.name}:{node.lineno}: passes verdict= (use claim.decide or claim.check)"
            func = node.func
            assert not (isinstance(func, ast.Attribute) and func.attr == "set_verdict"), \
                f"{path.name}:{node.lineno}: calls set_verdict"
        if isinstance(node, ast.IfExp) and any(isinstance(branch, ast.Constant) and branch.value in VERDICTS
                                               for branch in (node.body, node.orelse)):
            pytest.fail(f"{path.name}:{node.lineno}: a hand-written verdict ternary (use the shared rule)")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_empirical_claim_declares_a_hypothesis(path):
    for fn, kw in _claim_markers(ast.parse(path.read_text())):
        kind = kw.get("kind")
        if isinstance(kind, ast.Constant) and kind.value == "empirical":
            assert "hypothesis" in kw, f"{path.name}: {fn.name} is empirical and declares no hypothesis="


@pytest.mark.parametrize("body,problem", [
    ('claim.record("s", 1, verdict="refuted")', "passes verdict="),
    ('v = "supported" if ok else "refuted"', "ternary"),
    ('claim.set_verdict("refuted")', "set_verdict"),
])
def test_the_guards_bite_on_planted_verdicts(tmp_path, body, problem):
    planted = tmp_path / "test_planted.py"
    planted.write_text(f"def test_x(claim, ok):\n    {body}\n")
    with pytest.raises((AssertionError, pytest.fail.Exception), match=problem):
        test_no_hand_written_verdicts(planted)
    planted.write_text('import pytest\n@pytest.mark.claim(id="X", statement="s", kind="empirical")\n'
                       'def test_x(claim):\n    pass\n')
    with pytest.raises(AssertionError, match="declares no hypothesis"):
        test_every_empirical_claim_declares_a_hypothesis(planted)
