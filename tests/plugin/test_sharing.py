"""Shared session work: the serial path, the cache path, and one device per worker."""

from types import SimpleNamespace

import pytest
import torch

from codi_probe.plugin import sharing
from codi_probe.plugin.metadata import get_metadata
from codi_probe.plugin.options import OPTIONS_KEY, worker_device


class Model:
    def weights_sha256(self):
        return "a" * 64


def _config(cache=None, workerinput=None):
    config = SimpleNamespace(stash={OPTIONS_KEY: SimpleNamespace(cache=cache)})
    if workerinput is not None:
        config.workerinput = workerinput
    return config


def _compute(calls):
    def compute(idx):
        calls.append(list(idx))
        return [{"x": torch.tensor([float(i)])} for i in idx]
    return compute


def test_serial_runs_compute_the_same_chunks_in_process():
    config, calls = _config(), []
    rows = sharing.shared_problems(config, "grid", Model(), {}, ["a", "b", "c", "d", "e"], _compute(calls), chunk=2)
    assert calls == [[0, 1], [2, 3], [4]]
    assert [float(r["x"][0]) for r in rows] == [0, 1, 2, 3, 4]
    assert get_metadata(config).processes["main"]["shared_work"]["grid"] == {"computed": 5, "read": 0}


def test_a_worker_reads_what_is_stored(tmp_path):
    first, calls = _config(workerinput={"workerid": "gw0", sharing.SHARED_DIR_KEY: str(tmp_path)}), []
    sharing.shared_problems(first, "grid", Model(), {"layer": 1}, ["a", "b", "c"], _compute(calls), chunk=2)
    second, again = _config(workerinput={"workerid": "gw1", sharing.SHARED_DIR_KEY: str(tmp_path)}), []
    rows = sharing.shared_problems(second, "grid", Model(), {"layer": 1}, ["a", "b", "c"], _compute(again), chunk=2)
    assert calls == [[0, 1], [2]] and again == []
    assert [float(r["x"][0]) for r in rows] == [0, 1, 2]
    assert get_metadata(second).processes["gw1"]["shared_work"]["grid"] == {"computed": 0, "read": 3}


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="unique"):
        sharing.shared_problems(_config(), "grid", Model(), {}, ["a", "a"], _compute([]))


@pytest.mark.parametrize("device,worker,count,want", [
    ("cuda", "gw0", 8, "cuda:0"), ("cuda", "gw9", 8, "cuda:1"), ("cuda", "main", 8, "cuda"),
    ("cuda:3", "gw1", 8, "cuda:3"), ("cpu", "gw1", 8, "cpu"), ("cuda", "gw1", 0, "cuda")])
def test_one_device_per_worker(monkeypatch, device, worker, count, want):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    config = _config(workerinput={"workerid": worker}) if worker != "main" else _config()
    assert worker_device(device, config) == want


@pytest.mark.parametrize("nodeid,scope", [
    ("hypotheses/test_patching.py::test_x[P1]", "hypotheses/test_patching.py"),
    ("../lib/site-packages/codi_probe/hypotheses/test_flow.py::test_y", "../lib/site-packages/codi_probe/hypotheses/test_flow.py"),
    ("tests/test_other.py::test_z", "tests/test_other.py::test_z"),
    ("test_claims.py::test_a[1]", "test_claims.py::test_a[1]"),
    # --codi-randomization-check: a module's twins are a unit of their own (queued after the model's units)
    ("hypotheses/test_patching.py::test_x[P1]@randomized", "hypotheses/test_patching.py@randomized")])
def test_catalogue_modules_are_scheduled_whole(nodeid, scope):
    assert sharing.catalogue_scope(nodeid) == scope
