"""Interpolating a fed latent between two problems (claims.md 4.L INTERP-01)."""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.engine import Intervention, Record, Set
from codi_probe.experiments.common import decided_below_minimum, run_conditions
from codi_probe.experiments.interpolation import summarise_path
from codi_probe.experiments.patching import template_pairs
from codi_probe.hypothesis import Hypothesis, Prediction

ALPHAS = np.linspace(0.0, 1.0, 11)


INTERP01 = Hypothesis((Prediction("share of pairs with an intermediate answer", "greater", 0.5),
                       Prediction("mean signed Kendall tau", "greater", 0.8)))


@pytest.mark.claim(id="INTERP-01", kind="empirical",
                   statement="lerping the first fed latent (P1) from problem A's to problem B's gives intermediate "
                             "answers: for most pairs some alpha yields an answer strictly between a1 and a2, and the "
                             "answers are monotone in alpha (mean Kendall tau > 0.8); a step function refutes it",
                   source="CYW exp 11 (claims.md 4.L INTERP-01): hypothesis, numbers n/r", reported="n/r",
                   hypothesis=INTERP01)
def test_interpolation_gives_intermediate_answers(codi_engine, template_problems, empirical_n, codi_options, claim):
    pairs = template_pairs(list(template_problems), codi_options.seed)[:empirical_n]
    if not pairs and decided_below_minimum(claim, 0):
        return
    a_q = [a.question for a, _ in pairs]
    both = codi_engine.run(a_q + [b.question for _, b in pairs], record=Record(sites=(), logits=False))
    n = len(pairs)
    e_a, e_b = both.latent_post[:n, 0], both.latent_post[n:, 0]
    conds = {f"alpha={al:.1f}": [[Intervention("latent_post_prj", ("P1",), Set((1 - al) * e_a[i] + al * e_b[i]))]
                                 for i in range(n)] for al in ALPHAS}
    runs = run_conditions(codi_engine, a_q, conds)
    paths = [summarise_path(ALPHAS, [runs.answers(f"alpha={al:.1f}")[i] for al in ALPHAS]) for i in range(n)]
    paths = [p for p in paths if p is not None]
    taus, between, outside = [p.tau for p in paths], [p.between for p in paths], [p.outside for p in paths]
    m = len(taus)
    claim.record(details={"pairs": n, "pairs_with_distinct_parsable_endpoints": m},
                 statistics={"share of alphas with an answer outside {a1, a2}": float(np.mean(outside)) if m else None})
    ev = [] if m < 2 else [stats.proportion_evidence(int(sum(between)), m, INTERP01.predictions[0]),
                           stats.mean_evidence(taus, INTERP01.predictions[1], seed=codi_options.seed, support=(-1, 1))]
    claim.decide(ev, n=m)


SWEEP = "A shop has 12 items. They receive {x} more items. How many items does the shop have now? " \
        "Give the answer only and nothing else."  # CYW exp 11/12 preset (claims.md 2.3)
SWEEP_X = range(2, 101)
INTERP02 = Hypothesis((Prediction("|Spearman(X, first principal component of h_2)|", "greater", 0.9),
                       Prediction("lens top-1 at h_2 equals 12+X", "greater", 0.9)))


def spearman(x, y, axis=-1):
    """Spearman's rho along ``axis`` (vectorised for the bootstrap)."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x, axis=axis), rankdata(y, axis=axis)
    rx, ry = rx - rx.mean(axis, keepdims=True), ry - ry.mean(axis, keepdims=True)
    return (rx * ry).sum(axis) / np.sqrt((rx * rx).sum(axis) * (ry * ry).sum(axis))


@pytest.mark.claim(id="INTERP-02", kind="empirical",
                   statement="the latent geometry is ordered by the input number: sweeping X = 2..100 in 'a shop has 12 "
                             "items, receives X more', the first principal component of h_2 is monotone in X "
                             "(|Spearman| > 0.9, bootstrap over prompts) and the lens at h_2 reads 12+X for > 90%",
                   source="CYW exp 12 (claims.md 4.L INTERP-02, report not retrievable): expected ordered manifold "
                          "within the single-token range; the claims.md test",
                   reported="n/r", hypothesis=INTERP02)
def test_latents_ordered_by_input(codi_engine, codi_options, claim):
    from codi_probe.experiments.common import number_text
    from codi_probe.experiments.lens import lens_readout

    xs = np.array(list(SWEEP_X), dtype=float)
    trace = codi_engine.run([SWEEP.format(x=int(x)) for x in xs], record=Record(sites=(), logits=False),
                            max_new_tokens=1)
    h = trace.latent_pre[:, 2].double().numpy()
    h = h - h.mean(0)
    pc1 = h @ np.linalg.svd(h, full_matrices=False)[2][0]
    lens = lens_readout(codi_engine, trace)
    hit = np.array([row[2][0] == number_text(12 + x) for row, x in zip(lens.words, xs)])
    rho = float(spearman(xs, pc1))
    sign = 1.0 if rho >= 0 else -1.0
    claim.record(details={"prompts": len(xs), "Spearman(X, PC1) at h_2": rho, "lens hit rate at h_2": float(hit.mean())})
    claim.decide([stats.bootstrap_evidence((xs, sign * pc1), spearman, INTERP02.predictions[0], vectorized=True,
                                           seed=codi_options.seed),
                  stats.proportion_evidence(int(hit.sum()), len(hit), INTERP02.predictions[1])], n=len(xs))
