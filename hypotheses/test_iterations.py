"""Accuracy against the number of latent iterations (claims.md 4.A ACC-03)."""

import pytest

from codi_probe import stats
from codi_probe.data import answers_match
from codi_probe.engine import CodiEngine, Record
from codi_probe.experiments.common import golds


@pytest.fixture(scope="module")
def accuracy_by_iterations(codi_model, template_problems):
    problems = list(template_problems)
    gold = golds(problems)
    out = {}
    for k in range(7):  # 0 = skip thinking: BOT then EOT
        trace = CodiEngine(codi_model, num_latent=k).run([p.question for p in problems],
                                                         record=Record(sites=(), logits=False))
        out[k] = [float(answers_match(a, g)) for a, g in zip(trace.answer, gold)]
    return out


@pytest.mark.claim(id="ACC-03", kind="empirical",
                   statement="accuracy rises with latent iterations: acc(6) - acc(0) >= 20pp, and it has plateaued "
                             "by 4 iterations (|acc(4) - acc(6)| <= 5pp)",
                   source="CYW exp 1 (claims.md 4.A ACC-03, 8.7): figure only; M-CYW templates", reported="n/r")
def test_accuracy_rises_with_iterations(accuracy_by_iterations, claim):
    acc = accuracy_by_iterations
    gain = stats.paired_difference(acc[6], acc[0])
    plateau = stats.paired_difference(acc[6], acc[4])
    curve = {k: sum(v) / len(v) for k, v in acc.items()}
    n = len(acc[0])
    verdict = ("inconclusive" if n < stats.MIN_PROBLEMS else
               "supported" if gain.lo >= 0.20 and abs(plateau.value) <= 0.05 else
               "refuted" if gain.hi < 0.20 or abs(plateau.value) > 0.05 else "inconclusive")
    claim.record("acc(6) - acc(0)", gain.value, ci=gain.ci, p_value=gain.p_value, n=n, threshold=0.20,
                 statistics={"acc(6) - acc(4)": plateau.value},
                 details={"accuracy_by_iterations": curve, "accuracy_ci_by_iterations": {
                     str(k): list(stats.proportion(int(sum(v)), len(v)).ci) for k, v in acc.items()}},
                 verdict=verdict)
