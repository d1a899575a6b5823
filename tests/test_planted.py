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


MCYW = Design("planted", {"step1": 3, "step2": 5}, exclusive=True)  # M-CYW: step 1 in e_3, step 2 in e_5
ADJACENT = Design("planted", {"step1": 1, "step2": 2}, exclusive=True)


def _published(truths: dict) -> dict:
    return {k: t.verdicts for k, t in truths.items() if not k.startswith("CARRY-")}


def test_an_exclusive_map_decides_patch01_at_the_fed_latent_it_overwrites() -> None:
    """PATCH-01[Pk] overwrites e_k: on M-CYW P3 and P5 are the carriers (never refuted: supported once n
    reaches the claim's minimum), every other fed position is inert (never supported); P2, whose output
    h_2 feeds the carrier e_3, is an inert fed latent for this claim. The adjacent map moves both."""
    truths = planted_truths(MCYW)
    patch01 = {k: t.verdicts for k, t in truths.items() if k.startswith("PATCH-01[")}
    assert sorted(patch01) == [f"PATCH-01[P{k}]" for k in range(1, 7)]
    carriers = sorted(k for k, v in patch01.items() if "supported" in v)
    assert carriers == ["PATCH-01[P3]", "PATCH-01[P5]"]
    assert all("refuted" not in patch01[k] for k in carriers)
    assert all(v == ("inconclusive", "refuted") for k, v in patch01.items() if k not in carriers)
    assert "e_3 carries step1" in truths["PATCH-01[P3]"].why and "e_2 is no carrier" in truths["PATCH-01[P2]"].why
    adjacent = planted_truths(ADJACENT)
    assert sorted(k for k, t in adjacent.items() if k.startswith("PATCH-01[") and "supported" in t.verdicts) == \
        ["PATCH-01[P1]", "PATCH-01[P2]"]


def test_an_exclusive_map_never_supports_patch02_off_the_step2_carrier() -> None:
    """PATCH-02 is decided (never supported) at every fed latent but the step-2 carrier, whose random-direction
    control no design fixes, so PATCH-02[P5] on M-CYW stays undecided."""
    for design, step2 in ((MCYW, 5), (ADJACENT, 2)):
        truths = planted_truths(design)
        patch02 = {k: t for k, t in truths.items() if k.startswith("PATCH-02[")}
        assert sorted(patch02) == [f"PATCH-02[P{k}]" for k in range(1, 7) if k != step2]
        assert all("supported" not in t.verdicts and t.content for t in patch02.values())
    assert "read as a step1 value" in planted_truths(MCYW)["PATCH-02[P3]"].why


def test_an_exclusive_map_refutes_the_transplant_only_with_both_carriers() -> None:
    """PATCH-06 (a six-latent transplant gives the donor's answer for < 5%) is refuted when both intermediates
    are carried (the transplant sets both carriers to the donor's values); with one carrier the other
    intermediate follows the base question, so it is not decided. On the pause control it is supported."""
    assert planted_truths(MCYW)["PATCH-06"].verdicts == ("refuted",)
    assert planted_truths(ADJACENT)["PATCH-06"].verdicts == ("refuted",)
    assert "PATCH-06" not in planted_truths(Design("planted", {"step1": 3}, exclusive=True))
    assert planted_truths(Design("pause"))["PATCH-06"].verdicts == ("supported",)


def test_an_exclusive_map_leaves_claims_on_untrained_interventions_undecided() -> None:
    """Zero, noise and residual corruption (IMP-*), the lens (LENS-*), latent removal (ACC-04), residual
    donor patches (LAY-08) and random vectors (NEW-05, PATCH-04, IMP-13) are interventions no twin made."""
    published = _published(planted_truths(MCYW))
    assert not [k for k in published if k.split("[")[0] in (
        "IMP-01", "IMP-02", "IMP-03", "IMP-05", "IMP-09", "IMP-11", "IMP-13", "LENS-02", "LENS-10", "ACC-04",
        "LAY-08", "NEW-05", "PATCH-04")]
    assert sorted({k.split("[")[0] for k in published}) == ["NEW-08", "PATCH-01", "PATCH-02", "PATCH-06"]
    # every published claim it decides has a supported-allowing and a never-supported entry, or both signs
    # across the designs (PATCH-02: never supported on the exclusive maps, refuted on the pause control;
    # PATCH-06: refuted here, supported on the pause control)
    assert {"supported"} <= {v for k, vs in published.items() if k.startswith("PATCH-01[") for v in vs}


def test_a_non_exclusive_map_decides_no_published_position_claim() -> None:
    """Without --exclusive a copy of a value may sit anywhere: PATCH-01/02/06 stay undecided (only NEW-08)."""
    assert sorted(_published(planted_truths(Design("planted", {"step1": 2, "step2": 4})))) == ["NEW-08"]


def test_the_echo_control_decides_inertness_and_forbids_content() -> None:
    """Echo: every fed latent inert (CARRY-PATCH and CARRY-DIRECT refuted at all 12 sites, the whole
    transplant PATCH-06 supported); no content claim may be supported; the lens and residual claims,
    which read h_k, are left undecided."""
    truths = planted_truths(Design("echo"))
    assert all(t.why.startswith("echo control:") or k == "OP-02" for k, t in truths.items())
    for claim in ("CARRY-PATCH", "CARRY-DIRECT"):
        assert [k for k, t in truths.items() if k.startswith(claim) and t.verdicts == ("refuted",)] == \
            [f"{claim}[{s}@P{k}]" for s in ("step1", "step2") for k in range(1, 7)]
    assert all("supported" not in truths[f"CARRY-DECODE[{s}@P{k}]"].verdicts
               for s in ("step1", "step2") for k in range(1, 7))
    assert truths["PATCH-06"].verdicts == ("supported",) and not truths["PATCH-06"].content
    assert all("supported" not in t.verdicts for t in truths.values() if t.content)
    assert {"OP-01", "OP-02", "OP-04", "NEW-09"} <= set(truths)
    assert not any(k.startswith(("LENS-", "IMP-", "PROBE-")) or k in ("NEW-08", "ACC-04") for k in truths)
