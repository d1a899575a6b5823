"""The second CPU kernel path that CI runs the engine tests and the invariants on is real.

``ATEN_CPU_CAPABILITY=default`` makes torch dispatch its vectorised CPU kernels (softmax, norms,
reductions, element-wise ops and its matrix-multiply paths) to the generic build instead of the best
one for the CPU (AVX2/AVX-512), which changes the floating-point bits of the results. CI runs the
engine tests and ``pytest hypotheses -m invariant`` a second time under it (``.ci/run``), so a test that
only passes with one CPU's bits fails in CI rather than on a user's machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

PROBE = """
import hashlib, torch
torch.manual_seed(0)
x, w = torch.randn(64, 1000), torch.randn(1000, 333)
out = [torch.softmax(x, -1), torch.nn.functional.layer_norm(x, (1000,)), x @ w, x.exp()]
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(b"".join(t.numpy().tobytes() for t in out)).hexdigest())
"""


def _probe(env: dict[str, str]) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True,
                          check=True)
    capability, digest = done.stdout.split()
    return capability, digest


def test_the_default_kernel_path_changes_the_bits():
    native, native_bits = _probe({"ATEN_CPU_CAPABILITY": ""})
    generic, generic_bits = _probe({"ATEN_CPU_CAPABILITY": "default"})
    assert generic == "DEFAULT"
    if native == "DEFAULT":
        pytest.skip("this CPU already runs the generic kernels: there is no second path to compare with")
    assert generic_bits != native_bits, "the generic kernels gave the same bits: the second CI pass proves nothing"


@pytest.mark.skipif(not os.environ.get("CODI_EXPECT_KERNEL_PATH"), reason="only in CI's second kernel-path pass")
def test_this_process_runs_on_the_expected_kernel_path():
    assert torch.backends.cpu.get_cpu_capability() == os.environ["CODI_EXPECT_KERNEL_PATH"].upper()
