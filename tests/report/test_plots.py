"""Every panel renders from the fixture; absent or malformed data becomes a visible note, never a crash."""

import pytest

pytest.importorskip("matplotlib")

from codi_probe.report.details import REQUESTED
from codi_probe.report.plots import PANELS, build_panels

PNG = b"\x89PNG\r\n\x1a\n"


# the panels that read each requested key
READERS = {"method_position": ("importance", "method-position"), "top_heads": ("top-heads",),
           "scatter": ("attention-importance",), "lens_grid": ("logit-lens",), "recovery_ci": ("layer-recovery",),
           "accuracy_ci": ("accuracy-iterations",)}


def _by_slug(report, only=None):
    return {p.slug: p for p in build_panels(report, only)}


def test_every_panel_renders_from_the_fixture(report):
    panels = build_panels(report)
    assert [p.slug for p in panels] == [slug for slug, *_ in PANELS]
    for panel in panels:
        assert panel.note is None, (panel.slug, panel.note)
        assert panel.png.startswith(PNG) and len(panel.png) > 5000, panel.slug


@pytest.mark.parametrize("name", list(REQUESTED))
def test_a_missing_requested_key_is_a_note(report, name):
    base_id, key, _shape = REQUESTED[name]
    for claim in report["claims"]:
        if claim["base_id"] == base_id or (name == "lens_grid" and claim["base_id"] == "LENS-02"):
            claim["details"].pop(key, None)
    assert set(READERS) == set(REQUESTED)
    notes = [p.note for p in build_panels(report, READERS[name]) if p.note]
    assert any(f"not in this report: needs {base_id}.details.{key}" in n for n in notes), notes


def test_fallbacks_use_the_keys_the_claims_carry_today(report):
    for claim in report["claims"]:
        for name in REQUESTED.values():
            claim["details"].pop(name[1], None)
    panels = _by_slug(report)
    for slug in ("importance", "layer-recovery", "logit-lens", "accuracy-iterations", "noise-sweep"):
        assert panels[slug].png is not None, slug
    for slug in ("method-position", "top-heads", "attention-importance"):
        assert panels[slug].png is None and panels[slug].note.startswith("not in this report"), slug


def test_a_report_without_details_or_claims_still_builds(report):
    for claim in report["claims"]:
        claim["details"] = {}
    assert all(p.png is None and p.note for p in build_panels(report))
    assert all(p.note for p in build_panels({"claims": []}))


def test_malformed_details_are_reported_on_the_panel(report, claim_of):
    claim_of(report, "IMP-01[P0]")["details"]["failure_by_method_position"]["values"] = [[1.0, 2.0]]
    claim_of(report, "FLOW-01")["details"]["latent_attention_top_heads"] = [{"layer": 1}]
    claim_of(report, "ACC-03")["details"]["accuracy_by_iterations"] = "broken"
    panels = _by_slug(report, ("method-position", "top-heads", "accuracy-iterations", "layer-recovery"))
    for slug in ("method-position", "top-heads", "accuracy-iterations"):
        assert panels[slug].png is None and panels[slug].note.startswith("could not render"), slug
    assert panels["layer-recovery"].png is not None


def _default_run() -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "data" / "default_run_claims.json").read_text())


def test_the_plots_of_a_fresh_default_run_render():
    """Issue 32 item 4: on the default model "Layer-wise patching recovery" read
    ``LAY-01.details.mean_recovery_by_layer`` (the claim records ``pooled_recovery_by_layer``) and "Damage
    against noise scale" failed with KeyError 'change_rate' (COR-01 generates at the smallest sigma only).
    The claims are those of a fresh default run (tests/report/data/default_run_claims.json)."""
    panels = _by_slug(_default_run(), ("layer-recovery", "noise-sweep", "accuracy-iterations"))
    for slug, panel in panels.items():
        assert panel.png is not None and panel.png.startswith(PNG), (slug, panel.note)
        assert not (panel.note or "").startswith("could not render"), slug


def test_every_promised_plot_renders_or_names_the_missing_claim_field():
    """No plot is dropped silently: each of the eight renders, or its note names the claim field it needs."""
    import re

    panels = build_panels(_default_run())
    assert [p.slug for p in panels] == [slug for slug, *_ in PANELS]
    for panel in panels:
        assert panel.png is not None or re.match(r"not in this report: needs [A-Z]+-\d+\.details\.\w+", panel.note), \
            (panel.slug, panel.note)
