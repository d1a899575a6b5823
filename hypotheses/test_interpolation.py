"""Interpolating a fed latent between two problems (claims.md 4.L INTERP-01)."""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.engine import Intervention, Record, Set
from codi_probe.experiments.common import run_conditions
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
                           stats.mean_evidence(taus, INTERP01.predictions[1], seed=codi_options.seed)]
    claim.decide(ev, n=m)
