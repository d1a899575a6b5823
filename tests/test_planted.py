"""codi_probe.planted: what each design decides, with a reason for every entry."""

from __future__ import annotations

from codi_probe.design import Design
from codi_probe.planted import planted_truths


def test_planted_carriers_are_pinned_supported_and_nothing_else() -> None:
    truths = planted_truths(Design("planted", {"step1": 2, "step2": 4}))
    assert sorted(truths) == ["CARRY-DECODE[step1@P2]", "CARRY-DECODE[step2@P4]", "CARRY-PATCH[step1@P2]",
                              "CARRY-PATCH[step2@P4]", "NEW-08"]
    assert all(t.why.startswith("planted:") for t in truths.values())
    assert all(t.verdicts == ("supported",) for k, t in truths.items() if k.startswith("CARRY-"))
    # the carriers' values are what the answer follows: setting every fed latent to its mean cannot keep accuracy
    assert "supported" not in truths["NEW-08"].verdicts and not truths["NEW-08"].content
    other = planted_truths(Design("planted", {"step1": 1}))
    assert sorted(other) == ["CARRY-DECODE[step1@P1]", "CARRY-PATCH[step1@P1]", "NEW-08"]


def test_controls_never_allow_supported() -> None:
    for mechanism in ("pause", "random"):
        truths = planted_truths(Design(mechanism))
        assert truths and all(t.why for t in truths.values())
        assert all("supported" not in t.verdicts for t in truths.values() if t.content)
    # the claims a control may support: "content does not matter" (NEW-08), "a transplant transfers nothing"
    # (PATCH-06) and "steering does nothing" (NEW-05), true by construction on the pause control
    assert sorted(k for k, t in planted_truths(Design("pause")).items() if "supported" in t.verdicts) == \
        ["NEW-05", "NEW-08", "PATCH-06"]
    assert all("supported" not in t.verdicts for t in planted_truths(Design("random")).values())
    pause = planted_truths(Design("pause"))
    assert len([k for k in pause if k.startswith("CARRY-")]) == 24  # every intermediate at every fed position
    assert pause["CARRY-DECODE[step1@P3]"].verdicts == ("refuted",)


def test_an_unplanted_model_decides_nothing() -> None:
    assert planted_truths(Design()) == {}
