"""Hub ids as model, base and tokenizer specs (codi_probe.hub), offline against a cache in the Hub's own layout.

The cache is written as huggingface_hub writes it: ``models--owner--name/blobs/<hash>`` (sha256 for LFS
files, the git blob sha1 for the rest), ``snapshots/<commit>/<file>`` relative links to the blobs, and
``refs/<branch or tag>`` holding the 40-hex commit without a newline. Every test runs with
``HF_HUB_OFFLINE=1`` and ``HF_HUB_CACHE`` in a temporary folder: nothing touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from bcywinski_reference import MARKER, _Trap
from codi_probe.cli import main
from codi_probe.data.loaders import fixtures_dir
from codi_probe.engine import CodiEngine, Record
from codi_probe.hub import HubError, HubRef, parse_hub_id, resolve, wanted_files
from codi_probe.loading import bundled_base_config, load_codi, local_base

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["Tom has 3 apples and buys 4 more. How many apples does he have?", "What is 7 plus 8?"]
LFS = (".bin", ".safetensors")  # stored through LFS: the blob is named by the file's sha256


def commit_of(label: str) -> str:
    return hashlib.sha1(label.encode()).hexdigest()


def put_in_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """Lay ``files`` out as huggingface_hub does for ``repo_id`` at ``commit``; point each of ``refs`` at it."""
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = (hashlib.sha256(data).hexdigest() if name.endswith(LFS)
                else hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest())
        (storage / "blobs" / blob).write_bytes(data)
        os.symlink(os.path.join("..", "..", "blobs", blob), snapshot / name)
    (storage / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (storage / "refs" / ref).write_text(commit)
    return snapshot


def folder_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def trap(marker: Path) -> bytes:
    """A ``training_args.bin`` that creates ``marker`` when unpickled."""
    return pickle.dumps(_Trap(str(marker)))


@pytest.fixture(scope="module")
def hub(tmp_path_factory, cyw_checkpoint):
    """A cache with: owner/tiny-codi (main: codi-tiny-arith; tag v1: codi-tiny-pause), owner/tiny-cyw (a
    bcywinski-layout checkpoint, its training_args.bin a trap) with its base owner/tiny-llama-base
    (config.json only), and owner/no-weights (a config, no weights)."""
    root = tmp_path_factory.mktemp("hub")
    cache, markers = root / "cache", root / "markers"
    markers.mkdir()
    models = fixtures_dir() / "models"
    arith, pause = folder_files(models / "codi-tiny-arith"), folder_files(models / "codi-tiny-pause")
    put_in_cache(cache, "owner/tiny-codi", {**pause, "training_args.bin": trap(markers / "v1")}, commit_of("v1"),
                 refs=("v1",))
    put_in_cache(cache, "owner/tiny-codi", {**arith, "training_args.bin": trap(markers / "main")}, commit_of("main"))
    ckpt, base = cyw_checkpoint
    put_in_cache(cache, "owner/tiny-cyw", folder_files(ckpt), commit_of("cyw"))
    put_in_cache(cache, "owner/tiny-llama-base", folder_files(base), commit_of("base"))
    put_in_cache(cache, "owner/no-weights", {"config.json": b"{}"}, commit_of("none"))
    return {"cache": cache, "markers": markers, "cyw": ckpt, "cyw_base": base, "cyw_marker": ckpt / MARKER}


@pytest.fixture(autouse=True)
def offline(hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(hub["cache"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def by_path() -> dict[str, dict]:
    """Tokens and weights sha256 of the shipped files loaded by path, computed once per name."""
    out: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in out:
            model = load_codi(fixtures_dir() / "models" / name)
            out[name] = {"tokens": tokens(model), "sha256": model.fingerprint()["sha256"],
                         "file_sha256": model.fingerprint()["file_sha256"]}
        return out[name]
    return get


def tokens(model) -> list[list[int]]:
    trace = CodiEngine(model).run(QUESTIONS, record=Record(sites=(), logits=False), max_new_tokens=8)
    return [list(map(int, ids)) for ids in trace.answer_ids]


def no_trap_fired(hub) -> None:
    assert not list(hub["markers"].iterdir()) and not hub["cyw_marker"].exists()


def test_parse_hub_id():
    assert parse_hub_id("zen-E/CODI-gpt2") == HubRef("zen-E/CODI-gpt2")
    assert parse_hub_id("bcywinski/codi_llama1b-answer_only@v1.0") == HubRef("bcywinski/codi_llama1b-answer_only", "v1.0")
    assert str(parse_hub_id("a/b@" + "f" * 40)) == "a/b@" + "f" * 40
    for spec in ("gpt2", "a/b/c", "/abs/path", "./x/y", "a//b", "a/b@", "-a/b", "a/b-", "a--b/c", "a/b..c", "a b/c"):
        assert parse_hub_id(spec) is None, spec


def test_official_checkpoint_by_hub_id_equals_the_files_by_path(hub, by_path):
    by_hub = load_codi("owner/tiny-codi")
    assert tokens(by_hub) == by_path("codi-tiny-arith")["tokens"]
    fp = by_hub.fingerprint()
    assert fp["name"] == "owner/tiny-codi" and fp["sha256"] == by_path("codi-tiny-arith")["sha256"]
    assert fp["hub"] == {"model": {"repo_id": "owner/tiny-codi", "revision": "main", "commit": commit_of("main")}}
    assert fp["file_sha256"] == by_path("codi-tiny-arith")["file_sha256"]
    no_trap_fired(hub)


def test_a_pinned_revision_loads_that_revision(hub, by_path):
    for pin in ("v1", commit_of("v1")):  # a tag, a full commit
        by_hub = load_codi(f"owner/tiny-codi@{pin}")
        assert by_hub.fingerprint()["hub"]["model"] == {"repo_id": "owner/tiny-codi", "revision": pin,
                                                        "commit": commit_of("v1")}
        assert by_hub.fingerprint()["sha256"] == by_path("codi-tiny-pause")["sha256"] != by_path("codi-tiny-arith")["sha256"]
    assert tokens(by_hub) == by_path("codi-tiny-pause")["tokens"]
    no_trap_fired(hub)


def test_bcywinski_checkpoint_and_its_base_by_hub_id_equal_the_files_by_path(hub):
    by_path = load_codi(hub["cyw"], base=hub["cyw_base"])
    by_hub = load_codi("owner/tiny-cyw", base="owner/tiny-llama-base")
    assert by_hub.config.variant == "bcywinski"
    assert tokens(by_hub) == tokens(by_path)
    assert set(by_hub.fingerprint()["hub"]) == {"model", "base"}
    assert by_hub.fingerprint()["hub"]["base"]["commit"] == commit_of("base")
    no_trap_fired(hub)


def one_line(match: str, spec: str, **kw) -> str:
    with pytest.raises(ValueError) as info:
        load_codi(spec, **kw)
    msg = str(info.value)
    assert "\n" not in msg and match in msg, msg
    return msg


def test_a_repository_not_in_the_cache_is_one_line_naming_id_revision_and_the_fetch():
    msg = one_line("not in the cache", "owner/tiny-codl")  # a typo
    assert "owner/tiny-codl" in msg and "revision main" in msg and "hf download owner/tiny-codl" in msg
    assert "HF_HUB_OFFLINE" in msg


def test_a_revision_not_in_the_cache_is_one_line():
    msg = one_line("revision 'v9' is not in the cache", "owner/tiny-codi@v9")
    assert "cached: main, v1" in msg and "--revision v9" in msg


def test_a_repository_without_weights_is_one_line():
    msg = one_line("no weights file", "owner/no-weights")
    assert "model.safetensors or pytorch_model.bin" in msg


def test_a_broken_cached_file_is_one_line(hub, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    snap = put_in_cache(cache, "owner/broken", {"pytorch_model.bin": b"x"}, commit_of("broken"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    os.unlink(os.path.realpath(snap / "pytorch_model.bin"))
    one_line("points to a missing blob", "owner/broken")


def test_a_hub_tokenizer_and_a_missing_one(hub):
    model = load_codi("tiny-random-llama", tokenizer="owner/tiny-cyw")
    assert model.tokenizer.convert_tokens_to_ids("<|bocot|>") is not None
    assert model.fingerprint()["hub"]["tokenizer"]["repo_id"] == "owner/tiny-cyw"
    one_line("not in the cache", "tiny-random-llama", tokenizer="owner/none")


def test_local_paths_shipped_names_and_bundled_bases_win_over_hub_ids(hub, tmp_path, monkeypatch):
    # a local folder spelled like a Hub id is the local folder
    local = tmp_path / "owner" / "tiny-codi"
    local.mkdir(parents=True)
    for name, data in folder_files(fixtures_dir() / "models" / "codi-tiny-pause").items():
        (local / name).write_bytes(data)
    monkeypatch.chdir(tmp_path)
    assert load_codi("owner/tiny-codi").fingerprint()["hub"] is None
    assert load_codi("codi-tiny-arith").fingerprint()["hub"] is None
    # a bundled base name is its bundled config, offline, with no cache entry
    for name in ("gpt2", "meta-llama/Llama-3.2-1B-Instruct"):
        assert local_base(name) == (name, None) and bundled_base_config(name)["model_type"] in ("gpt2", "llama")
    assert local_base("owner/tiny-llama-base")[1].commit == commit_of("base")


def test_only_the_files_the_role_needs(hub):
    listing = ["model.safetensors", "pytorch_model.bin", "training_args.bin", "config.json", "README.md",
               "tokenizer.json", "codi_config.json", "optimizer.pt"]
    ref = HubRef("o/n")
    assert wanted_files(ref, "model", listing, "0" * 40) == ["model.safetensors", "codi_config.json", "config.json",
                                                            "tokenizer.json"]
    assert wanted_files(ref, "base", listing, "0" * 40) == ["config.json", "tokenizer.json"]
    assert wanted_files(ref, "tokenizer", listing, "0" * 40) == ["tokenizer.json"]
    snap = resolve(HubRef("owner/tiny-cyw"), "model")
    assert snap.commit == commit_of("cyw") and (snap.path / "training_args.bin").exists()  # there, never read
    no_trap_fired(hub)


def test_online_download_asks_only_for_the_needed_files(monkeypatch, tmp_path):
    """Online, the repository listing decides the files and snapshot_download fetches only those."""
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    asked = {}

    class Info:
        sha = commit_of("online")
        siblings = [type("S", (), {"rfilename": n})() for n in
                    ("pytorch_model.bin", "model.safetensors", "training_args.bin", "tokenizer_config.json", "vocab.json")]

    class Api:
        def model_info(self, repo_id, revision=None):
            asked["info"] = (repo_id, revision)
            return Info()

    def snapshot_download(repo_id, *, revision, allow_patterns, cache_dir):
        asked["download"] = (repo_id, revision, list(allow_patterns), cache_dir)
        folder = tmp_path / "snapshots" / Info.sha
        folder.mkdir(parents=True)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    snap = resolve(HubRef("owner/online", "v2"), "model")
    assert asked["info"] == ("owner/online", "v2")
    assert asked["download"][:3] == ("owner/online", "v2", ["model.safetensors", "tokenizer_config.json", "vocab.json"])
    assert snap.commit == Info.sha and snap.revision == "v2"


@pytest.mark.parametrize(("error", "message"), [
    ("RepositoryNotFoundError", "owner/typo: not a local path, and no such repository on the Hugging Face Hub"),
    ("RevisionNotFoundError", "owner/typo: no revision 'main' on the Hugging Face Hub"),
    ("GatedRepoError", "owner/typo: a gated repository; accept its licence"),
])
def test_online_errors_are_one_line(error, message, monkeypatch):
    import huggingface_hub
    import huggingface_hub.errors

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    cls = getattr(huggingface_hub.errors, error)

    class Api:
        def model_info(self, *a, **k):
            raise cls.__new__(cls)  # as the Hub answers; built without an HTTP response

    monkeypatch.setattr(huggingface_hub, "HfApi", Api)
    with pytest.raises(HubError) as info:
        resolve(HubRef("owner/typo"), "model")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_no_network_falls_back_to_the_cache(hub, monkeypatch):
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")

    class Down:
        def model_info(self, *a, **k):
            raise ConnectionError("Name or service not known")

    monkeypatch.setattr(huggingface_hub, "HfApi", Down)
    assert resolve(HubRef("owner/tiny-codi"), "model").commit == commit_of("main")
    with pytest.raises(HubError, match="the Hub cannot be reached .ConnectionError: Name or service not known"):
        resolve(HubRef("owner/absent"), "model")


def _env(hub) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODI_", "HF_", "PYTEST_"))}
    return {**env, "PYTHONPATH": str(ROOT), "HF_HUB_CACHE": str(hub["cache"]), "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1"}


def test_cli_run_by_hub_id_and_its_errors(hub, by_path, capfd):
    """In process (the environment is this test's); tests/test_cli.py runs the command as a subprocess."""
    capfd.readouterr()
    assert main(["run", "owner/tiny-codi", "--json", "--max-new-tokens", "8",
                 *(a for q in QUESTIONS for a in ("--question", q))]) == 0
    stdout, stderr = capfd.readouterr()
    # loading prints nothing; the only line is the run's own note on words the word-level tokenizer lacks
    assert [l for l in stderr.splitlines() if "the tokenizer does not know" not in l] == []
    out = json.loads(stdout)
    assert out["model"]["hub"]["model"] == {"repo_id": "owner/tiny-codi", "revision": "main", "commit": commit_of("main")}
    assert out["model"]["sha256"] == by_path("codi-tiny-arith")["sha256"]
    assert [r["answer_token_ids"] for r in out["results"]] == by_path("codi-tiny-arith")["tokens"]
    assert main(["info", "owner/tiny-codi@v1"]) == 0
    assert f"hub model      owner/tiny-codi revision v1 commit {commit_of('v1')}" in capfd.readouterr().out
    for spec, message in (("owner/tiny-codi@v9", "owner/tiny-codi: revision 'v9' is not in the cache"),
                          ("owner/tiny-codl", "Hub repository owner/tiny-codl (revision main) is not in the cache")):
        assert main(["info", spec]) == 2
        out, err = capfd.readouterr()
        assert out == "" and err.count("\n") == 1 and message in err, err
    no_trap_fired(hub)


def test_pytest_catalogue_by_hub_id(hub, by_path, tmp_path):
    """The installed catalogue's invariants (``--pyargs codi_probe.hypotheses``) on ``--codi-model owner/tiny-codi``
    (three of them, to keep this fast) in a subprocess from an empty directory: the report names the repository
    and commit and holds the weights the path loads."""
    args = [sys.executable, "-m", "pytest", "--pyargs", "codi_probe.hypotheses", "-m", "invariant", "-p", "no:cacheprovider",
            "-q", "-k", "exactly_six_fed_latents or lora_scaling_and_prj or adapters_and_prj_are_loaded"]
    run = subprocess.run([*args, "--codi-model", "owner/tiny-codi", "--codi-report", str(tmp_path / "r.json")],
                         capture_output=True, text=True, env=_env(hub), timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["model"]["name"] == "owner/tiny-codi"
    assert report["model"]["hub"]["model"] == {"repo_id": "owner/tiny-codi", "revision": "main", "commit": commit_of("main")}
    assert report["model"]["sha256"] == by_path("codi-tiny-arith")["sha256"]
    assert len(report["claims"]) == 3 and all(c["outcome"] == "passed" for c in report["claims"])
    no_trap_fired(hub)


def test_pytest_with_a_repository_not_in_the_cache_is_one_line_and_exit_4(pytester):
    pytester.makepyfile(test_m="def test_m(codi_model):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--codi-model=owner/absent")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [line for line in result.outlines + result.errlines if "cannot load model" in line]
    assert len(lines) == 1 and "owner/absent (revision main) is not in the cache" in lines[0], result.outlines
    assert not any("Traceback" in line for line in result.outlines + result.errlines)
