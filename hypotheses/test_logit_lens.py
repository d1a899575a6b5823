"""Logit-lens decodability of intermediate results per latent position (claims.md 4.H: LENS-02, LENS-10).

The lens is the last-layer post-norm state h_k at P_k through lm_head (the final norm applied once,
SAN-09); a match is an exact token match of the decoded top-1 with the value (F-20: no substrings)."""

import numpy as np
import pytest
import torch

from codi_probe import stats
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.experiments.common import number_text


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


@pytest.mark.claim(id="LENS-02", kind="empirical",
                   statement="an intermediate is the logit-lens top-1 at one latent position (step1 >= 95% at P2, "
                             "step2 >= 60% at P4) and at most 20% at every other position",
                   source="AO on M-CYW (claims.md 4.H LENS-02, 8.1): z2=step1 100%, z4=step2 85.36%",
                   reported={"step1@P2": 1.0, "step2@P4": 0.8536})
@pytest.mark.parametrize("value,position,threshold", [("step1", "P2", 0.95), ("step2", "P4", 0.60)],
                         ids=["step1-P2", "step2-P4"])
def test_intermediate_decodable(lens_matches, claim, value, position, threshold):
    grid = lens_matches[value]
    m = grid[-1]
    k = LATENT_POSITIONS.index(position)
    est = stats.proportion(int(m[:, k].sum()), m.shape[0])
    elsewhere = max(m[:, j].mean() for j in range(m.shape[1]) if j != k)
    rates = dict(zip(LATENT_POSITIONS, m.mean(0).tolist()))
    verdict = ("inconclusive" if est.n < stats.MIN_PROBLEMS else
               "supported" if est.lo >= threshold and elsewhere <= 0.2 else
               "refuted" if est.hi < threshold or elsewhere > 0.2 else "inconclusive")
    claim.record(f"top-1 rate of {value} at {position}", est.value, ci=est.ci, n=est.n, threshold=threshold,
                 statistics={"max rate at another position": float(elsewhere)},
                 details={"rate_by_position": rates, "rate_by_layer_position": layer_grid(grid)}, verdict=verdict)


@pytest.mark.claim(id="LENS-10", kind="empirical",
                   statement="the final answer is not in the latents: it is the logit-lens top-1 for <= 10% of "
                             "problems at every latent position",
                   source="AO Phase 2/3 (claims.md 4.H LENS-10): 16% / 2%; follows from include_last_cot=false",
                   reported=0.16)
def test_final_answer_not_in_latents(lens_matches, claim):
    grid = lens_matches["answer"]
    m = grid[-1]
    k = int(np.argmax(m.mean(0)))
    est = stats.proportion(int(m[:, k].sum()), m.shape[0])
    claim.record("max over positions of the answer's top-1 rate", est.value, ci=est.ci, n=est.n, threshold=0.10,
                 statistics={"position": LATENT_POSITIONS[k]},
                 details={"rate_by_position": dict(zip(LATENT_POSITIONS, m.mean(0).tolist())),
                          "rate_by_layer_position": layer_grid(grid)},
                 verdict=stats.verdict(est, 0.10, alternative="less"))
