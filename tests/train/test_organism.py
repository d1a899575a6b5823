"""The shipped organism: load it with ``load_codi`` and re-measure, with the suite's engine, every bar its
model card claims on the held-out problems (combinations never seen in training)."""

import json
from pathlib import Path

import pytest

from codi_probe.data.loaders import fixtures_dir

MODEL_DIR = fixtures_dir() / "models" / "codi-tiny-arith"
BARS = {"accuracy": 0.90, "zero_drop_pp": 40.0, "lens_step12_any": 0.60}


@pytest.fixture(scope="module")
def shipped():
    return json.loads((MODEL_DIR / "metrics.json").read_text())


@pytest.fixture(scope="module")
def measured():
    import torch

    from codi_probe.loading import load_codi
    from codi_probe.train.data import organism_split
    from codi_probe.train.evaluate import measure_bars

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = load_codi(str(MODEL_DIR))
    assert model.config.tokenizer == "codi-tiny-arith"  # (problems="cyw" is in the sidecar; load_codi drops it)
    return measure_bars(model, list(organism_split().heldout))


def test_shipped_files_and_size():
    names = {p.name for p in MODEL_DIR.iterdir()}
    assert {"pytorch_model.bin", "codi_config.json", "MODEL_CARD.md", "metrics.json"} <= names
    assert sum(p.stat().st_size for p in MODEL_DIR.rglob("*") if p.is_file()) < 20e6


def test_measurement_reproduces_the_card(measured, shipped):
    want = shipped["bars"]
    assert measured["n"] == want["n"] == 1000
    for key in ("accuracy", "accuracy_zero_latents", "lens_step12_any", "lens_any_layer_step12_any"):
        assert measured[key] == pytest.approx(want[key], abs=0.002), key  # deterministic up to 2 problems


@pytest.mark.parametrize("bar", sorted(BARS))
def test_bar(measured, shipped, bar):
    claimed = shipped["bars"]["bars"][bar]["met"]
    card = (MODEL_DIR / "MODEL_CARD.md").read_text()
    if not claimed:  # the card must say so, visibly, and the measured figure must stay below the bar
        assert "**no**" in card
        assert measured[bar] < BARS[bar]
        pytest.xfail(f"{bar}: the model card reports this bar as not met ({measured[bar]:.3f} < {BARS[bar]})")
    assert measured[bar] >= BARS[bar]
