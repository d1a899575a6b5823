"""Shared work across processes: two ``popen`` gateways and a shared ``--codi-cache`` directory divide
the CCTA grid, a killed gateway's chunk is taken over, a rerun reads everything back, and the grid
equals the serial run's (issue 19). Each gateway process runs one of two tests that need the grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

N = 32  # problems: four chunks of 8
CONFTEST = r'''
import os, signal, time
import codi_probe.experiments.corruption as corruption

real = corruption.grid_chunk

def slow_chunk(*args, **kwargs):
    """Half a second more per chunk, so both gateways are inside the grid at once; with KILL_WORKER set,
    that worker kills itself (SIGKILL: no cleanup) in its first chunk, while it holds the claim."""
    wid = os.environ.get("PYTEST_XDIST_WORKER", "main")
    marker = os.path.join(os.environ["GRID_OUT"], "killed")
    if os.environ.get("KILL_WORKER") == wid and not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.5)
    return real(*args, **kwargs)

corruption.grid_chunk = slow_chunk
'''
TESTS = r'''
import json, os

def _dump(ccta):
    wid = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = {k: {m: {p: getattr(ccta, k)[m][p].tolist() for p in ccta.positions} for m in ccta.methods}
           for k in ("failure", "changed", "kl")}
    with open(os.path.join(os.environ["GRID_OUT"], wid + ".json"), "w") as f:
        json.dump(out, f)

def test_a(ccta):
    _dump(ccta)

def test_b(ccta):
    _dump(ccta)
'''


def _run(tmp_path: Path, name: str, *args: str, kill: str | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / name
    out.mkdir()
    report = out / "report.json"
    env = {**os.environ, "GRID_OUT": str(out)}
    env.pop("KILL_WORKER", None)
    if kill:
        env["KILL_WORKER"] = kill
    cmd = [sys.executable, "-m", "pytest", "test_grid.py", "-q", "-p", "no:cacheprovider", "--codi-model",
           "tiny-random-gpt2", "--codi-problems", str(N), "--codi-expect", "none", "--codi-threads", "1",
           "--codi-report", str(report), *args]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    return done, (json.loads(report.read_text()) if report.exists() else {})


def _grid(tmp_path: Path, name: str, worker: str) -> dict:
    return json.loads((tmp_path / name / f"{worker}.json").read_text())


def _same(a: dict, b: dict) -> None:
    for k in ("failure", "changed"):
        assert a[k] == b[k], k  # outcomes of greedy answers: exactly
    for m in a["kl"]:
        for p in a["kl"][m]:
            np.testing.assert_allclose(a["kl"][m][p], b["kl"][m][p], rtol=1e-4, atol=1e-6)


def _work(report: dict) -> dict:
    return {p["worker"]: p.get("shared_work", {}).get("ccta") for p in report["environment"]["processes"]}


def test_two_gateways_divide_the_grid_survive_a_kill_and_give_the_serial_result(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_grid.py").write_text(TESTS)
    serial, serial_report = _run(tmp_path, "serial")
    assert serial.returncode == 0, serial.stdout[-3000:]
    reference = _grid(tmp_path, "serial", "main")
    assert _work(serial_report) == {"main": {"computed": N, "read": 0}}
    gateways = ("-d", "--tx", "popen", "--tx", "popen")

    # divided: every problem computed once, by both gateways
    cache = tmp_path / "cache"
    done, report = _run(tmp_path, "divided", *gateways, "--codi-cache", str(cache))
    assert done.returncode == 0, done.stdout[-3000:]
    work = _work(report)
    assert sum(w["computed"] for w in work.values()) == N, work
    assert all(w["computed"] > 0 for w in work.values()), f"one gateway did all the work: {work}"
    for worker in work:
        _same(_grid(tmp_path, "divided", worker), reference)

    # a gateway killed while it holds a chunk: the other takes the chunk over and completes the grid
    killed_cache = tmp_path / "killed-cache"
    done, report = _run(tmp_path, "killed", *gateways, "--codi-cache", str(killed_cache), kill="gw1")
    assert (tmp_path / "killed" / "killed").exists(), "the worker was not killed"
    assert not (tmp_path / "killed" / "gw1.json").exists()
    _same(_grid(tmp_path, "killed", "gw0"), reference)
    (key,) = [d for d in killed_cache.iterdir() if d.is_dir() and (d / "config.json").exists()
              and json.loads((d / "config.json").read_text())["config"].get("fixture") == "ccta"]
    assert not list((key / "claims").glob("*.claim")), "a claim was left behind"

    # rerun on the same directory: everything read back, nothing computed
    done, report = _run(tmp_path, "resumed", *gateways, "--codi-cache", str(killed_cache))
    assert done.returncode == 0, done.stdout[-3000:]
    assert all(w == {"computed": 0, "read": N} for w in _work(report).values()), _work(report)
    for worker in _work(report):
        _same(_grid(tmp_path, "resumed", worker), reference)
