"""Newer claims about latent dynamics (claims-2026.md NEW-01, 03, 06, 07, 08; NEW-02 is beside ACC-03).

Each claim re-reads a shared run where it can (the lens of the answer and template problems, the CCTA grid);
NEW-03 and NEW-08 run their own interventions. Positions are canonical (P0 = BOT, P_k fed e_k); where a
source numbers its latents ambiguously the reading used is stated in the claim.
"""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.engine import Intervention, Mean, Randomize, Record, Zero
from codi_probe.engine.positions import FED_POSITIONS, LATENT_POSITIONS
from codi_probe.experiments.common import golds, number_text, run_conditions
from codi_probe.hypothesis import EQUIVALENCE_MIN_N, EQUIVALENCE_MIN_N_SOURCE, Hypothesis, Prediction, shown

EVEN, ODD = ("P2", "P4", "P6"), ("P1", "P3", "P5")


def _cols(names) -> list[int]:
    return [LATENT_POSITIONS.index(p) for p in names]


NEW01 = Hypothesis((Prediction("number top-1 rate, even minus odd fed latents", "greater", 0.10),
                    Prediction("zero-ablation answer changes, even minus odd fed latents", "greater", 0.0)))


@pytest.mark.claim(id="NEW-01", kind="empirical",
                   statement="latent steps alternate roles: the even fed latents P2/P4/P6 decode to numbers more often "
                             "than the odd P1/P3/P5 (by > 10pp per problem) and zero-ablating them (relative depth 0.5) "
                             "changes more answers",
                   source="Scratchpad Thinking (claims-2026 NEW-01; NeurIPS 2025 MechInterp workshop) on CODI: even "
                          "steps store numbers, odd steps compute; 'step k' read as P_k",
                   reported="n/r", hypothesis=NEW01)
def test_even_latents_store_numbers(answer_lens, ccta, codi_options, claim):
    number = answer_lens.number_top1().astype(float)
    parity = number[:, _cols(EVEN)].mean(1) - number[:, _cols(ODD)].mean(1)
    changed = ccta.per_position("changed", "zero")
    damage = changed[:, _cols(EVEN)].mean(1) - changed[:, _cols(ODD)].mean(1)
    claim.record(details={"number_top1_rate_by_position": dict(zip(LATENT_POSITIONS, number.mean(0).tolist())),
                          "zero_change_rate_by_position": dict(zip(LATENT_POSITIONS, changed.mean(0).tolist())),
                          "layer": ccta.layer})
    claim.decide([stats.mean_evidence(parity, NEW01.predictions[0], seed=codi_options.seed),
                  stats.mean_evidence(damage, NEW01.predictions[1], seed=codi_options.seed)], n=len(parity))


NEW03 = Hypothesis(Prediction("largest non-adjacent minus adjacent step influence", "greater", 0.0))


@pytest.fixture(scope="module")
def step_influence(codi_engine, answer_problems, codi_options):
    """``[n, 6, 7]``: relative change ||dh_j|| / ||h_j|| of the latent h_j (P_j, j = 0..6) when the fed
    latent e_i (P_i, i = 1..6) is replaced by a norm-matched random vector."""
    qs = [p.question for p in answer_problems]
    conds = {f"random@{p}": [[Intervention("latent_post_prj", (p,), Randomize(codi_options.seed * 1000 + i))]
                             for i in range(len(qs))] for p in FED_POSITIONS}
    runs = run_conditions(codi_engine, qs, conds, record=Record(sites=(), logits=False), max_new_tokens=1)
    h = runs.trace.latent_pre  # [R, 7, D]
    base = h[runs.rows["baseline"]]
    out = np.stack([((h[runs.rows[f"random@{p}"]] - base).norm(dim=-1) / base.norm(dim=-1).clamp(min=1e-30)).numpy()
                    for p in FED_POSITIONS], 1)
    return out


@pytest.mark.claim(id="NEW-03", kind="empirical",
                   statement="routing is non-local: for some step i, randomising the fed latent e_i changes a later "
                             "latent h_j (j >= i+2) more than the next one h_(i+1) (relative change, per problem)",
                   source="Dynamics Within Latent CoT (claims-2026 NEW-03; arXiv 2602.08783), on Coconut and CODI",
                   reported="n/r", hypothesis=NEW03)
def test_routing_is_non_local(step_influence, codi_options, claim):
    m = step_influence  # [n, i = P1..P6, j = P0..P6]
    gaps = np.stack([m[:, i - 1, i + 2:].max(1) - m[:, i - 1, i + 1] for i in range(1, 5)], 1)  # [n, 4]
    stat = gaps.max(1)
    claim.record(details={"influence matrix (rows e_i P1..P6, columns h_j P0..P6)": {
        "rows": list(FED_POSITIONS), "cols": list(LATENT_POSITIONS), "values": m.mean(0).tolist()}})
    claim.decide([stats.mean_evidence(stat, NEW03.predictions[0], seed=codi_options.seed)], n=len(stat))


NEW06 = Hypothesis(Prediction("share of problems with >= 2 chain values in one fed latent's top-5", "greater", 0.5))


@pytest.mark.claim(id="NEW-06", kind="empirical",
                   statement="latents hold candidates in superposition: for > 50% of template problems, some fed "
                             "latent's lens top-5 holds two or more distinct values of the chain (step1, step2, answer)",
                   source="Illusion of Superposition? (claims-2026 NEW-06; arXiv 2604.06374): only in models trained "
                          "from scratch; fine-tuned models collapse to shortcuts",
                   reported="n/r", hypothesis=NEW06)
def test_candidates_in_superposition(template_problems, template_lens, claim):
    hits, counts = [], []
    for p, rows in zip(template_problems, template_lens.words):
        chain = {number_text(v) for v in (*p.intermediates[:2], p.answer) if v is not None}
        per_position = [len(chain & set(rows[k][:5])) for k in _cols(FED_POSITIONS)]
        counts.append(per_position)
        hits.append(max(per_position) >= 2)
    n = len(hits)
    claim.record(details={"mean chain values in the top-5 by position": dict(zip(FED_POSITIONS,
                                                                                 np.mean(counts, 0).tolist()))})
    claim.decide([stats.proportion_evidence(int(sum(hits)), n, NEW06.predictions[0])], n=n)


NEW07 = Hypothesis(Prediction("answer changes under noise, P1 minus the largest later fed latent", "greater", 0.0))


@pytest.mark.claim(id="NEW-07", kind="empirical",
                   statement="the first latent is a causal hub: the same absolute Gaussian noise (sigma=1, relative "
                             "depth 0.5) at P1 changes more answers than at any later fed latent P2..P6",
                   source="claims-2026 NEW-07 (arXiv 2606.01243, ACL 2026): early latents are causal hubs",
                   reported="n/r", hypothesis=NEW07)
def test_first_latent_is_a_hub(ccta, codi_options, claim):
    changed = ccta.per_position("changed", "noise_1")[:, _cols(FED_POSITIONS)]  # [n, 6] P1..P6
    claim.record(details={"change_rate_by_position": dict(zip(FED_POSITIONS, changed.mean(0).tolist())),
                          "layer": ccta.layer})
    ev = stats.rows_evidence(changed, lambda m: m[..., 0] - m[..., 1:].max(-1), NEW07.predictions[0],
                             seed=codi_options.seed)
    claim.decide([ev], n=len(changed))


NEW08 = Hypothesis(Prediction("accuracy change, every fed latent set to its across-problem mean", "equivalent", 0.03),
                   min_n=EQUIVALENCE_MIN_N, min_n_source=EQUIVALENCE_MIN_N_SOURCE,
                   controls=("zeroing every fed latent changes > 5% of answers (the fed positions are read)",))


@pytest.mark.claim(id="NEW-08", kind="empirical",
                   statement="the gain comes from compute, not content: replacing every fed latent by its mean over "
                             "problems (a training-free pause control: same steps, no problem-specific content) keeps "
                             "accuracy within +-3pp (TOST)",
                   source="Curriculum Is the Mechanism (claims-2026 NEW-08): a pause-token control matches the latent "
                          "model, 96.6% vs 97.0%, McNemar p=0.845",
                   reported={"pause control": 0.966, "latent model": 0.970}, hypothesis=NEW08)
def test_compute_not_content(codi_engine, answer_problems, answer_attention_trace, claim):
    problems = list(answer_problems)
    conds = {"mean": [[Intervention("latent_post_prj", FED_POSITIONS, Mean(answer_attention_trace))]] * len(problems),
             "zero": [[Intervention("latent_post_prj", FED_POSITIONS, Zero())]] * len(problems)}
    runs = run_conditions(codi_engine, [p.question for p in problems], conds)
    gold = golds(problems)
    base, mean = runs.correct("baseline", gold), runs.correct("mean", gold)
    zero_changed = runs.changed("zero")
    control = stats.proportion_evidence(int(zero_changed.sum()), len(problems),
                                        Prediction("answers changed by zeroing the fed latents", "greater", 0.05))
    claim.record(details={"accuracy": {"baseline": float(base.mean()), "mean latents": float(mean.mean()),
                                       "zero latents": float(runs.correct("zero", gold).mean())}},
                 statistics={"answers changed by zeroing (control)": control.value})
    claim.decide([stats.paired_binary_evidence(base, mean, NEW08.predictions[0])], n=len(problems),
                 controls={NEW08.controls[0]: shown(control)})
