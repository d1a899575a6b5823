"""Trunk sharing (variant rows join at their first intervened step) equals running every row from P0."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codi_probe.engine import CodiEngine, Intervention, Noise, Record, Scale, Zero, knockout
from codi_probe.engine.positions import FED_POSITIONS, LATENT_POSITIONS, TRACE_POSITIONS, live_positions
from codi_probe.tolerance import tolerance

Q = ["What is 7 plus 8?", "A team starts with 3 members. They recruit 5 new members. How many now?",
     "Tom has 12 apples and gives away 4. How many are left?"]
REC = Record(sites=("resid_post", "mlp_out"), attention=True)
OPS = (Zero(), Scale(1.7), Noise(0.5, seed=3))


@pytest.fixture(scope="module")
def engines(tiny):
    return CodiEngine(tiny), CodiEngine(tiny, share_trunk=False)


@st.composite
def interventions(draw):
    kind = draw(st.sampled_from(["module", "latent", "knockout"]))
    if kind == "module":
        layer = draw(st.integers(0, 3))
        pos = draw(st.lists(st.sampled_from(live_positions(layer, TRACE_POSITIONS, 4)), min_size=1, max_size=2,
                            unique=True))
        return Intervention(draw(st.sampled_from(["resid_post", "attn_out", "mlp_out"])), tuple(pos),
                            draw(st.sampled_from(OPS)), layer=layer)
    if kind == "latent":
        return Intervention(draw(st.sampled_from(["latent_pre_prj", "latent_post_prj"])),
                            (draw(st.sampled_from(FED_POSITIONS)),), draw(st.sampled_from(OPS)))
    return knockout((draw(st.sampled_from(TRACE_POSITIONS)),), (draw(st.sampled_from([*LATENT_POSITIONS, "Q"])),))


variant_sets = st.lists(st.tuples(st.integers(0, len(Q) - 1), st.lists(interventions(), max_size=2)),
                        min_size=1, max_size=6)


def assert_same(a, b):
    """Shared and unshared runs batch rows differently: equal within the fp32 tolerance, tokens exact."""
    tol = tolerance(torch.float32, "batch_vs_alone")
    assert tol.close(a.latent_pre, b.latent_pre)
    assert tol.close(a.latent_post, b.latent_post)
    assert tol.close(a.inputs, b.inputs)
    assert a.answer_ids == b.answer_ids
    for key in a.sites:
        assert tol.close(a.sites[key], b.sites[key]), key
    if a.attn is not None:
        assert a.attn.shape == b.attn.shape and tol.close(a.attn, b.attn)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variants=variant_sets, padding=st.sampled_from(["exact", "official"]))
def test_shared_trunk_equals_unshared_generation(engines, variants, padding):
    shared, plain = engines
    shared.padding = plain.padding = padding
    record = REC if padding == "exact" else Record(sites=REC.sites)  # official padding records no attention
    try:
        a = shared.run(Q, variants, record=record, max_new_tokens=4)
        b = plain.run(Q, variants, record=record, max_new_tokens=4)
    finally:
        shared.padding = plain.padding = "exact"
    assert_same(a, b)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variants=variant_sets)
def test_shared_trunk_equals_unshared_teacher_forced(engines, variants):
    shared, plain = engines
    targets = [[11, 22, 33]] * len(variants)
    a = shared.run(Q, variants, teacher_force=targets, readout=[1] * len(variants))
    b = plain.run(Q, variants, teacher_force=targets, readout=[1] * len(variants))
    assert_same(a, b)
    for x, y in zip(a.answer_logits, b.answer_logits):
        assert tolerance(torch.float32).close(x, y)


def test_rows_without_interventions_and_late_rows_do_not_run_early_steps(engines):
    """The trunk is the only row of its question computed at P0 when every variant starts later."""
    shared, _ = engines
    calls = []
    hook = shared.model.blocks[0].register_forward_hook(lambda m, a, o: calls.append((o[0] if isinstance(o, tuple) else o).shape[0]))
    try:
        shared.run(Q[:1], [(0, ()), (0, [Intervention("resid_post", ("P4",), Zero(), layer=0)]),
                           (0, [Intervention("resid_post", ("P2",), Zero(), layer=1)])], max_new_tokens=1)
    finally:
        hook.remove()
    assert calls[1:8] == [1, 1, 2, 2, 3, 3, 3]  # prefix, then P0..P6: rows join at P2 and P4
