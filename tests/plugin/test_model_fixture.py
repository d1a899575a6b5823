"""``codi_model`` with a real tiny random model (skipped while ``codi_probe.loading`` is unavailable)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

CLAIM = """
import pytest
import torch

@pytest.mark.claim(id="M-01", statement="the model loads with the requested options", kind="invariant")
def test_model(claim, codi_model, codi_options):
    fingerprint = codi_model.fingerprint()
    claim.record("n_layers", fingerprint["n_layers"])
    assert fingerprint["name"] == codi_options.model == "tiny-random-gpt2"
    assert torch.get_num_threads() == 1
"""


def test_codi_model_loads_once_and_is_fingerprinted(pytester: pytest.Pytester, run_claims) -> None:
    pytest.importorskip("codi_probe.loading")
    pytester.makepyfile(test_model=CLAIM)
    # A subprocess: pytester would drop the modules the load imports (tokenizers, ...) after the test.
    run = run_claims("--codi-model=tiny-random-gpt2", "--codi-threads=1", subprocess=True)
    run.result.assert_outcomes(passed=1)
    report = run.report
    assert report["model"]["name"] == "tiny-random-gpt2" and len(report["model"]["sha256"]) == 64
    assert report["claims"][0]["value"] == report["model"]["n_layers"]
    (process,) = report["environment"]["processes"]
    assert process["torch_threads"] == 1 and process["model_load_s"] > 0


MANY = """
import pytest

@pytest.mark.parametrize("i", range(5))
def test_needs_model(codi_model, i):
    pass
"""


def test_a_model_that_cannot_load_stops_the_run_with_one_line(pytester: pytest.Pytester, run_claims) -> None:
    """Defect: an unloadable --codi-model gave one error with a traceback per test. Now the first test
    that needs the model stops the run with one line naming the model and the problem."""
    pytest.importorskip("codi_probe.loading")
    pytester.makepyfile(test_many=MANY)
    (pytester.path / "bad.bin").write_bytes(b"not a checkpoint")
    run = run_claims("--codi-model=bad.bin", subprocess=True)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in run.output.splitlines() if "cannot load model" in line]
    assert len(lines) == 1 and "bad.bin" in lines[0] and "weights_only" in lines[0], run.output
    assert "Traceback" not in run.output and "ERROR at setup" not in run.output
