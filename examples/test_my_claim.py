"""A researcher's own claim, written from scratch against their own checkpoint (see the README's
"Writing your own claim").

    pytest examples/test_my_claim.py --codi-model path/to/checkpoint -k accuracy

The plugin supplies ``codi_model`` (loaded once per session from ``--codi-model``) and ``claim`` (the
recorder); the marker declares the hypothesis before anything runs; ``claim.decide`` applies the suite's
one verdict rule; the report (``reports/latest.json``) holds the claim beside the catalogue's.
"""

import pytest

from codi_probe.data import answers_match, cyw_template_problems
from codi_probe.engine import CodiEngine
from codi_probe.hypothesis import Hypothesis, Prediction
from codi_probe.stats import proportion_evidence

ACCURACY = Prediction("accuracy", "greater", 0.5)  # the share of problems answered right, against 0.5


@pytest.mark.claim(id="MY-ACC", kind="empirical", source="my lab notebook", reported=0.9,
                   statement="the model answers more than half of 40 CYW template problems (one per "
                             "template and value combination, spread over the set)",
                   hypothesis=Hypothesis(ACCURACY, min_n=40))
def test_accuracy(claim, codi_model):
    problems = cyw_template_problems()[::25][:40]
    trace = CodiEngine(codi_model).run([p.question for p in problems], max_new_tokens=8)
    right = sum(answers_match(answer, p.answer) for answer, p in zip(trace.answer, problems))
    claim.decide(proportion_evidence(right, len(problems), ACCURACY), n=len(problems))
