"""Interventions: identity controls, positive/null controls per site, hook hygiene, properties."""

import dataclasses

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codi_probe.engine import (Add, Intervention, Mean, Noise, Patch, Record, Scale, Set, Shuffle, Zero,
                               knockout)
from codi_probe.engine.positions import FED_POSITIONS, TRACE_POSITIONS, live_positions
from codi_probe.tolerance import tolerance

ALL_SITES = ("resid_post", "attn_out", "mlp_out")
REC = Record(sites=ALL_SITES)
Q = ["What is 7 plus 8?", "A team starts with 3 members. They recruit 5 new members. How many now?"]


def same_outputs(a, b) -> bool:
    return torch.equal(a.latent_pre, b.latent_pre) and all(
        torch.equal(x, y) for x, y in zip(a.answer_logits, b.answer_logits))


@pytest.fixture(scope="module")
def clean(engine):
    return engine.run(Q, record=REC, max_new_tokens=4)


def run_row0(engine, ivs):
    return engine.run(Q, variants=[(0, ivs), (1, ())], record=REC, max_new_tokens=4)


def test_identity_and_self_patch_are_bit_identical_at_every_layer_and_position(engine, clean):
    n = engine.model.n_layers
    self_patch = [Intervention(site, live_positions(l, TRACE_POSITIONS, n), Patch(clean, 0), layer=l)
                  for site in ALL_SITES for l in range(n)]
    self_patch += [Intervention(s, FED_POSITIONS, Patch(clean, 0)) for s in ("latent_pre_prj", "latent_post_prj")]
    patched = run_row0(engine, self_patch)
    assert same_outputs(patched, clean)
    identity = [Intervention(site, live_positions(l, TRACE_POSITIONS, n), layer=l) for site in ALL_SITES
                for l in range(n)]
    assert same_outputs(run_row0(engine, identity), clean)


NULL_OPS = [Scale(1.0), Add(torch.zeros(1)), Noise(0.0)]


@pytest.mark.parametrize("site", [*ALL_SITES, "latent_pre_prj", "latent_post_prj"])
def test_every_site_has_a_positive_and_a_null_control(engine, clean, site):
    layer = 1 if site in ALL_SITES else None
    # positive: zeroing P3 changes h_3 (and what follows) of row 0 only, never earlier positions
    hit = run_row0(engine, [Intervention(site, ("P3",), Zero(), layer=layer)])
    assert (hit.latent_pre[0, 3:] - clean.latent_pre[0, 3:]).abs().max() > 1e-3
    assert torch.equal(hit.latent_pre[0, :3], clean.latent_pre[0, :3])
    assert torch.equal(hit.latent_pre[1], clean.latent_pre[1])
    assert not torch.equal(hit.answer_logits[0], clean.answer_logits[0])
    for op in NULL_OPS:
        assert same_outputs(run_row0(engine, [Intervention(site, ("P3",), op, layer=layer)]), clean)


def test_attention_knockout_controls(engine, clean):
    hit = run_row0(engine, [knockout(FED_POSITIONS, "P0")])
    assert (hit.latent_pre[0, 1:] - clean.latent_pre[0, 1:]).abs().max() > 1e-3
    assert torch.equal(hit.latent_pre[0, 0], clean.latent_pre[0, 0])
    # null: a query cannot see a later key anyway, so blocking it changes nothing (causal mask)
    assert same_outputs(run_row0(engine, [knockout(("P1",), "P6")]), clean)
    answer = run_row0(engine, [knockout("EOT", "Q")])
    assert torch.equal(answer.latent_pre, clean.latent_pre)
    assert not torch.equal(answer.answer_logits[0], clean.answer_logits[0])


def test_other_kinds_change_the_run(engine, clean):
    d = engine.model.d_model
    ramp = torch.linspace(-1, 1, d)  # not a constant: LayerNorm removes a uniform shift exactly
    kinds = [Noise(1.0), Noise(0.5, relative=True), Scale(0.0), Add(ramp), Set(ramp),
             Mean(clean), Patch(clean, 1), Shuffle(clean, 0, {"P3": "P5", "P5": "P3"})]
    for op in kinds:
        out = run_row0(engine, [Intervention("resid_post", ("P3", "P5"), op, layer=2)])
        assert (out.latent_pre[0, 3:] - clean.latent_pre[0, 3:]).abs().max() > 1e-4, op
        assert torch.equal(out.latent_pre[0, :3], clean.latent_pre[0, :3]), op


def test_recorded_value_is_what_the_forward_used(engine, clean):
    """F-08/F-14: the edit happens inside the forward pass; the trace records the edited value."""
    out = run_row0(engine, [Intervention("resid_post", ("P2",), Zero(), layer=1)])
    assert torch.count_nonzero(out.resid(1)[0, 2]) == 0
    assert torch.count_nonzero(out.resid(2)[0, 2]) > 0


def test_patch_one_layer_off_is_caught(engine, clean):
    """F-02 planted bug: writing hidden_states[L] (block L-1's output) into block L's output is no
    identity; the correct address is."""
    good = run_row0(engine, [Intervention("resid_post", ("P3",), Patch(clean, 0), layer=2)])
    src = {p: clean.resid(1)[0, i] for i, p in enumerate(TRACE_POSITIONS)}
    off = run_row0(engine, [Intervention("resid_post", ("P3",), Set(src), layer=2)])
    assert same_outputs(good, clean) and not same_outputs(off, clean)


def test_hooks_are_removed_even_on_error_and_user_hooks_stay(engine):
    model = engine.model
    calls = []
    user = model.blocks[0].register_forward_hook(lambda *a: calls.append(1))
    before = {i: len(b._forward_hooks) for i, b in enumerate(model.blocks)}

    class Boom(Zero):
        def __call__(self, x, **kw):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        engine.run(Q, variants=[(0, [Intervention("resid_post", ("P2",), Boom(), layer=0)])])
    assert {i: len(b._forward_hooks) for i, b in enumerate(model.blocks)} == before
    engine.run(Q[:1], max_new_tokens=1)
    assert calls, "the user's own hook no longer fires"
    user.remove()


def test_invalid_addresses_are_one_line_errors(engine):
    with pytest.raises(ValueError, match="unknown site"):
        Intervention("resid", ("P1",), layer=0)
    with pytest.raises(ValueError, match="unknown position 'P7'"):
        Intervention("resid_post", ("P7",), layer=0)
    with pytest.raises(ValueError, match="fed latents only"):
        Intervention("latent_post_prj", ("P0",))
    with pytest.raises(ValueError, match="needs a layer"):
        Intervention("mlp_out", ("P1",))
    with pytest.raises(ValueError, match="layer 9 out of range"):
        engine.run(Q, variants=[(0, [Intervention("resid_post", ("P1",), layer=9)])])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_self_patch_identity_and_causality(engine, clean, data):
    """Random sites, layers, positions and batch compositions: self-patching is the identity, and a
    zero at P_k never changes anything before k nor any other row."""
    n = engine.model.n_layers
    site = data.draw(st.sampled_from(ALL_SITES))
    layer = data.draw(st.integers(0, n - 1))
    positions = tuple(sorted(data.draw(st.sets(st.sampled_from(live_positions(layer, TRACE_POSITIONS[:7], n)),
                                               min_size=1)), key=TRACE_POSITIONS.index))
    order = data.draw(st.permutations([0, 1]))
    variants = [(q, [Intervention(site, positions, Patch(clean, q), layer=layer)]) for q in order]
    variants.append((order[0], [Intervention(site, positions, Zero(), layer=layer)]))
    out = engine.run(Q, variants=variants, record=REC, max_new_tokens=4)
    tol = tolerance(engine.model.base_dtype, "batch_vs_alone")  # rows in another batch layout than ``clean``
    for r, q in enumerate(order):
        assert tol.close(out.latent_pre[r], clean.latent_pre[q])
    k = TRACE_POSITIONS.index(positions[0])
    assert tol.close(out.latent_pre[2, :k], clean.latent_pre[order[0], :k])


def test_dead_cell_at_the_last_block_and_p6_is_refused(engine):
    """Defect: resid_post/attn_out/mlp_out of the last block at P6 can only change h_6, which feeds the
    never-fed e_7, so the intervention was a silent no-op that a heatmap would show as a finding."""
    last = engine.model.n_layers - 1
    for site in ALL_SITES:
        with pytest.raises(ValueError, match="no-op by construction"):
            engine.run(Q, variants=[(0, [Intervention(site, ("P6",), Zero(), layer=last)])], max_new_tokens=1)
    # the neighbours are live: the last block at P5 and EOT, and block L-2 at P6
    for site, layer, pos in [("resid_post", last, "P5"), ("resid_post", last, "EOT"), ("mlp_out", last - 1, "P6")]:
        out = engine.run(Q, variants=[(0, [Intervention(site, (pos,), Zero(), layer=layer)])], max_new_tokens=1)
        assert out.answer_logits[0].shape[0] == 1


def test_knockouts_check_positions_against_num_latent(tiny):
    """Defect: a knockout on query P5 (or key P5) with num_latent=2 was a silent no-op."""
    from codi_probe.engine import CodiEngine

    short = CodiEngine(tiny, num_latent=2)
    for iv in (knockout(("P5",), "P0"), knockout(("P1",), "P5")):
        with pytest.raises(ValueError, match="P5 does not exist with num_latent=2"):
            short.run(Q, variants=[(0, [iv])], max_new_tokens=1)
    short.run(Q, variants=[(0, [knockout(("P2",), "P1")])], max_new_tokens=1)


def test_random_ops_draw_per_problem(engine):
    """Defect: Noise and Randomize drew the same vector for every row unless the seed varied. Now a draw
    depends on (seed, problem, site, layer, position): problems differ, and one problem's draw does not
    depend on its batch (row index, other questions)."""
    from codi_probe.engine import Randomize

    from codi_probe.engine.interventions import Identity

    for op in (Noise(1.0), Randomize()):
        iv = Intervention("resid_post", ("P3",), op, layer=1)
        same = Intervention("resid_post", ("P3",), Identity(), layer=1)  # the row's clean value at that site
        both = engine.run(Q, variants=[(0, [same]), (1, [same]), (0, [iv]), (1, [iv])], record=REC, max_new_tokens=1)
        # Noise adds its draw (subtract the row's clean value); Randomize sets a direction (scaled to the row's norm)
        d0 = both.resid(1)[2, 3] - both.resid(1)[0, 3] if isinstance(op, Noise) else both.resid(1)[2, 3]
        d1 = both.resid(1)[3, 3] - both.resid(1)[1, 3] if isinstance(op, Noise) else both.resid(1)[3, 3]
        assert torch.nn.functional.cosine_similarity(d0, d1, dim=0) < 0.9, op  # two problems, two draws
        alone = engine.run([Q[1], "What is 7 plus 8?"], variants=[(0, [iv])], record=REC, max_new_tokens=1)
        torch.testing.assert_close(alone.resid(1)[0, 3], both.resid(1)[3, 3], atol=1e-4, rtol=1e-4)


def test_run_uses_eval_mode_and_restores_the_callers_mode(tiny, engine):
    """Defect: a model left in train mode applied dropout inside the loop."""
    from codi_probe.engine import CodiEngine
    from codi_probe.model import CodiModel
    from codi_probe.tiny import TINY_CONFIGS
    from dataclasses import replace

    cfg = replace(TINY_CONFIGS[tiny.config.name], base={**TINY_CONFIGS[tiny.config.name].base, "attn_pdrop": 0.5,
                                                          "resid_pdrop": 0.5, "attention_dropout": 0.5})
    model = CodiModel(cfg, seed=1)
    model.tokenizer = tiny.tokenizer
    eng = CodiEngine(model)
    ref = eng.run(Q, max_new_tokens=2)
    model.train()
    again = eng.run(Q, max_new_tokens=2)
    assert model.training  # the caller's mode is restored
    assert torch.equal(again.latent_pre, ref.latent_pre)  # same layout, deterministic: no dropout applied


def test_intervention_arguments_are_checked_before_any_forward_pass(engine, clean, monkeypatch):
    """Defect (issue 32 item 12): a Set vector of the wrong width raised a raw torch RuntimeError inside a
    hook, a Patch row beyond the source trace a raw IndexError, and a site the source trace did not record a
    KeyError after the question prefix ran. Each is now one ValueError naming the row, the op, the site and
    what was expected, raised before the model runs at all."""
    from codi_probe.engine import AblateHeads

    d = engine.model.d_model
    calls = []
    monkeypatch.setattr(engine, "_forward", lambda *a, **k: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    unrecorded = dataclasses.replace(clean, sites={})
    cases = [
        (Intervention("resid_post", ("P2",), Set(torch.zeros(d + 1)), layer=0),
         rf"row 0: Set at resid_post layer 0 \(P2\): the value has shape \({d + 1},\), expected a vector of width \({d},\)"),
        (Intervention("latent_post_prj", ("P3",), Set({"P3": torch.zeros(3)})),
         rf"row 0: Set at latent_post_prj \(P3\): the value at P3 has shape \(3,\), expected .*\({d},\)"),
        (Intervention("resid_post", ("P2", "P3"), Set({"P2": torch.zeros(d)}), layer=0),
         r"Set at resid_post layer 0 \(P2, P3\): the value mapping has no vector for P3"),
        (Intervention("mlp_out", ("P1",), Add(torch.zeros(2, d)), layer=1),
         rf"row 0: Add at mlp_out layer 1 \(P1\): the vector has shape \(2, {d}\)"),
        (Intervention("resid_post", ("P1",), Patch(clean, 2), layer=0),
         r"row 0: Patch at resid_post layer 0 \(P1\): the source trace's row 2 is out of range: the trace has rows 0..1"),
        (Intervention("attn_z", ("P1",), Patch(clean, 0), layer=0),
         r"row 0: Patch at attn_z layer 0 \(P1\): the source trace did not record attn_z at layer 0 \(recorded: "),
        (Intervention("resid_post", ("P1",), Mean(unrecorded), layer=0),
         r"Mean at resid_post layer 0 \(P1\): the pool trace did not record resid_post at layer 0 \(recorded: none\)"),
        (Intervention("resid_post", ("P1",), Mean(clean, (0, 5)), layer=0),
         r"Mean at resid_post layer 0 \(P1\): the pool trace's row 5 is out of range"),
        (Intervention("attn_z", ("P1",), AblateHeads((engine.model.n_heads,), engine.model.n_heads), layer=0),
         rf"AblateHeads at attn_z layer 0 \(P1\): head {engine.model.n_heads} out of range"),
    ]
    for iv, message in cases:
        with pytest.raises(ValueError, match=message):
            engine.run(Q, variants=[(0, [iv])], max_new_tokens=1)
    assert not calls, "the model ran before the arguments were checked"


def test_valid_intervention_arguments_still_run(engine, clean):
    """The checks accept what the ops apply: a per-position Set mapping, a latent-site Patch from a trace
    that recorded no module site, an attn_z Set of the heads' width."""
    d = engine.model.d_model
    latents = engine.run(Q, record=Record(sites=()), max_new_tokens=1)
    ivs = [Intervention("resid_post", ("P1", "P2"), Set({"P1": torch.zeros(d), "P2": torch.ones(d)}), layer=0),
           Intervention("latent_post_prj", ("P3",), Patch(latents, 1)),
           Intervention("attn_z", ("P4",), Set(torch.zeros(engine.site_width("attn_z"))), layer=0)]
    out = engine.run(Q, variants=[(0, ivs)], max_new_tokens=1)
    assert out.answer_logits[0].shape[0] == 1
