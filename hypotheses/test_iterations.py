"""Accuracy against the number of latent iterations (claims.md 4.A ACC-03)."""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.data import answers_match
from codi_probe.engine import CodiEngine, Record
from codi_probe.experiments.common import golds
from codi_probe.hypothesis import EQUIVALENCE_MIN_N, EQUIVALENCE_MIN_N_SOURCE, Hypothesis, Prediction


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


ACC03 = Hypothesis((Prediction("acc(6) - acc(0)", "greater", 0.20),
                    Prediction("acc(6) - acc(4)", "equivalent", 0.05),
                    Prediction("Page trend of accuracy over 0..6 iterations", "greater", 0.0)),
                   min_n=EQUIVALENCE_MIN_N, min_n_source=EQUIVALENCE_MIN_N_SOURCE + " (the plateau is an equivalence)")


@pytest.mark.claim(id="ACC-03", kind="empirical",
                   statement="accuracy rises with latent iterations: acc(6) - acc(0) > 20pp, it increases with the "
                             "number of iterations (Page trend), and it has plateaued by 4 (|acc(4) - acc(6)| < 5pp)",
                   source="CYW exp 1 (claims.md 4.A ACC-03, 8.7): figure only; M-CYW templates", reported="n/r",
                   hypothesis=ACC03)
def test_accuracy_rises_with_iterations(accuracy_by_iterations, claim):
    acc = {k: np.asarray(v, dtype=bool) for k, v in accuracy_by_iterations.items()}
    n = len(acc[0])
    claim.record(details={"accuracy_by_iterations": {k: float(v.mean()) for k, v in acc.items()},
                          "accuracy_ci_by_iterations": {str(k): list(stats.proportion(int(v.sum()), n).ci)
                                                        for k, v in acc.items()}})
    ev = [stats.paired_binary_evidence(acc[0], acc[6], ACC03.predictions[0]),
          stats.paired_binary_evidence(acc[4], acc[6], ACC03.predictions[1]),
          stats.page_evidence(np.stack([acc[k] for k in range(7)], 1).astype(float), ACC03.predictions[2])]
    claim.decide(ev, n=n)
