"""codi_probe.train.card: the model card renders every value (no f-string placeholder survives)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from codi_probe.train.card import write_model_card

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"
# braces the card means literally: the operation set of the template family
LITERAL = "{addition, subtraction}"


@pytest.mark.parametrize("name", ["codi-tiny-arith", "codi-tiny-pause"])
def test_no_placeholder_survives(tmp_path: Path, name: str) -> None:
    """Issue 32 item 11: ``PAD/BOT/EOT = {info['vocab_size']}/...`` and ``stage 1 {}`` were printed as is."""
    shutil.copy(MODELS / name / "metrics.json", tmp_path / "metrics.json")
    text = write_model_card(tmp_path).read_text().replace(LITERAL, "")
    assert re.findall(r"\{[^}]*\}", text) == []
    vocab = 291
    assert f"PAD/BOT/EOT = {vocab}/{vocab + 1}/{vocab + 2}." in text
    if name == "codi-tiny-pause":  # stage 1 copied from codi-tiny-arith: no stage-1 losses
        assert "stage 1 not rerun (base copied); stage 2 loss 0.01712, ce_student" in text


def test_the_shipped_cards_carry_no_placeholder() -> None:
    for card in MODELS.glob("*/MODEL_CARD.md"):
        assert re.findall(r"\{[^}]*\}", card.read_text().replace(LITERAL, "")) == [], card


def test_an_exclusive_card_names_its_recipe_and_the_direct_effect(tmp_path: Path) -> None:
    """The reproduce command carries --exclusive, the recipe says what the exclusive twins do, and a
    design measured with the direct effect gets its columns (older metrics keep theirs)."""
    import json

    info = json.loads((MODELS / "codi-tiny-planted" / "metrics.json").read_text())
    info["recipe"] |= {"exclusive": True}
    ev = info["design_evidence"]
    ev["donor_direct"] = {name: {pos: 0.0 for pos in ev["donor"][name]} for name in ev["donor"]}
    text = write_model_card(tmp_path, info).read_text()
    assert "--carriers step1=P2,step2=P4 --exclusive --card" in text and "**Exclusive map**" in text
    assert "| position | step 1 probe | step 1 donor patch (total) | step 1 donor patch (direct) |" in text
    old = write_model_card(tmp_path, json.loads((MODELS / "codi-tiny-planted" / "metrics.json").read_text())).read_text()
    assert "--exclusive" not in old and "donor patch (direct)" not in old


@pytest.mark.parametrize("name", sorted(p.name for p in MODELS.iterdir() if (p / "metrics.json").is_file()))
def test_the_card_command_rebuilds_the_recipe(name: str) -> None:
    """The card's one command, parsed by `codi-probe train`'s own parser, asks for exactly the recipe the
    shipped weights were trained with (it once dropped --codi-steps and --name)."""
    import argparse
    import json
    import shlex
    from dataclasses import asdict

    from codi_probe.train.card import reproduce_command
    from codi_probe.train.cli import add_train_arguments, recipe_from_args

    recipe = json.loads((MODELS / name / "metrics.json").read_text())["recipe"]
    command = reproduce_command(recipe)
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(shlex.split(command)[2:])
    rebuilt = asdict(recipe_from_args(args))
    assert {k: v for k, v in rebuilt.items() if k in recipe} == recipe, command
    assert command in (MODELS / name / "MODEL_CARD.md").read_text()
