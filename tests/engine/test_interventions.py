"""Interventions: identity controls, positive/null controls per site, hook hygiene, properties."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codi_probe.engine import (Add, Intervention, Mean, Noise, Patch, Record, Scale, Set, Shuffle, Zero,
                               knockout)
from codi_probe.engine.positions import FED_POSITIONS, TRACE_POSITIONS

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
    self_patch = [Intervention(site, TRACE_POSITIONS, Patch(clean, 0), layer=l) for site in ALL_SITES
                  for l in range(n)]
    self_patch += [Intervention(s, FED_POSITIONS, Patch(clean, 0)) for s in ("latent_pre_prj", "latent_post_prj")]
    patched = run_row0(engine, self_patch)
    assert same_outputs(patched, clean)
    identity = [Intervention(site, TRACE_POSITIONS, layer=l) for site in ALL_SITES for l in range(n)]
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
    positions = tuple(sorted(data.draw(st.sets(st.sampled_from(TRACE_POSITIONS[:7]), min_size=1)),
                             key=TRACE_POSITIONS.index))
    order = data.draw(st.permutations([0, 1]))
    variants = [(q, [Intervention(site, positions, Patch(clean, q), layer=layer)]) for q in order]
    variants.append((order[0], [Intervention(site, positions, Zero(), layer=layer)]))
    out = engine.run(Q, variants=variants, record=REC, max_new_tokens=4)
    for r, q in enumerate(order):
        torch.testing.assert_close(out.latent_pre[r], clean.latent_pre[q], atol=1e-5, rtol=0)
    k = TRACE_POSITIONS.index(positions[0])
    torch.testing.assert_close(out.latent_pre[2, :k], clean.latent_pre[order[0], :k], atol=1e-5, rtol=0)
