"""codi_probe.design: carrier maps, their validation, counterfactual answers and the stored design."""

from __future__ import annotations

import json

import pytest

from codi_probe.data.templates import cyw_problem
from codi_probe.design import Design, counterfactual_answer, design_for_spec, implied_answer, parse_carriers


def test_parse_carriers() -> None:
    assert parse_carriers("step1=P2,step2=P4") == {"step1": 2, "step2": 4}
    assert parse_carriers(" step2 = p6 ") == {"step2": 6}


@pytest.mark.parametrize(("text", "problem"), [
    ("step1=P0", "fed latent position P1..P6"), ("step1=P7", "P1..P6"), ("step3=P2", "unknown intermediate"),
    ("step1=P4,step2=P2", "earlier position"), ("step1=P2,step2=P2", "share one position"),
    ("step1", "NAME=POSITION"), ("step1=P2,step1=P3", "given twice"), ("", "no carrier"),
])
def test_bad_carrier_maps_are_one_line_errors(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_carriers(text)


def test_design_round_trip_and_rules() -> None:
    d = Design("planted", {"step1": 3, "step2": 5}, "x")
    assert Design.from_json(json.loads(json.dumps(d.to_json()))) == d
    assert d.describe() == "planted: step1 in e_3 (P3), step2 in e_5 (P5)"
    with pytest.raises(ValueError, match="plants no carriers"):
        Design("pause", {"step1": 2})
    with pytest.raises(ValueError, match="needs at least one carrier"):
        Design("planted")
    with pytest.raises(ValueError, match="unknown design mechanism"):
        Design("magic")


def test_counterfactual_answers_follow_the_cyw_chain() -> None:
    p = cyw_problem(0, "addition", 3, 5, 2)  # step1 8, step2 16, answer 24
    assert implied_answer(p, "step1", 8) == p.answer  # the own value implies the own answer
    assert implied_answer(p, "step2", 16) == p.answer
    assert implied_answer(p, "step1", 4) == 4 + 4 * 2  # a set step 1 is carried into step 2
    assert implied_answer(p, "step2", 10) == 8 + 10  # a set step 2 leaves step 1
    assert counterfactual_answer(8, 2, step1_value=4, step2_value=10) == 14  # both set


def test_design_for_spec(tmp_path) -> None:
    assert design_for_spec("tiny-random-gpt2").mechanism == "random"
    assert design_for_spec("codi-tiny-arith").mechanism == "not planted"
    assert design_for_spec(str(tmp_path / "nothing-here")).mechanism == "not planted"
    (tmp_path / "codi_config.json").write_text(json.dumps({"design": {"mechanism": "pause"}}))
    assert design_for_spec(str(tmp_path)).mechanism == "pause"
    assert design_for_spec(str(tmp_path / "pytorch_model.bin")).mechanism == "pause"  # a file: its sidecar
    (tmp_path / "codi_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable codi_config.json"):
        design_for_spec(str(tmp_path))



def test_the_echo_surface_is_a_question_word() -> None:
    from codi_probe.data.templates import cyw_problem
    from codi_probe.design import ECHO_SURFACE, surface_word

    add, sub = cyw_problem(1, "addition", 7, 2, 5), cyw_problem(2, "subtraction", 7, 2, 5)
    assert [surface_word(add, s) for s in ECHO_SURFACE.values()] == ["7", "hire", "2", "5", "7", "hire"]
    assert surface_word(sub, "op") == "transfer"  # "transfer out": the verb's first word
    with pytest.raises(ValueError, match="unknown echo slot"):
        surface_word(add, "W")
    assert Design.from_json(Design("echo").to_json()) == Design("echo")
