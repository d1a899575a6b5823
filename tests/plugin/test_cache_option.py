"""``--codi-cache``: the hypotheses' CCTA grid goes through the on-disk result cache end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path: Path, name: str, *extra: str) -> dict:
    report = tmp_path / f"{name}.json"
    cmd = [sys.executable, "-m", "pytest", "hypotheses/test_corruption.py", "-k", "kl_is_not_zero", "-q",
           "-p", "no:cacheprovider", "--codi-model", "tiny-random-gpt2", "--codi-problems", "4",
           "--codi-expect", "none", "--codi-threads", "2", "--codi-report", str(report), *extra]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(report.read_text())


def test_ccta_results_are_cached_and_reused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _run(tmp_path, "first", "--codi-cache", str(cache))
    from safetensors import safe_open

    (key,) = [d for d in cache.iterdir() if d.is_dir()]
    config = json.loads((key / "config.json").read_text())
    assert config["model"] == first["model"]["sha256"] and config["config"]["design"] == "corruption_grid"
    stored = []
    for shard in key.glob("shard-*.safetensors"):
        with safe_open(str(shard), framework="pt") as f:
            assert f.metadata()["model"] == first["model"]["sha256"]
            stored += json.loads(f.metadata()["problems"])
    assert len(stored) == len(set(stored)) == 4
    mtimes = {p.name: p.stat().st_mtime_ns for p in key.iterdir()}
    second = _run(tmp_path, "second", "--codi-cache", str(cache))
    assert {p.name: p.stat().st_mtime_ns for p in key.iterdir()} == mtimes  # read back, nothing rewritten
    plain = _run(tmp_path, "plain")
    assert first["options"]["cache"] == str(cache) and plain["options"]["cache"] is None
    verdicts = lambda r: [(c["id"], c["verdict"]) for c in r["claims"]]
    values = lambda r: [c["value"] for c in r["claims"]]
    assert verdicts(first) == verdicts(second) == verdicts(plain)
    assert values(first) == values(second) and values(plain) == pytest.approx(values(first), rel=1e-5)
