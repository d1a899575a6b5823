"""The attn_z site (the heads' outputs at the attention output projection's input) and AblateHeads:
recorded values against the projection applied by hand, all heads zeroed against an independent route
(the attention output set to what the projection gives for zero input), a null and a positive control."""

import pytest
import torch

from codi_probe.engine import AblateHeads, Intervention, Record, Set, Zero
from codi_probe.guards import run_beside_clean
from codi_probe.tolerance import tolerance

Q = ["What is 7 plus 8?", "A team starts with 3 members. They recruit 5 new members. How many now?"]


def n_heads(model) -> int:
    cfg = model.lm.config
    return getattr(cfg, "num_attention_heads", None) or cfg.n_head


def test_recorded_z_projects_to_the_attention_output(engine):
    t = engine.run(Q, record=Record(sites=("attn_z", "attn_out")), max_new_tokens=1)
    proj = engine.model.arch.block_part(engine.model.lm, 1, "attn_proj")
    with torch.no_grad():
        again = proj(t.sites[("attn_z", 1)].to(engine.model.base_dtype)).float()
    tol = tolerance(engine.model.base_dtype, "batch_vs_alone")
    assert tol.deviation(again, t.sites[("attn_out", 1)]) <= 1.0


def test_all_heads_zeroed_equals_the_projection_of_zero(engine):
    model = engine.model
    proj = model.arch.block_part(model.lm, 1, "attn_proj")
    with torch.no_grad():
        of_zero = proj(torch.zeros(1, 1, model.d_model, dtype=model.base_dtype))[0, 0].float()
    heads = AblateHeads(tuple(range(n_heads(model))), n_heads(model))
    pos = ("P2", "P3", "P4")
    a = engine.run(Q, max_new_tokens=4, variants=[(i, [Intervention("attn_z", pos, heads, layer=1)]) for i in range(2)])
    b = engine.run(Q, max_new_tokens=4, variants=[(i, [Intervention("attn_out", pos, Set(of_zero), layer=1)])
                                                  for i in range(2)])
    tol = tolerance(model.base_dtype, "batch_vs_alone")
    assert tol.deviation(a.latent_pre, b.latent_pre) <= 1.0 and a.answer_ids == b.answer_ids


def test_null_and_positive_controls(engine):
    h = n_heads(engine.model)
    none = [(r, [Intervention("attn_z", ("P3",), AblateHeads((), h), layer=1)]) for r in range(2)]
    out, ref = run_beside_clean(engine, Q, none, max_new_tokens=1)
    tol = tolerance(engine.model.base_dtype, "noop_vs_clean")
    assert tol.deviation(out.latent_pre[:2], out.latent_pre[ref]) <= 1.0
    one = [(r, [Intervention("attn_z", ("P3",), AblateHeads((0,), h), layer=1)]) for r in range(2)]
    out, ref = run_beside_clean(engine, Q, one, max_new_tokens=1)
    assert tol.deviation(out.latent_pre[:2, 3], out.latent_pre[ref, 3]) > 1.0  # h_3 moves
    assert tol.deviation(out.latent_pre[:2, :3], out.latent_pre[ref, :3]) <= 1.0  # nothing before P3


def test_one_line_errors(engine):
    with pytest.raises(ValueError, match="out of range"):
        AblateHeads((99,), 4)(torch.zeros(8), site="attn_z")
    with pytest.raises(ValueError, match="attn_z site"):
        AblateHeads((0,), 4)(torch.zeros(8), site="resid_post")
    with pytest.raises(ValueError, match="needs a layer"):
        Intervention("attn_z", ("P1",), Zero())
