"""The "after retraining" workflow of the README, end to end: run and autosave, change the model,
compare (in the run and with ``codi-probe compare``), and a comparison with another model refused.

Runs as subprocesses (each loads a model) on the example claim ``examples/test_my_claim.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from codi_probe.cli import main

pytest_plugins = ["pytester"]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "test_my_claim.py"


def _retrained(out: Path) -> Path:
    """codi-tiny-arith with every weight moved by seeded noise: the same model, other weights (as a
    retraining that went wrong would give)."""
    import torch

    from codi_probe.checkpoint import save_checkpoint
    from codi_probe.loading import load_codi

    model = load_codi("codi-tiny-arith")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return save_checkpoint(model, out)


def test_run_retrain_compare(pytester: pytest.Pytester, run_claims, capsys) -> None:
    shutil.copy(EXAMPLE, pytester.path / "test_my_claim.py")
    saved = pytester.path / "reports" / "runs"

    first = run_claims("--codi-model=codi-tiny-arith", "--codi-autosave", report="", subprocess=True)
    first.result.assert_outcomes(passed=1)
    assert [p.name for p in saved.iterdir()] == ["0001_codi-tiny-arith.json"]

    checkpoint = _retrained(pytester.path / "retrained")
    second = run_claims(f"--codi-model={checkpoint.parent}", "--codi-compare=latest", "--codi-autosave",
                        report="", subprocess=True)
    assert second.result.ret == pytest.ExitCode.TESTS_FAILED
    assert "MY-ACC: verdict flipped: baseline supported (accuracy=1 " in second.output
    assert "now refuted (accuracy=0" in second.output
    report = json.loads((pytester.path / "reports" / "latest.json").read_text())
    assert report["baseline"]["path"].endswith("0001_codi-tiny-arith.json")
    assert report["baseline"]["weights_changed"].startswith("weights sha256 ")
    runs = sorted(saved.iterdir())
    assert len(runs) == 2

    capsys.readouterr()  # pytester echoes the runs' output
    assert main(["compare", str(runs[0]), str(runs[1])]) == 1  # the same rule, the same verdict
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("MY-ACC"))
    assert "supported -> refuted" in row and row.endswith("FLIP")
    assert "(another checkpoint of the same model)" in out and "exit 1" in out

    other = run_claims("--codi-model=tiny-random-gpt2", "--codi-compare=1", report="", subprocess=True)
    assert other.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "the baseline is of another model); pass --codi-force-compare to compare anyway" in other.output
    assert "not comparable (width: 128 -> 64; LoRA rank: 32 -> 8; prj width: 128 -> 64; special token ids" in other.output
    forced = run_claims("--codi-model=tiny-random-gpt2", "--codi-compare=1", "--codi-force-compare", report="",
                        subprocess=True)
    assert forced.result.ret == pytest.ExitCode.TESTS_FAILED  # compared: the verdict flipped
