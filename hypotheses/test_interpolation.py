"""Interpolating a fed latent between two problems (claims.md 4.L INTERP-01)."""

import numpy as np
import pytest
from scipy import stats as sps

from codi_probe import stats
from codi_probe.engine import Intervention, Record, Set
from codi_probe.experiments.common import run_conditions
from codi_probe.experiments.patching import template_pairs

ALPHAS = np.linspace(0.0, 1.0, 11)


@pytest.mark.claim(id="INTERP-01", kind="empirical",
                   statement="lerping the first fed latent (P1) from problem A's to problem B's gives answers monotone "
                             "in alpha (Kendall tau >= 0.8 on average over pairs)",
                   source="CYW exp 11 (claims.md 4.L INTERP-01): hypothesis, numbers n/r", reported="n/r")
def test_interpolation_is_monotone(codi_engine, template_problems, codi_options, claim):
    pairs = template_pairs(list(template_problems), codi_options.seed)[:stats.MIN_PROBLEMS]
    a_q = [a.question for a, _ in pairs]
    both = codi_engine.run(a_q + [b.question for _, b in pairs], record=Record(sites=(), logits=False))
    n = len(pairs)
    e_a, e_b = both.latent_post[:n, 0], both.latent_post[n:, 0]
    conds = {f"alpha={al:.1f}": [[Intervention("latent_post_prj", ("P1",), Set((1 - al) * e_a[i] + al * e_b[i]))]
                                 for i in range(n)] for al in ALPHAS}
    runs = run_conditions(codi_engine, a_q, conds)
    taus, outside = [], []
    for i in range(n):
        ans = [runs.answers(f"alpha={al:.1f}")[i] for al in ALPHAS]
        a1, a2 = ans[0], ans[-1]
        if a1 is None or a2 is None or a1 == a2 or any(x is None for x in ans):
            continue
        taus.append(float(sps.kendalltau(ALPHAS, ans).statistic) * np.sign(a2 - a1))
        outside.append(float(np.mean([x not in (a1, a2) for x in ans])))
    claim.record(details={"pairs": n, "pairs_with_distinct_parsable_endpoints": len(taus)})
    if len(taus) < 5:
        claim.record("mean signed Kendall tau", None, n=len(taus), threshold=0.8, verdict="inconclusive")
        return
    est = stats.bootstrap_mean(taus)
    verdict = "supported" if est.lo >= 0.8 else "refuted" if est.hi < 0.8 else "inconclusive"
    claim.record("mean signed Kendall tau", est.value, ci=est.ci, n=est.n, threshold=0.8,
                 statistics={"share of alphas with an answer outside {a1, a2}": float(np.mean(outside))},
                 verdict=verdict)
