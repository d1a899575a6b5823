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
    assert len([k for k in pause if k.startswith("CARRY-")]) == 36  # three claims, both intermediates, P1..P6
    assert pause["CARRY-DIRECT[step2@P5]"].verdicts == ("refuted",)
    assert pause["CARRY-DECODE[step1@P3]"].verdicts == ("refuted",)


def test_an_unplanted_model_decides_nothing() -> None:
    assert planted_truths(Design()) == {}


def test_an_exclusive_map_decides_the_direct_effect_at_all_twelve_sites() -> None:
    """step 1 in e_3, step 2 in e_5 (M-CYW): CARRY-DIRECT supported at exactly the two carriers and refuted at
    the other ten sites (the other intermediate's carrier included); CARRY-PATCH likewise; CARRY-DECODE only
    at the carriers. Adjacent carriers with step 1 at P1 are allowed."""
    truths = planted_truths(Design("planted", {"step1": 3, "step2": 5}, exclusive=True))
    direct = {k: t.verdicts for k, t in truths.items() if k.startswith("CARRY-DIRECT[")}
    assert len(direct) == 12
    assert sorted(k for k, v in direct.items() if v == ("supported",)) == ["CARRY-DIRECT[step1@P3]",
                                                                           "CARRY-DIRECT[step2@P5]"]
    assert all(v == ("refuted",) for k, v in direct.items() if k not in ("CARRY-DIRECT[step1@P3]",
                                                                           "CARRY-DIRECT[step2@P5]"))
    patch = {k: t.verdicts for k, t in truths.items() if k.startswith("CARRY-PATCH[")}
    assert len(patch) == 12 and sum(v == ("supported",) for v in patch.values()) == 2
    assert sorted(k for k in truths if k.startswith("CARRY-DECODE[")) == ["CARRY-DECODE[step1@P3]",
                                                                         "CARRY-DECODE[step2@P5]"]
    assert "carries step1, not step2" in truths["CARRY-DIRECT[step2@P3]"].why
    adjacent = planted_truths(Design("planted", {"step1": 1, "step2": 2}, exclusive=True))
    assert [k for k, t in adjacent.items() if k.startswith("CARRY-DIRECT[") and t.verdicts == ("supported",)] == \
        ["CARRY-DIRECT[step1@P1]", "CARRY-DIRECT[step2@P2]"]


def test_a_non_exclusive_map_leaves_the_direct_effect_undecided() -> None:
    assert not [k for k in planted_truths(Design("planted", {"step1": 2, "step2": 4})) if k.startswith("CARRY-DIRECT")]


def test_exclusive_survives_the_sidecar_round_trip() -> None:
    d = Design("planted", {"step1": 3, "step2": 5}, exclusive=True)
    assert Design.from_json(d.to_json()) == d and "exclusive" in d.describe()
    assert "exclusive" not in Design("planted", {"step1": 2}).to_json()  # old sidecars read and write unchanged
