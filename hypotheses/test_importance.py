"""Position importance under single-position corruption (claims.md 4.B: IMP-01, IMP-02, IMP-13).

Canonical positions (claims.md 1.3): the seeds' "token 5" is P5; their pipelines never had P6.
Importance is measured per problem on the baseline-correct problems (the seeds' definition) and the
effect is always a paired, problem-level comparison.
"""

import numpy as np
import pytest

from codi_probe import extremes, stats
from codi_probe.engine import Intervention, Randomize
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.experiments.common import decided_below_minimum, filtered_effect, golds, run_conditions
from codi_probe.experiments.corruption import ablation_types
from codi_probe.hypothesis import (EQUIVALENCE_MIN_N, EQUIVALENCE_MIN_N_SOURCE, Hypothesis, Prediction, any_shown,
                                   combine)

IMP01_REPORTED = {"P5": 0.343, "P1": 0.186, "P4": 0.186, "P2": 0.171, "P0": 0.157, "P3": 0.114}
IMP01 = Hypothesis(
    (Prediction("failure-rate gap to every other position (intersection-union over the 6 pairs)", "greater", 0.05),
     Prediction("failure rate - 2 x some other position's (union over the 6 pairs, Holm)", "greater", 0.0)),
    min_n=100, min_n_source="claims.md IMP-01: >= 100 problems", family="IMP-01", correction="holm")


def importance_outcomes(ccta, seed: int) -> dict:
    """Every position's IMP-01 evidence and outcome, on the baseline-correct problems (the seeds'
    definition of a failure), from the per-problem failure rates averaged over the 7 methods."""
    keep = ccta.baseline_correct
    rates = ccta.per_position("failure")[keep]  # [n_correct, 7]
    n = int(keep.sum())
    out = {}
    for k, pos in enumerate(LATENT_POSITIONS):
        ev = [] if n < 2 else importance_evidence(rates, k, seed)
        out[pos] = (ev, combine(IMP01, ev, n))
    return out


def importance_evidence(rates: np.ndarray, k: int, seed: int) -> list:
    """IMP-01's two predictions for position ``k`` from per-problem rates ``[n, 7]``: paired tests of
    ``rate_k − rate_j`` for every other ``j`` (all must exceed 5 pp) and of ``rate_k − 2 rate_j`` (some ``j``
    must exceed 0), never the max/min of the sample means (biased: issue 28)."""
    return [extremes.every_pair_evidence(rates, k, IMP01.predictions[0], seed=seed),
            extremes.some_pair_evidence(rates, k, IMP01.predictions[1], scale=2.0, seed=seed)]


@pytest.fixture(scope="module")
def importance(ccta, codi_options):
    return importance_outcomes(ccta, codi_options.seed)


@pytest.mark.claim(id="IMP-01", kind="empirical",
                   statement="one latent position is the most important: its failure rate under single-position "
                             "corruption (7 methods, relative depth 0.5) beats every other position by >= 5pp "
                             "(paired per-problem differences, all 6 pairs) with a >= 2x gap to the least "
                             "important (some pair, Holm over the 6) (Holm over the 7 positions)"
                             ". Differs from the source: any position may be the most important (Holm over P0..P6),"
                             " not T5 named in advance: the sources' T-index names different positions on different"
                             " checkpoints (claims.md C-02).",
                   source="GS CCTA test (claims.md 4.B IMP-01): 'Token 5 most important, 3x gap'; M-L1B, n=10",
                   reported=IMP01_REPORTED, hypothesis=IMP01)
@pytest.mark.parametrize("position", LATENT_POSITIONS)
def test_position_is_most_important(ccta, importance, claim, position):
    keep = ccta.baseline_correct
    rates = ccta.per_position("failure")[keep]
    means = rates.mean(0) if keep.any() else np.zeros(len(LATENT_POSITIONS))
    claim.record(details={"failure_by_method_position": method_position_matrix(ccta),
                          "failure_rate_by_position": dict(zip(LATENT_POSITIONS, means.tolist())),
                          "baseline_correct": int(keep.sum()), "n_problems": len(keep), "layer": ccta.layer,
                          "methods": list(ccta.methods), "filter": "baseline-correct problems (the seeds' definition)"})
    evidence, _ = importance[position]
    claim.decide(evidence, n=int(keep.sum()), family={p: o for p, (_, o) in importance.items()}, member=position)


def method_position_matrix(ccta) -> dict:
    """Per method and position: failure rate over the baseline-correct problems with Wilson CIs, or,
    when no problem is baseline-correct (a random model), the answer-change rate over all problems."""
    keep = ccta.baseline_correct
    use_failure = bool(keep.sum())
    rows = {"values": [], "lo": [], "hi": []}
    for m in ccta.methods:
        cells = [stats.proportion(int(x[keep].sum()), int(keep.sum())) if use_failure else
                 stats.proportion(int(y.sum()), len(y))
                 for x, y in ((ccta.failure[m][p], ccta.changed[m][p]) for p in ccta.positions)]
        for key, attr in (("values", "value"), ("lo", "lo"), ("hi", "hi")):
            rows[key].append([getattr(c, attr) for c in cells])
    return {"rows": list(ccta.methods), "cols": list(ccta.positions), **rows, "level": 0.95,
            "metric": "failure rate (baseline-correct problems)" if use_failure else "answer change rate (all problems)"}


IMP02 = Hypothesis(Prediction("P5 zero-ablation failure rate - 3 x mean(other positions)", "greater", 0.0))


@pytest.mark.claim(id="IMP-02", kind="empirical",
                   statement="zero-ablating P5 at relative depth 0.5 fails >= 3x as often as the mean of the other "
                             "positions (failures normalised by the baseline-correct problems)",
                   source="GS CCTA full (claims.md 4.B IMP-02): T5 26.0%, others 6-10%; M-L1B, n=100",
                   reported={"P5": 0.26, "P3": 0.10, "P2": 0.08, "P0": 0.07, "P1": 0.06, "P4": 0.06},
                   hypothesis=IMP02)
def test_p5_zero_ablation_dominates(ccta, mean_ablation, codi_options, claim):
    zero, n, details = zero_failure(ccta, mean_ablation)
    k = LATENT_POSITIONS.index("P5")
    claim.record(details=details, statistics={"cochran_q_p": stats.cochran_q(zero.astype(int)) if n else None})
    ev = [] if n < 2 else [stats.rows_evidence(
        zero, lambda m: m[..., k] - 3 * np.delete(m, k, axis=-1).mean(-1), IMP02.predictions[0], seed=codi_options.seed)]
    claim.decide(ev, n=n)


def zero_failure(ccta, mean_ablation) -> tuple[np.ndarray, int, dict]:
    """``[n, 7]`` zero-ablation failures on the baseline-correct problems (the seeds' definition), their
    number and the details every zero-only importance claim records, with the same failures under mean and
    resample ablation beside (the verdict is the claim's own zero ablation)."""
    keep = ccta.baseline_correct
    zero = ccta.per_position("failure", "zero")[keep]
    n = int(keep.sum())
    return zero, n, {"zero_failure_by_position": dict(zip(LATENT_POSITIONS, zero.mean(0).tolist())) if n else {},
                     "failure_by_ablation_type": ablation_types(ccta, mean_ablation, rows=keep),
                     "selection": zero_selection(ccta), "baseline_correct": n, "layer": ccta.layer}


def zero_selection(ccta) -> dict:
    """The zero-ablation effect on the baseline-correct problems (failures) beside the unfiltered one (answer
    changes over every problem), per position P0..P6 (F-17)."""
    keep = ccta.baseline_correct
    return filtered_effect(ccta.per_position("failure", "zero")[keep], ccta.per_position("changed", "zero"), keep,
                           "baseline-correct problems (failure = baseline correct, ablated wrong); unfiltered: "
                           "answer changes over every problem")


IMP13 = Hypothesis(
    Prediction("accuracy change, random at P6", "equivalent", 0.03),
    min_n=EQUIVALENCE_MIN_N, min_n_source=EQUIVALENCE_MIN_N_SOURCE,
    controls=("random at P3 or P5 drops accuracy by > 20pp",))


@pytest.mark.claim(id="IMP-13", kind="empirical",
                   statement="replacing the last fed latent (input at P6) by a norm-matched random vector leaves "
                             "accuracy unchanged (TOST +-3pp); positive control: the same at P3 or P5 drops it > 20pp",
                   source="AF via AO Phase 2 (claims.md 4.B IMP-13 / 8.4): qualitative; M-CYW templates",
                   hypothesis=IMP13)
def test_last_latent_is_replaceable(random_latents, claim):
    base, acc = random_latents["baseline"], random_latents
    drop = Prediction("accuracy change, random at P3/P5", "less", -0.20)
    drops = {pos: stats.paired_binary_evidence(base, acc[pos], drop) for pos in ("P3", "P5")}
    control = any_shown(drops.values())
    claim.record(details={"baseline_correct": int(base.sum()),
                          "accuracy": {"baseline": base.mean(), **{k: acc[k].mean() for k in ("P3", "P5", "P6")}}},
                 statistics={f"accuracy change, random at {pos} (control)": e.value for pos, e in drops.items()})
    ev = [stats.paired_binary_evidence(base, acc["P6"], IMP13.predictions[0])]
    claim.decide(ev, n=len(base), controls={IMP13.controls[0]: control})


@pytest.fixture(scope="module")
def random_latents(codi_engine, template_problems, codi_options):
    """Correctness per template problem: the baseline and a norm-matched random fed latent at P3, P5 or P6;
    ``changed@P6``: the P6 rows whose answer differs from the baseline's."""
    problems = list(template_problems)
    qs = [p.question for p in problems]
    conds = {f"random@{pos}": [[Intervention("latent_post_prj", (pos,), Randomize(codi_options.seed * 1000 + i))]
                               for i in range(len(qs))] for pos in ("P3", "P5", "P6")}
    runs = run_conditions(codi_engine, qs, conds)
    gold = golds(problems)
    return {"baseline": runs.correct("baseline", gold), "changed@P6": runs.changed("random@P6"),
            **{pos: runs.correct(f"random@{pos}", gold) for pos in ("P3", "P5", "P6")}}


PATCH04 = Hypothesis(Prediction("answer-change rate, random e_6 at P6", "less", 0.05))


@pytest.mark.claim(id="PATCH-04", kind="empirical",
                   statement="random replacement of z5 (e_6, fed at P6) changes < 5% of answers; z6 (e_7) is never fed "
                             "(IMP-13a), so it is not tested",
                   source="AO/AF (claims.md 4.I PATCH-04, = IMP-13): random replacement of z5/z6 has no effect",
                   reported=0.0, hypothesis=PATCH04)
def test_random_last_latent_changes_few_answers(random_latents, claim):
    changed = random_latents["changed@P6"]
    claim.decide([stats.proportion_evidence(int(changed.sum()), len(changed), PATCH04.predictions[0])], n=len(changed))


@pytest.mark.claim(id="IMP-13a", kind="invariant",
                   statement="randomising the never-fed e_7 = prj(h_6) (the seeds' 'index 6') leaves every output "
                             "unchanged: with a norm-matched random vector wherever prj's input is the clean h_6, the "
                             "latents h_0..h_6, e_1..e_6 stay within the dtype's tolerance and every row's greedy "
                             "answer tokens are identical; the engine also refuses to address e_7 (P7)",
                   source="claims.md 4.B IMP-13 (a) and 1.3: random at CYW index 6 => outputs identical to baseline")
def test_e7_randomised_changes_nothing(codi_engine, codi_questions, claim):
    from codi_probe.experiments.never_fed import randomise_projection_of

    refused = 0
    for site in ("latent_pre_prj", "latent_post_prj"):
        try:
            Intervention(site, (f"P{codi_engine.num_latent + 1}",))
        except ValueError:
            refused += 1
    check = randomise_projection_of(codi_engine, codi_questions, max_new_tokens=8)
    claim.record("max |randomised e_7 - clean| over the latents in tolerance units", check.latent_deviation,
                 threshold=1.0, n=check.rows,
                 statistics={"rows whose answer tokens changed": check.tokens_changed,
                             "prj outputs replaced (prj(h_6) computed)": check.hits,
                             "refused addresses of e_7": refused})
    assert claim.check(check.unchanged and refused == 2)


# ---- further readings of the same CCTA grid (claims.md 4.B IMP-03, 05, 06, 09, 11) -----------------------
# No new runs: each claim reads one method's column of the grid the fixture already holds.

IMP03 = Hypothesis(Prediction("P5 zero-ablation failure rate - every other position's (intersection-union, "
                              "exact Tango test per pair)", "greater", 0.0))


@pytest.mark.claim(id="IMP-03", kind="empirical",
                   statement="zero ablation alone ranks P5 first: its failure rate (baseline-correct problems) beats "
                             "every other position's",
                   source="GS codi_attention_interp README (claims.md 4.B IMP-03): same 10 problems as IMP-01, "
                          "zero only: T5 40%, T1 20%, T4 20%, T0/T2/T3 10%; contradicts IMP-01's ordering (C-04)",
                   reported={"P5": 0.40, "P1": 0.20, "P4": 0.20, "P0": 0.10, "P2": 0.10, "P3": 0.10},
                   hypothesis=IMP03)
def test_zero_ablation_ranks_p5_first(ccta, mean_ablation, codi_options, claim):
    zero, n, details = zero_failure(ccta, mean_ablation)
    k = LATENT_POSITIONS.index("P5")
    claim.record(details=details)
    ev = [] if n < 2 else [extremes.every_pair_evidence(zero, k, IMP03.predictions[0], seed=codi_options.seed)]
    claim.decide(ev, n=n)


IMP05 = Hypothesis(Prediction("answer-change rate, resample at P5", "less", 0.05),
                   controls=("resampling some other position changes > 5% of answers",))


@pytest.mark.claim(id="IMP-05", kind="empirical",
                   statement="P5 has no causal effect: replacing its activation (relative depth 0.5) by another "
                             "problem's changes < 5% of answers, while resampling some other position changes more",
                   source="GS operation_intervention (claims.md 4.B IMP-05): T5 swap/random 0.0% answer changes, "
                          "T1 random 46.7%; M-L1B, 60 problems",
                   reported={"P5": 0.0, "P1": 0.467}, hypothesis=IMP05)
def test_p5_resample_has_no_effect(ccta, claim):
    changed = ccta.per_position("changed", "random")  # [n, 7]
    n = changed.shape[0]
    k = LATENT_POSITIONS.index("P5")
    others = [stats.proportion_evidence(int(changed[:, j].sum()), n,
                                        Prediction(f"answer-change rate, resample at {p}", "greater", 0.05))
              for j, p in enumerate(LATENT_POSITIONS) if j != k]
    claim.record(details={"change_rate_by_position": dict(zip(LATENT_POSITIONS, changed.mean(0).tolist())),
                          "layer": ccta.layer, "method": "random (another problem's activation)"})
    claim.decide([stats.proportion_evidence(int(changed[:, k].sum()), n, IMP05.predictions[0])], n=n,
                 controls={IMP05.controls[0]: any_shown(others)})


IMP06 = Hypothesis(Prediction("mean within-problem Spearman(zero KL, resample KL)", "equivalent", 0.2))


@pytest.mark.claim(id="IMP-06", kind="empirical",
                   statement="ablation and resampling measure orthogonal importance: within a problem, the positions' "
                             "zero-ablation and resampling effects (answer-token KL) are uncorrelated (mean Spearman "
                             "within +-0.2 of 0)",
                   source="GS resampling table (claims.md 4.B IMP-06): r(ablation, resampling) = -0.065, p=0.90 over "
                          "6 positions (F-05: n=6, pooled); here one correlation per problem",
                   reported=-0.065, hypothesis=IMP06)
def test_ablation_and_resampling_orthogonal(ccta, codi_options, claim):
    zero, resample = ccta.per_position("kl", "zero"), ccta.per_position("kl", "random")
    rhos = stats.within_problem_rhos(zero, resample)
    claim.record(details={"problems with spread in both rows": len(rhos), "layer": ccta.layer,
                          "mean KL by position": {"zero": dict(zip(LATENT_POSITIONS, zero.mean(0).tolist())),
                                                  "random": dict(zip(LATENT_POSITIONS, resample.mean(0).tolist()))}})
    ev = [] if len(rhos) < 2 else [stats.mean_evidence(rhos, IMP06.predictions[0], seed=codi_options.seed,
                                                         support=(-1, 1))]
    claim.decide(ev, n=len(rhos))


IMP09 = Hypothesis(Prediction("mean single-position zero-ablation failure rate over P0..P5", "less", 0.10))


@pytest.mark.claim(id="IMP-09", kind="empirical",
                   statement="single-position zero ablation is mild: averaged over P0..P5 it makes < 10% of all "
                             "problems fail (baseline correct, ablated wrong)",
                   source="GS GPT-2 token ablation (claims.md 4.B IMP-09): drops T0 6, T1 7, T2 18, T3 20, T4 7, "
                          "T5 7pp; Llama '~4% average per token'; contradicts IMP-02 (T5 26%)",
                   reported={"P0": 0.06, "P1": 0.07, "P2": 0.18, "P3": 0.20, "P4": 0.07, "P5": 0.07, "Llama mean": 0.04},
                   hypothesis=IMP09)
def test_single_position_ablation_is_mild(ccta, mean_ablation, codi_options, claim):
    fail = ccta.per_position("failure", "zero")[:, :6]  # over all problems, as the source divides
    claim.record(details={"failure_by_position": dict(zip(LATENT_POSITIONS[:6], fail.mean(0).tolist())),
                          "failure_by_ablation_type": ablation_types(ccta, mean_ablation),
                          "baseline accuracy": float(ccta.baseline_correct.mean()), "layer": ccta.layer})
    if decided_below_minimum(claim, fail.shape[0]):
        return
    claim.decide([stats.mean_evidence(fail.mean(1), IMP09.predictions[0], seed=codi_options.seed, support=(0, 1))],
                 n=fail.shape[0])


IMP11 = Hypothesis(tuple(Prediction(f"answer-change rate, resample at {p}", "less", 0.20) for p in LATENT_POSITIONS[:6]))


@pytest.mark.claim(id="IMP-11", kind="empirical",
                   statement="swapping one position's activation from another problem changes < 20% of answers at "
                             "every position P0..P5"
                             ". Differs from the source: tests the reported change rates (3-17%) as < 20% per"
                             " position; contamination needs a donor-implied answer, which GSM8K problems do not"
                             " define.",
                   source="GS resampling (claims.md 4.B IMP-11): 3.0% (CT3) to 16.9% (CT2); self-swap 30/30 "
                          "identical (SAN-03)",
                   reported={"min": 0.03, "max": 0.169}, hypothesis=IMP11)
def test_resampling_changes_few_answers(ccta, claim):
    changed = ccta.per_position("changed", "random")[:, :6]
    n = changed.shape[0]
    ev = [stats.proportion_evidence(int(changed[:, j].sum()), n, pred) for j, pred in enumerate(IMP11.predictions)]
    worst = max(range(len(ev)), key=lambda j: ev[j].value)  # the primary statistic shown: the highest rate
    claim.record(details={"change_rate_by_position": dict(zip(LATENT_POSITIONS[:6], changed.mean(0).tolist())),
                          "layer": ccta.layer})
    claim.decide([ev[worst]] + [e for j, e in enumerate(ev) if j != worst], n=n)


# ---- position sets (claims.md 4.B IMP-04, 07, 08, 10; F-15): one batched run, every effect named by its set ---

FIVE = LATENT_POSITIONS[:6]  # the seeds' six positions: GS tokens 0..5 = P0..P5 (they never had P6)
PREFIXES = [FIVE[:k] for k in range(2, 7)]  # {P0,P1} .. {P0..P5}; {P0} alone is the CCTA's zero@P0
KEEP_ONLY = {p: [q for q in FIVE if q != p] for p in FIVE}  # zero five, keep one
SUBADDITIVE = (("P0", "P1"), ("P1", "P2"), ("P0", "P1", "P2"), ("P0", "P4"))


@pytest.fixture(scope="module")
def set_runs(codi_engine, answer_problems, ccta, codi_options):
    """The position sets under zero, mean and resample ablation (one batched run each; the mean and the
    donors come from one clean run of the same problems). Verdicts use zero, the seeds' method; the other
    two are recorded beside (claims-2026 method lessons)."""
    from codi_probe.engine import Record
    from codi_probe.experiments.ablation import METHODS, set_ablation

    problems = list(answer_problems)
    sets = [*PREFIXES, *KEEP_ONLY.values(), *(s for s in SUBADDITIVE if len(s) == 2 and s != ("P0", "P1"))]
    recorded = [FIVE[:4], FIVE, KEEP_ONLY["P5"], *SUBADDITIVE]  # the sets IMP-04/10 record by ablation type
    clean = codi_engine.run([p.question for p in problems], record=Record(sites=("resid_post",)), max_new_tokens=16)
    return {m: set_ablation(codi_engine, problems, sets if m == "zero" else recorded, layer=ccta.layer, method=m,
                            clean=clean, seed=codi_options.seed) for m in METHODS}


@pytest.fixture(scope="module")
def position_sets(set_runs):
    return set_runs["zero"]


def by_method(set_runs, positions, what: str = "accuracy") -> dict:
    """One set's ``what`` (accuracy or failure rate, baseline-correct problems for failures) per ablation type."""
    out = {}
    for m, run in set_runs.items():
        e = run[positions]
        keep = run.baseline_correct
        out[m] = float(e.correct[keep].mean()) if what == "accuracy" and keep.any() else \
            float(e.failure.mean()) if what == "failure" else None
    return out


SAME_BASELINE = "the set run's baseline equals the CCTA grid's (the single-position terms share it: F-16)"
IMP04 = Hypothesis((Prediction("accuracy with P0..P3 zeroed, baseline-correct problems (> 20%)", "greater", 0.20),
                    Prediction("accuracy with P0..P3 zeroed, baseline-correct problems (< 80%)", "less", 0.80),
                    Prediction("accuracy with P0..P5 zeroed, baseline-correct problems", "less", 0.20),
                    Prediction("keep-only-P5 accuracy - mean keep-only accuracy of P0..P4", "greater", 0.15)),
                   controls=(SAME_BASELINE,))


@pytest.mark.claim(id="IMP-04", kind="empirical",
                   statement="a threshold, not a cliff: zeroing 4 of the 6 positions (P0..P3, relative depth 0.5) "
                             "leaves 20-80% of baseline-correct problems correct, zeroing all six < 20%, and keeping "
                             "only P5 (zeroing the other five) beats keeping only any other position by >= 15pp"
                             ". Differs from the source: the minimum is 50 baseline-correct problems, not 100"
                             " problems (the default run scores 100 problems; a minimum of 100 baseline-correct ones"
                             " would leave the claim undecided there).",
                   source="GS token_threshold (claims.md 4.B IMP-04): 4/6 corrupted 100% -> 47.5%; 6/6 0-20%; "
                          "keep-only T5 70-80%, T1/T2 ~60%, T0/T3/T4 < 50%; 10 problems",
                   reported={"4 of 6": 0.475, "keep-only P5": 0.75}, hypothesis=IMP04)
def test_threshold_not_cliff(position_sets, set_runs, ccta, codi_options, claim):
    keep = position_sets.baseline_correct
    n = int(keep.sum())
    four, six = position_sets[FIVE[:4]].correct[keep], position_sets[FIVE].correct[keep]
    kept = np.stack([position_sets[KEEP_ONLY[p]].correct[keep] for p in FIVE], 1).astype(float)  # [n, 6]
    claim.record(details={"effects": {k: e.summary() for k, e in position_sets.effects.items()},
                          "keep-only accuracy": dict(zip(FIVE, kept.mean(0).tolist())) if n else {},
                          "accuracy by ablation type (baseline-correct)": {
                              "P0..P3": by_method(set_runs, FIVE[:4]), "P0..P5": by_method(set_runs, FIVE),
                              "keep only P5": by_method(set_runs, KEEP_ONLY["P5"])},
                          "layer": position_sets.layer, "method": position_sets.method})
    ev = [] if n < 2 else [
        stats.proportion_evidence(int(four.sum()), n, IMP04.predictions[0]),
        stats.proportion_evidence(int(four.sum()), n, IMP04.predictions[1]),
        stats.proportion_evidence(int(six.sum()), n, IMP04.predictions[2]),
        stats.mean_evidence(kept[:, 5] - kept[:, :5].mean(1), IMP04.predictions[3], seed=codi_options.seed,
                            support=(-1, 1))]
    claim.decide(ev, n=n, controls={SAME_BASELINE: bool(np.array_equal(keep, ccta.baseline_correct))})


IMP07 = Hypothesis(Prediction("single-position zero failure, mean of P4,P5 - mean of P0,P1,P2", "greater", 0.0))


@pytest.mark.claim(id="IMP-07", kind="empirical",
                   statement="late positions matter more than early ones: the mean single-position zero-ablation "
                             "failure of P4 and P5 exceeds that of P0, P1 and P2 (baseline-correct problems); the "
                             "seeds' prefix-cumulative sets are recorded beside, each named by its whole set (F-15)",
                   source="GS MECH-02 step importance (claims.md 4.B IMP-07): 0.000, 0.145, 0.468, 0.528, 0.556, "
                          "0.868 for 'positions 0..5' = zeroed prefixes of 0..5 positions; 1000 problems",
                   reported={"P0": 0.0, "P1": 0.145, "P2": 0.468, "P3": 0.528, "P4": 0.556, "P5": 0.868},
                   hypothesis=IMP07)
def test_late_positions_matter_more(position_sets, ccta, mean_ablation, codi_options, claim):
    zero, n, by_type = zero_failure(ccta, mean_ablation)
    late_minus_early = zero[:, [4, 5]].mean(1) - zero[:, [0, 1, 2]].mean(1)
    prefix = {"{P0}": {"positions": ["P0"], "set size": 1, "failure rate": float(zero[:, 0].mean()) if n else None}}
    prefix.update({position_sets[s].label: position_sets[s].summary() for s in PREFIXES})
    claim.record(details={"single-position zero failure": dict(zip(LATENT_POSITIONS, zero.mean(0).tolist())) if n else {},
                          "prefix-cumulative sets (the seeds' design)": prefix, "layer": ccta.layer,
                          "failure_by_ablation_type": by_type["failure_by_ablation_type"]})
    ev = [] if n < 2 else [stats.mean_evidence(late_minus_early, IMP07.predictions[0], seed=codi_options.seed,
                                                support=(-1, 1))]  # a difference of failure rates
    claim.decide(ev, n=n)


IMP08 = Hypothesis(Prediction("zero failure at number-decoding minus other positions", "less", 0.05))


@pytest.mark.claim(id="IMP-08", kind="empirical",
                   statement="positions whose lens top-1 is a number are not more important: per problem, the mean "
                             "single-position zero-ablation failure at those positions exceeds that at the others by "
                             "< 5pp (counts matched: every effect is one position)",
                   source="GS position-type ablation (claims.md 4.B IMP-08): number vs non-number positions 0.0/0.0% "
                          "(GPT-2), 2.6/3.8% (Llama)",
                   reported={"GPT-2": [0.0, 0.0], "Llama": [0.026, 0.038]}, hypothesis=IMP08)
def test_number_positions_not_more_important(ccta, mean_ablation, answer_lens, codi_options, claim):
    fail = ccta.per_position("failure", "zero")  # [n, 7], over all problems like the source
    number = answer_lens.number_top1()
    both = number.any(1) & ~number.all(1)
    diff = np.array([fail[i, number[i]].mean() - fail[i, ~number[i]].mean() for i in np.flatnonzero(both)])
    claim.record(details={"problems with number and non-number positions": int(both.sum()), "layer": ccta.layer,
                          "failure_by_ablation_type": ablation_types(ccta, mean_ablation)})
    ev = [] if len(diff) < 2 else [stats.mean_evidence(diff, IMP08.predictions[0], seed=codi_options.seed,
                                                         support=(-1, 1))]  # a difference of failure rates
    claim.decide(ev, n=len(diff))


IMP10 = Hypothesis(tuple(Prediction(f"interaction, {'+'.join(s)}: failure(set) - sum of singles", "less", 0.0)
                         for s in SUBADDITIVE), controls=(SAME_BASELINE,))


@pytest.mark.claim(id="IMP-10", kind="empirical",
                   statement="multi-position ablations are sub-additive: for P0+P1, P1+P2, P0+P1+P2 and P0+P4, zeroing "
                             "the set fails less often than the sum of its single-position failures (same problems, "
                             "same baseline)",
                   source="GS multi-position blocking (claims.md 4.B IMP-10): all 6 tested sets sub-additive, e.g. "
                          "CT0+CT1 drop 15.6 vs additive 24.6 (attention-mask method; here zero ablation)",
                   reported={"P0+P1": [0.156, 0.246], "P1+P2": [0.096, 0.205], "P0+P1+P2": [0.196, 0.358]},
                   hypothesis=IMP10)
def test_ablations_are_subadditive(position_sets, set_runs, ccta, codi_options, claim):
    single = ccta.per_position("failure", "zero").astype(float)  # [n, 7]
    inter = {s: position_sets[s].failure.astype(float) - single[:, [LATENT_POSITIONS.index(p) for p in s]].sum(1)
             for s in SUBADDITIVE}
    claim.record(details={"mean interaction": {"+".join(s): float(v.mean()) for s, v in inter.items()},
                          "set failure rate by ablation type": {"+".join(s): by_method(set_runs, s, "failure")
                                                                for s in SUBADDITIVE},
                          "layer": ccta.layer})
    if decided_below_minimum(claim, len(single)):
        return
    # failure(set) in {0, 1} minus |set| single failures: in [-|set|, 1]
    ev = [stats.mean_evidence(v, pred, seed=codi_options.seed, support=(-len(s), 1))
          for (s, v), pred in zip(inter.items(), IMP10.predictions)]
    claim.decide(ev, n=len(single),
                 controls={SAME_BASELINE: bool(np.array_equal(position_sets.baseline_correct, ccta.baseline_correct))})


@pytest.fixture(scope="module")
def small_sets(codi_engine, codi_problems):
    """The position-set run and the single-position zero grid on the invariants' few problems (F-15, F-16):
    the same code paths as IMP-04/07/10 and the CCTA grid, at the cost of an invariant."""
    from codi_probe.engine import Zero
    from codi_probe.experiments.ablation import set_ablation
    from codi_probe.experiments.common import middle_layer
    from codi_probe.experiments.corruption import corruption_grid

    layer = middle_layer(codi_engine.model.n_layers)
    problems = list(codi_problems)
    sets = set_ablation(codi_engine, problems, [*PREFIXES, *KEEP_ONLY.values()], layer=layer, max_new_tokens=8)
    grid = corruption_grid(codi_engine, problems, layer=layer, methods={"zero": lambda i, p: Zero()}, max_new_tokens=8)
    return sets, grid


@pytest.mark.claim(id="F-15", kind="invariant",
                   statement="no prefix-cumulative ablation is labelled as one position: every set effect of the "
                             "IMP-04/07/10 runs is named by exactly the positions it zeroed and carries its set size",
                   source="claims.md 7 F-15 (MECH-02's 'position 5 importance' zeroed five positions)")
def test_set_effects_name_their_sets(small_sets, claim):
    from codi_probe.experiments.ablation import mislabelled

    sets, _ = small_sets
    bad = mislabelled(sets.effects)
    sizes = {k: e.set_size for k, e in sets.effects.items()}
    claim.record("mislabelled set effects", len(bad), threshold=0, n=len(sizes), details={"set sizes": sizes})
    assert claim.check(not bad)


@pytest.mark.claim(id="F-16", kind="invariant",
                   statement="effects that are combined share one baseline: the position-set run (IMP-04/07/10) and the "
                             "single-position zero grid it is compared with score the same problems with identical "
                             "baseline answers",
                   source="claims.md 7 F-16 (IMP-06's spliced columns, IMP-10's 'expected additive' from another "
                          "baseline)")
def test_combined_effects_share_a_baseline(small_sets, claim):
    sets, grid = small_sets
    same = bool(np.array_equal(sets.baseline_correct, grid.baseline_correct))
    claim.record("problems whose baseline correctness differs",
                 int((sets.baseline_correct != grid.baseline_correct).sum()), threshold=0, n=len(grid.baseline_correct))
    assert claim.check(same)



@pytest.mark.claim(id="F-17", kind="invariant",
                   statement="a filtered effect never stands alone: the zero-ablation importance on baseline-correct "
                             "problems is reported with the unfiltered effect on every problem, both n's and the filter "
                             "(claims on both-correct pairs and latent-dependent problems use the same report)",
                   source="claims.md 7 F-17 (stratified sets pre-filtered to baseline-correct and needs-CoT, "
                          "both-correct filtering; effects not reported on the unfiltered set)")
def test_filtered_effects_carry_the_unfiltered(small_sets, claim):
    _, grid = small_sets
    report = zero_selection(grid)
    n = len(grid.baseline_correct)
    ok = (report.get("n all") == n and report.get("n filtered") == int(grid.baseline_correct.sum())
          and report.get("unfiltered") is not None and len(report["unfiltered"]) == len(grid.positions)
          and bool(report.get("filter")))
    claim.record("problems behind the unfiltered effect", report.get("n all"), threshold=n, n=n,
                 details={"report": report})
    assert claim.check(ok)
