"""Newer claims about latent dynamics (claims-2026.md NEW-01, 03, 06, 07; NEW-02 is beside ACC-03, NEW-08
beside ACC-04, whose runs they read).

Each claim re-reads a shared run where it can (the lens of the answer and template problems, the CCTA grid);
NEW-03 runs its own interventions. Positions are canonical (P0 = BOT, P_k fed e_k); where a
source numbers its latents ambiguously the reading used is stated in the claim.
"""

import numpy as np
import pytest

from codi_probe import extremes, stats
from codi_probe.engine import Intervention, Randomize, Record
from codi_probe.engine.positions import FED_POSITIONS, LATENT_POSITIONS
from codi_probe.experiments.common import decided_below_minimum, number_text, run_conditions
from codi_probe.hypothesis import Hypothesis, Prediction

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
def test_even_latents_store_numbers(answer_lens, ccta, mean_ablation, codi_options, claim):
    from codi_probe.experiments.corruption import ablation_types

    number = answer_lens.number_top1().astype(float)
    parity = number[:, _cols(EVEN)].mean(1) - number[:, _cols(ODD)].mean(1)
    changed = ccta.per_position("changed", "zero")
    damage = changed[:, _cols(EVEN)].mean(1) - changed[:, _cols(ODD)].mean(1)
    claim.record(details={"number_top1_rate_by_position": dict(zip(LATENT_POSITIONS, number.mean(0).tolist())),
                          "change_rate_by_ablation_type": ablation_types(ccta, mean_ablation, "changed"),
                          "layer": ccta.layer})
    if decided_below_minimum(claim, len(parity)):
        return
    claim.decide([stats.mean_evidence(parity, NEW01.predictions[0], seed=codi_options.seed, support=(-1, 1)),
                  stats.mean_evidence(damage, NEW01.predictions[1], seed=codi_options.seed, support=(-1, 1))],
                 n=len(parity))  # differences of rates


NEW03 = Hypothesis(Prediction("non-adjacent minus adjacent step influence, some (i, j >= i+2) (union over the 10 "
                              "pairs, Holm)", "greater", 0.0))


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
                             "latent h_j (j >= i+2) more than the next one h_(i+1) (relative change, mean over problems; "
                             "some pair (i, j), Holm over the 10)",
                   source="Dynamics Within Latent CoT (claims-2026 NEW-03; arXiv 2602.08783), on Coconut and CODI",
                   reported="n/r", hypothesis=NEW03)
def test_routing_is_non_local(step_influence, codi_options, claim):
    m = step_influence  # [n, i = P1..P6, j = P0..P6]
    # one paired difference per (i, j >= i+2), never the per-problem max over them (its mean is > 0 under any noise)
    gaps = {(i, j): m[:, i - 1, j] - m[:, i - 1, i + 1] for i in range(1, 5) for j in range(i + 2, 7)}
    claim.record(details={"influence matrix (rows e_i P1..P6, columns h_j P0..P6)": {
        "rows": list(FED_POSITIONS), "cols": list(LATENT_POSITIONS), "values": m.mean(0).tolist()}})
    if decided_below_minimum(claim, len(m)):
        return
    ev = [extremes.any_of([stats.mean_evidence(
        g, Prediction(f"h_{j} - h_{i + 1} under e_{i}", "greater", 0.0), seed=codi_options.seed)
        for (i, j), g in gaps.items()], NEW03.predictions[0])]
    claim.decide(ev, n=len(m))


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


NEW07 = Hypothesis(Prediction("answer changes under noise, P1 minus every later fed latent (intersection-union, "
                              "exact Tango test per pair)", "greater", 0.0))


@pytest.mark.claim(id="NEW-07", kind="empirical",
                   statement="the first latent is a causal hub: the same absolute Gaussian noise (sigma=1, relative "
                             "depth 0.5) at P1 changes more answers than at any later fed latent P2..P6",
                   source="claims-2026 NEW-07 (arXiv 2606.01243, ACL 2026): early latents are causal hubs",
                   reported="n/r", hypothesis=NEW07)
def test_first_latent_is_a_hub(ccta, codi_options, claim):
    changed = ccta.per_position("changed", "noise_1")[:, _cols(FED_POSITIONS)]  # [n, 6] P1..P6
    claim.record(details={"change_rate_by_position": dict(zip(FED_POSITIONS, changed.mean(0).tolist())),
                          "layer": ccta.layer})
    if decided_below_minimum(claim, len(changed)):
        return
    ev = extremes.every_pair_evidence(changed, 0, NEW07.predictions[0], seed=codi_options.seed)
    claim.decide([ev], n=len(changed))


NEW04 = Hypothesis((Prediction("mean pairwise cosine of h_1..h_6", "greater", 0.80),
                    Prediction("Page trend of the mean pairwise cosine of h_1..h_k over k = 2..6", "greater", 0.0)))


def pairwise_cosine(h) -> np.ndarray:
    """``[n, K-1]``: per problem, the mean pairwise cosine among the first k latents of ``h`` ``[n, K, D]``,
    for k = 2..K (a k-latent run's latents are the first k of the K-latent run: the loop is causal)."""
    import torch

    u = torch.nn.functional.normalize(h.double(), dim=-1)
    sim = (u @ u.transpose(1, 2)).numpy()  # [n, K, K]
    out = []
    for k in range(2, h.shape[1] + 1):
        iu = np.triu_indices(k, 1)
        out.append(sim[:, :k, :k][:, iu[0], iu[1]].mean(1))
    return np.stack(out, 1)


@pytest.mark.claim(id="NEW-04", kind="empirical",
                   statement="latents homogenise: the mean pairwise cosine of h_1..h_6 exceeds 0.8 and grows with the "
                             "number of latents (first k, k = 2..6, Page trend within problems)",
                   source="SIM-CoT (claims-2026 NEW-04; arXiv 2509.20317): more latents become similar and less "
                          "informative; step-level supervision prevents it",
                   reported="n/r", hypothesis=NEW04)
def test_latents_homogenise(template_trace, codi_options, claim):
    cos = pairwise_cosine(template_trace.latent_pre[:, 1:])  # [n, 5] for k = 2..6
    claim.record(details={"mean pairwise cosine by k": dict(zip(range(2, 7), cos.mean(0).tolist()))})
    if decided_below_minimum(claim, len(cos)):
        return
    claim.decide([stats.mean_evidence(cos[:, -1], NEW04.predictions[0], seed=codi_options.seed, support=(-1, 1)),
                  stats.page_evidence(cos, NEW04.predictions[1])], n=len(cos))


NEW05 = Hypothesis(Prediction("moved to the steered value: steering minus norm-matched random", "less", 0.05))


@pytest.mark.claim(id="NEW-05", kind="empirical",
                   statement="latents are insensitive to steering: adding the difference of step-1 group means "
                             "(mean e_k of another step-1 value minus the problem's own) at the fed latent where step1 "
                             "decodes best moves the answer to the steered value < 5pp more often than adding a "
                             "random vector of the same norm",
                   source="Do Latent Tokens Think? (claims-2026 NEW-05; arXiv 2512.21711), on Coconut; RB sprint 3: "
                          "difference-of-means steering ~ random-vector patching",
                   reported="n/r", hypothesis=NEW05)
def test_steering_is_no_better_than_random(codi_engine, template_problems, template_trace, codi_options, claim):
    import torch

    from codi_probe.design import implied_answer
    from codi_probe.engine import Add
    from codi_probe.experiments.carriers import decode_accuracy, grouped_folds, intermediate_values, scorable

    problems = list(template_problems)
    values = intermediate_values(problems, "step1")
    folds = grouped_folds(problems, seed=codi_options.seed)
    ok = scorable(values, folds)
    acc = [float(decode_accuracy(template_trace.latent_post[:, k], values, folds)[ok].mean()) if ok.any() else 0.0
           for k in range(6)]
    k = int(np.argmax(acc))  # e_(k+1), fed at P(k+1)
    e = template_trace.latent_post[:, k]
    groups = {v: np.flatnonzero(values == v) for v in np.unique(values)}
    rng = np.random.default_rng(codi_options.seed)
    gen = torch.Generator().manual_seed(codi_options.seed)
    rows, steer, rand, target = [], [], [], []
    for i, p in enumerate(problems):
        own = [j for j in groups[values[i]] if j != i]
        others = [v for v in groups if v != values[i]]
        if not own or not others:
            continue
        v2 = others[int(rng.integers(len(others)))]
        d = e[groups[v2]].mean(0) - e[own].mean(0)
        r = torch.randn(d.shape, generator=gen)
        rows.append(i)
        target.append(implied_answer(p, "step1", v2))
        steer.append([Intervention("latent_post_prj", (FED_POSITIONS[k],), Add(d))])
        rand.append([Intervention("latent_post_prj", (FED_POSITIONS[k],), Add(r * d.norm() / r.norm()))])
    if decided_below_minimum(claim, len(rows)):
        return
    sub = [problems[i] for i in rows]
    runs = run_conditions(codi_engine, [p.question for p in sub], {"steer": steer, "random": rand})
    moved, control = runs.correct("steer", target), runs.correct("random", target)
    claim.record(details={"position": FED_POSITIONS[k], "step1 decoding accuracy by fed position":
                          dict(zip(FED_POSITIONS, acc)), "moved": float(moved.mean()) if rows else None,
                          "random": float(control.mean()) if rows else None})
    claim.decide([stats.paired_binary_evidence(control, moved, NEW05.predictions[0])] if rows else [], n=len(rows))
