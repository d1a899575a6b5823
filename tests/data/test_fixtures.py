"""Pinned content of every shipped data file, with its license and source notes."""

import hashlib

import pytest

from codi_probe.data.loaders import fixtures_dir

PINNED = {
    "gsm8k/LICENSE-GSM8K.txt": "86bbb73e855821d7c401912fd4bf82e34313e6e3b6fd6f909f2b6cc9e209a53b",
    "gsm8k/SOURCE.txt": "7dcf1b6950559eff4b66d843fdc091afbb5e2a982636f669d51ad53e394cdeed",
    "gsm8k/test.jsonl": "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
    "gsm8k/train.jsonl": "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465",
    "gsm8k_aug/LICENSE-GSM8K.txt": "86bbb73e855821d7c401912fd4bf82e34313e6e3b6fd6f909f2b6cc9e209a53b",
    "gsm8k_aug/LICENSE-Internalize_CoT_Step_by_Step.txt": (
        "fe3e4d2d64d526c7cf0baf1b08f474d8f4f9cad7f7f5570230c6534edbcadac7"
    ),
    "gsm8k_aug/SOURCE.txt": "fb144c8a35618664bfd3c91f601510dbe680c70e4295384b424a2b8860fcba70",
    "gsm8k_aug/test.txt": "e464efa2713fbcf423bdbfb482c543a6a086188c3d97c294b1d19a70c2a515e8",
    "gsm8k_aug/valid.txt": "04f9bddfe8ac4846571b1e2b612b289c95770b5012fdb34cc36a597b041afb87",
    "pairs/LICENSE-GSM8K.txt": "86bbb73e855821d7c401912fd4bf82e34313e6e3b6fd6f909f2b6cc9e209a53b",
    "pairs/SOURCE.txt": "bc602e5f14f530e06583f3732d0a0bca20ba9cc45a5c7d54f4ba559b0680ab5b",
    "pairs/gsm8k_test_pairs.json": "4e238f159762c5ee4273b516850d67970e7d6e74edff7b77bcca5e863cf93d4b",
}
DATA = fixtures_dir() / "data"


@pytest.mark.parametrize(("name", "digest"), sorted(PINNED.items()))
def test_shipped_file_sha256(name, digest):
    assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest


def test_no_unpinned_data_files():
    shipped = {p.relative_to(DATA).as_posix() for p in DATA.rglob("*") if p.is_file()}
    assert shipped == set(PINNED)


@pytest.mark.parametrize("folder", ["gsm8k", "gsm8k_aug", "pairs"])
def test_every_data_folder_has_license_and_source(folder):
    names = {p.name for p in (DATA / folder).iterdir()}
    assert "SOURCE.txt" in names and any(n.startswith("LICENSE") for n in names)


def test_upstream_hashes_match_source_notes():
    for folder, files in [("gsm8k", ["train.jsonl", "test.jsonl"]), ("gsm8k_aug", ["test.txt", "valid.txt"])]:
        notes = (DATA / folder / "SOURCE.txt").read_text()
        for name in files:
            assert PINNED[f"{folder}/{name}"] in notes
