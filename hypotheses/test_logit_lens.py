"""Logit-lens decodability of intermediate results per latent position (claims.md 4.H: LENS-02, LENS-10).

The lens is the last-layer post-norm state h_k at P_k through lm_head (the final norm applied once,
SAN-09); a match is an exact token match of the decoded top-1 with the value (F-20: no substrings)."""

import numpy as np
import pytest
import torch

from codi_probe import stats
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.experiments.common import number_text
from codi_probe.hypothesis import Hypothesis, Prediction, combine


@pytest.fixture(scope="module")
def lens_matches(codi_engine, template_problems, template_trace):
    """``{name: [L, n, 7] bool}`` for step1, step2 and the final answer, at every block's output (the last
    block's lens is lm_head(h_k), the state prj reads)."""
    problems, trace = list(template_problems), template_trace

    values = {"step1": [p.intermediates[0] for p in problems], "step2": [p.intermediates[1] for p in problems],
              "answer": [p.answer for p in problems]}
    out = {name: [] for name in values}
    for layer in range(codi_engine.model.n_layers):
        top = torch.stack([codi_engine.logit_lens(trace, layer, pos).argmax(-1) for pos in LATENT_POSITIONS], 1)
        words = [[codi_engine.decode([int(t)]).strip() for t in row] for row in top]
        for name, vals in values.items():
            out[name].append([[w == number_text(v) for w in row] for row, v in zip(words, vals)])
    return {name: np.array(v) for name, v in out.items()}


def layer_grid(m: np.ndarray) -> dict:
    return {"rows": list(range(m.shape[0])), "cols": list(LATENT_POSITIONS), "values": m.mean(1).tolist()}


def lens02(value: str, position: str, threshold: float) -> Hypothesis:
    """``value`` is the top-1 at ``position`` for > ``threshold`` of problems and for < 20% at every other."""
    return Hypothesis((Prediction(f"top-1 rate of {value} at {position}", "greater", threshold),
                       *(Prediction(f"top-1 rate of {value} at {p}", "less", 0.2)
                         for p in LATENT_POSITIONS if p != position)), family="LENS-02")


LENS02 = {"step1-P2": ("step1", "P2", 0.95), "step2-P4": ("step2", "P4", 0.60)}
LENS02_HYPOTHESES = {k: lens02(*v) for k, v in LENS02.items()}


@pytest.fixture(scope="module")
def lens02_outcomes(lens_matches):
    out = {}
    for key, (value, position, _) in LENS02.items():
        hyp = LENS02_HYPOTHESES[key]
        m = lens_matches[value][-1]  # [n, 7] at the last block's output
        ev = [stats.proportion_evidence(int(m[:, LATENT_POSITIONS.index(pred.statistic.rsplit(" at ", 1)[1])].sum()),
                                        m.shape[0], pred) for pred in hyp.predictions]
        out[key] = (ev, combine(hyp, ev, m.shape[0]))
    return out


@pytest.mark.claim(id="LENS-02", kind="empirical",
                   statement="an intermediate is the logit-lens top-1 at one latent position (step1 > 95% at P2, "
                             "step2 > 60% at P4) and below 20% at every other position (Holm over the two)",
                   source="AO on M-CYW (claims.md 4.H LENS-02, 8.1): z2=step1 100%, z4=step2 85.36%",
                   reported={"step1@P2": 1.0, "step2@P4": 0.8536}, hypothesis=LENS02_HYPOTHESES)
@pytest.mark.parametrize("key", list(LENS02))
def test_intermediate_decodable(lens_matches, lens02_outcomes, claim, key):
    value = LENS02[key][0]
    grid = lens_matches[value]
    ev, outcome = lens02_outcomes[key]
    claim.record(details={"rate_by_position": dict(zip(LATENT_POSITIONS, grid[-1].mean(0).tolist())),
                          "rate_by_layer_position": layer_grid(grid)})
    claim.decide(ev, n=outcome.n, family={k: o for k, (_, o) in lens02_outcomes.items()}, member=key)


LENS10 = Hypothesis(tuple(Prediction(f"top-1 rate of the answer at {p}", "less", 0.10) for p in LATENT_POSITIONS))


@pytest.mark.claim(id="LENS-10", kind="empirical",
                   statement="the final answer is not in the latents: it is the logit-lens top-1 for < 10% of "
                             "problems at every latent position",
                   source="AO Phase 2/3 (claims.md 4.H LENS-10): 16% / 2%; follows from include_last_cot=false",
                   reported=0.16, hypothesis=LENS10)
def test_final_answer_not_in_latents(lens_matches, claim):
    grid = lens_matches["answer"]
    m = grid[-1]
    ev = [stats.proportion_evidence(int(m[:, j].sum()), m.shape[0], pred) for j, pred in enumerate(LENS10.predictions)]
    worst = max(range(len(ev)), key=lambda j: ev[j].value)  # the primary statistic shown: the highest rate
    claim.record(details={"rate_by_position": dict(zip(LATENT_POSITIONS, m.mean(0).tolist())),
                          "rate_by_layer_position": layer_grid(grid)},
                 statistics={"position with the highest rate": LATENT_POSITIONS[worst]})
    claim.decide([ev[worst]] + [e for j, e in enumerate(ev) if j != worst], n=m.shape[0])
