"""Logit-lens decodability of intermediate results per latent position (claims.md 4.H: LENS-02, LENS-10).

The lens is the last-layer post-norm state h_k at P_k through lm_head (the final norm applied once,
SAN-09); a match is an exact token match of a decoded token with the value (F-20: no substrings): the
top-1 for LENS-02, the top-k for LENS-10 and the other top-k claims."""

import numpy as np
import pytest
import torch

from codi_probe import extremes, stats
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.experiments.common import decided_below_minimum, number_text
from codi_probe.experiments.lens import (LENS10_ABSENT, LENS10_FOUND, LENS10_TOP_K, lens10_evidence,
                                         lens10_predictions)
from codi_probe.hypothesis import Hypothesis, Prediction, combine, shown


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


LENS10 = Hypothesis(lens10_predictions())


@pytest.mark.claim(id="LENS-10", kind="empirical",
                   statement=f"the final answer is not in the latents while the intermediates are: the answer is in "
                             f"the logit-lens top-{LENS10_TOP_K} for < {LENS10_ABSENT:.0%} of problems at every latent "
                             f"position P0..P6, while step1 (at P2) and step2 (at P4) are in it for > "
                             f"{LENS10_FOUND:.0%} (a lens that reads nothing refutes the claim). Differs from the source: "
                             f"its 'found (LENS-02)' is unquantified; > {LENS10_FOUND:.0%} in the top-{LENS10_TOP_K} at "
                             f"LENS-02's positions is the suite's reading of it, and k = {LENS10_TOP_K} is fixed "
                             f"(the CODI paper's top-5, LENS-05) where the source leaves k open",
                   source="AO Phase 2/3 (claims.md 4.H LENS-10): 16% / 2%; follows from include_last_cot=false; "
                          "test: top-k(h_k) contains the answer for <= 10% at every k, while step1/step2 are found",
                   reported=0.16, hypothesis=LENS10)
def test_final_answer_not_in_latents(template_problems, template_lens, lens_matches, claim):
    problems = list(template_problems)
    top = {"answer": template_lens.in_top([p.answer for p in problems], LENS10_TOP_K),
           "step1": template_lens.in_top([p.intermediates[0] for p in problems], LENS10_TOP_K),
           "step2": template_lens.in_top([p.intermediates[1] for p in problems], LENS10_TOP_K)}
    ev = lens10_evidence(top, LENS10.predictions)
    claim.record(details={  # the answer's top-1 rates (the report's lens panel), then the deciding top-k rates
        "rate_by_position": dict(zip(LATENT_POSITIONS, lens_matches["answer"][-1].mean(0).tolist())),
        "rate_by_layer_position": layer_grid(lens_matches["answer"]),
        f"top-{LENS10_TOP_K} rate by position": {name: dict(zip(LATENT_POSITIONS, m.mean(0).tolist()))
                                                 for name, m in top.items()}},
                 statistics={"position with the highest answer rate": ev[0].statistic.rsplit(" at ", 1)[1]})
    claim.decide(ev, n=len(problems))


# ---- the lens at the last block, read once per run (template_lens / answer_lens fixtures) ------------------

LENS03 = Hypothesis((Prediction("share of problems whose P(step1) peaks at P2", "greater", 0.5),
                     Prediction("share of problems whose P(step2) peaks at P4", "greater", 0.5)))


@pytest.mark.claim(id="LENS-03", kind="empirical",
                   statement="the lens probability of step1 peaks at P2 and that of step2 at P4, for most problems "
                             "(> 50%, the mode over prompts); rows whose value is not one token are left out"
                             ". Differs from the source: the 'P(answer) low at every k' half is left to LENS-10.",
                   source="CYW exp 2 (claims.md 4.H LENS-03): P(step1/step2/answer) under softmax(h_k E^T), k=0..6; "
                          "numbers n/r",
                   reported="n/r", hypothesis=LENS03)
def test_value_probability_peaks(template_lens, claim):
    ev, counts = [], {}
    for pred, name, pos in zip(LENS03.predictions, ("step1", "step2"), ("P2", "P4")):
        prob = template_lens.probability[name]
        ok = ~np.isnan(prob).any(1)
        peak = prob[ok].argmax(1) == LATENT_POSITIONS.index(pos)
        counts[name] = int(ok.sum())
        ev.append(stats.proportion_evidence(int(peak.sum()), max(int(ok.sum()), 1), pred))
    claim.record(details={f"mean P({name}) by position": dict(zip(LATENT_POSITIONS, np.nanmean(
                     template_lens.probability[name], 0).tolist())) for name in ("step1", "step2", "answer")},
                 statistics={f"problems with a one-token {k}": v for k, v in counts.items()})
    claim.decide(ev if min(counts.values()) else [], n=min(counts.values()))


EVEN_THOUGHTS = ("P0", "P2", "P4", "P6")  # the GS reproduction's thoughts {0, 2, 4, 6} = h_0, h_2, h_4, h_6
LENS05 = Hypothesis((Prediction("step1 in the top-5 of an even thought (correct problems)", "greater", 0.70),
                     Prediction("step2 in the top-5 of an even thought (correct problems)", "greater", 0.70)))


@pytest.mark.claim(id="LENS-05", kind="empirical",
                   statement="intermediate results are decodable from even thoughts: on correctly answered problems "
                             "step1 and step2 are each in the lens top-5 at P0, P2, P4 or P6 for > 70%"
                             ". Differs from the source: every correctly answered problem, not a 1-step subset"
                             " (problems are not selected by step count); the even/odd contrast is NEW-01 / LENS-08.",
                   source="CODI paper Table 3 (claims.md 4.H LENS-05): 97.1/83.9/75.0% for 1/2/3-step (top-5, "
                          "correct only); GS reproduction 50.0/44.7/56.3%",
                   reported={"1-step": 0.971, "2-step": 0.839, "3-step": 0.75}, hypothesis=LENS05)
def test_intermediates_at_even_thoughts(template_problems, template_trace, template_lens, claim):
    from codi_probe.data import answers_match

    problems = list(template_problems)
    correct = np.array([answers_match(a, p.answer) for a, p in zip(template_trace.answer, problems)], dtype=bool)
    even = [LATENT_POSITIONS.index(p) for p in EVEN_THOUGHTS]
    ev, rates = [], {}
    for pred, j in zip(LENS05.predictions, (0, 1)):
        hit = template_lens.in_top([p.intermediates[j] for p in problems], 5)[:, even].any(1)[correct]
        rates[f"step{j + 1}"] = float(hit.mean()) if len(hit) else None
        ev.append(stats.proportion_evidence(int(hit.sum()), max(len(hit), 1), pred))
    claim.record(details={"correct problems": int(correct.sum()), "rate": rates, "even thoughts": list(EVEN_THOUGHTS)})
    claim.decide(ev if correct.any() else [], n=int(correct.sum()))


LENS06 = Hypothesis(Prediction("number top-1 rate, some position minus another (union over the 42 ordered "
                               "pairs, Holm; exact Tango per pair)", "greater", 0.30))


@pytest.mark.claim(id="LENS-06", kind="empirical",
                   statement="positions differ in whether they decode to a number: the share of problems whose lens "
                             "top-1 at P_k is a number differs by > 30pp between the highest and lowest position (paired "
                             "tests of every ordered pair of positions, supported when some pair is after Holm)"
                             ". Differs from the source: a > 30pp gap between some two positions instead of any"
                             " difference by chi2 (deliberately stricter: with hundreds of problems chi2 finds"
                             " trivial differences).",
                   source="GS final-layer decoding (claims.md 4.H LENS-06): M-L1B positions 1 & 4 >= 85%, 3 4.7% "
                          "(chi2=745); M-GPT2 0,2,4 14-29%, 1,3,5 0%",
                   reported={"M-L1B max": 0.85, "M-L1B min": 0.047}, hypothesis=LENS06)
def test_number_decoding_differs_by_position(answer_lens, codi_options, claim):
    number = answer_lens.number_top1().astype(float)  # [n, 7]
    claim.record(details={"number_top1_rate_by_position": dict(zip(LATENT_POSITIONS, number.mean(0).tolist()))})
    if decided_below_minimum(claim, len(number)):
        return
    claim.record(statistics={"cochran_q_p": stats.cochran_q(number.astype(int))})
    ev = extremes.spread_evidence(number, LENS06.predictions[0], seed=codi_options.seed)
    claim.decide([ev], n=len(number))


LENS08 = Hypothesis((Prediction("answer detection (top-10), even P2/P4 minus odd P3/P5", "greater", 0.0),
                     Prediction("lens entropy (nats), odd P3/P5 minus even P2/P4", "greater", 0.0)))


@pytest.mark.claim(id="LENS-08", kind="empirical",
                   statement="compute/store alternation: the final answer is in the lens top-10 at the even latents "
                             "P2/P4 more often than at the odd P3/P5 (exact Tango test), and the lens entropy is higher "
                             "at the odd ones (RB's 'latent k' read as P_k)",
                   source="RB sprints 1-2 (claims.md 4.H LENS-08): tuned-lens answer detection peaks at even latents "
                          "2 and 4, entropy peaks at odd 3 and 5; M-CYW, GSM8K",
                   reported="n/r", hypothesis=LENS08)
def test_even_odd_alternation(answer_problems, answer_lens, codi_options, claim):
    top = answer_lens.in_top([p.answer for p in answer_problems], 10)
    idx = {p: LATENT_POSITIONS.index(p) for p in ("P2", "P3", "P4", "P5")}
    even, odd = top[:, [idx["P2"], idx["P4"]]].any(1), top[:, [idx["P3"], idx["P5"]]].any(1)
    ent = answer_lens.entropy
    gap = ent[:, [idx["P3"], idx["P5"]]].mean(1) - ent[:, [idx["P2"], idx["P4"]]].mean(1)
    claim.record(details={"answer_top10_rate_by_position": dict(zip(LATENT_POSITIONS, top.mean(0).tolist())),
                          "mean_entropy_by_position": dict(zip(LATENT_POSITIONS, ent.mean(0).tolist()))})
    if decided_below_minimum(claim, len(gap)):
        return
    claim.decide([stats.paired_binary_evidence(odd, even, LENS08.predictions[0]),
                  stats.mean_evidence(gap, LENS08.predictions[1], seed=codi_options.seed)], n=len(gap))


LENS11_READS = "the shared lens reads step1 above the most common value's share (held-out top-1, mean over h_1..h_6)"
LENS11 = Hypothesis(Prediction("top-1 gain of position-specific over shared affine lens (step1, mean over h_1..h_6)",
                               "less", 0.02), controls=(LENS11_READS,))


@pytest.mark.claim(id="LENS-11", kind="empirical",
                   statement="position-specific tuned lenses add little: affine maps fitted per latent position decode "
                             "step1 from h_1..h_6 < 2pp better (held-out top-1, per problem) than one map shared by all "
                             "positions (ridge to the token's unembedding row; folds hold out operand pairs). Differs "
                             "from the source: a control is added, that the shared lens reads step1 above the most "
                             "common value's share (the source's read 18%), so that two lenses that read nothing "
                             "(random weights) cannot pass for 'adds little'",
                   source="GS position-specific tuned lens (claims.md 4.H LENS-11): +1.33 top-1 / +1.86 top-5 pp "
                          "(19.76% vs 18.43%); a negative result",
                   reported={"shared": 0.1843, "position-specific": 0.1976}, hypothesis=LENS11)
def test_position_specific_lens_adds_little(codi_engine, template_problems, template_trace, codi_options, claim):
    from codi_probe.experiments.carriers import operand_group
    from codi_probe.experiments.lens import affine_lens_hits, value_token_ids

    problems = list(template_problems)
    tok = codi_engine.model.tokenizer
    ids = [value_token_ids(tok, p.intermediates[0]) for p in problems]
    keep = np.array([bool(i) for i in ids])
    targets = np.array([i[0] for i in ids if i])
    h = template_trace.latent_pre[keep, 1:].double().numpy()
    groups = np.array([repr(operand_group(p)) for p, k in zip(problems, keep) if k])
    unembed = codi_engine.model.lm_head.weight.detach().double().cpu().numpy()
    if decided_below_minimum(claim, len(targets)):
        return
    specific = affine_lens_hits(h, targets, unembed, groups, shared=False, seed=codi_options.seed)
    shared = affine_lens_hits(h, targets, unembed, groups, shared=True, seed=codi_options.seed)
    gain = specific.mean(1) - shared.mean(1)
    majority = float(np.unique(targets, return_counts=True)[1].max() / len(targets))
    reads = stats.mean_evidence(shared.mean(1), Prediction("shared-lens top-1 rate", "greater", majority),
                                seed=codi_options.seed)
    claim.record(statistics={"shared-lens top-1 rate (control)": reads.value, "most common step1 share": majority})
    claim.record(details={"top-1 by position": {"specific": dict(zip(FED_POSITIONS_NAMES, specific.mean(0).tolist())),
                                                "shared": dict(zip(FED_POSITIONS_NAMES, shared.mean(0).tolist()))},
                          "problems with a one-token step1": int(keep.sum())})
    ev = [stats.mean_evidence(gain, LENS11.predictions[0], seed=codi_options.seed, support=(-1, 1))] if len(gain) > 1 else []
    claim.decide(ev, n=len(gain), controls={LENS11_READS: shown(reads)})


FED_POSITIONS_NAMES = LATENT_POSITIONS[1:]
