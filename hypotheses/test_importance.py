"""Position importance under single-position corruption (claims.md 4.B: IMP-01, IMP-02, IMP-13).

Canonical positions (claims.md 1.3): the seeds' "token 5" is P5; their pipelines never had P6.
Importance is measured per problem on the baseline-correct problems (the seeds' definition) and the
effect is always a paired, problem-level comparison.
"""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.engine import Intervention, Randomize
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.experiments.common import golds, run_conditions
from codi_probe.hypothesis import (EQUIVALENCE_MIN_N, EQUIVALENCE_MIN_N_SOURCE, Hypothesis, Prediction, any_shown,
                                   combine)

IMP01_REPORTED = {"P5": 0.343, "P1": 0.186, "P4": 0.186, "P2": 0.171, "P0": 0.157, "P3": 0.114}
IMP01 = Hypothesis(
    (Prediction("failure-rate gap to the largest other position", "greater", 0.05),
     Prediction("failure rate - 2 x the smallest other position", "greater", 0.0)),
    min_n=100, min_n_source="claims.md IMP-01: >= 100 problems", family="IMP-01", correction="holm")


def importance_outcomes(ccta, seed: int) -> dict:
    """Every position's IMP-01 evidence and outcome, on the baseline-correct problems (the seeds'
    definition of a failure), from the per-problem failure rates averaged over the 7 methods."""
    keep = ccta.baseline_correct
    rates = ccta.per_position("failure")[keep]  # [n_correct, 7]
    n = int(keep.sum())
    out = {}
    for k, pos in enumerate(LATENT_POSITIONS):
        others = [j for j in range(len(LATENT_POSITIONS)) if j != k]
        ev = [] if n < 2 else [
            stats.rows_evidence(rates, lambda m, k=k, o=others: m[..., k] - m[..., o].max(-1),
                                IMP01.predictions[0], seed=seed),
            stats.rows_evidence(rates, lambda m, k=k, o=others: m[..., k] - 2 * m[..., o].min(-1),
                                IMP01.predictions[1], seed=seed)]
        out[pos] = (ev, combine(IMP01, ev, n))
    return out


@pytest.fixture(scope="module")
def importance(ccta, codi_options):
    return importance_outcomes(ccta, codi_options.seed)


@pytest.mark.claim(id="IMP-01", kind="empirical",
                   statement="one latent position is the most important: its failure rate under single-position "
                             "corruption (7 methods, relative depth 0.5) beats every other position by >= 5pp "
                             "with a >= 2x gap to the least important (Holm over the 7 positions)",
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
def test_p5_zero_ablation_dominates(ccta, codi_options, claim):
    keep = ccta.baseline_correct
    n = int(keep.sum())
    zero = ccta.per_position("failure", "zero")[keep]
    k = LATENT_POSITIONS.index("P5")
    claim.record(details={"zero_failure_by_position": dict(zip(LATENT_POSITIONS, zero.mean(0).tolist())) if n else {},
                          "baseline_correct": n, "layer": ccta.layer},
                 statistics={"cochran_q_p": stats.cochran_q(zero.astype(int)) if n else None})
    ev = [] if n < 2 else [stats.rows_evidence(
        zero, lambda m: m[..., k] - 3 * np.delete(m, k, axis=-1).mean(-1), IMP02.predictions[0], seed=codi_options.seed)]
    claim.decide(ev, n=n)


IMP13 = Hypothesis(
    Prediction("accuracy change, random at P6", "equivalent", 0.03),
    min_n=EQUIVALENCE_MIN_N, min_n_source=EQUIVALENCE_MIN_N_SOURCE,
    controls=("random at P3 or P5 drops accuracy by > 20pp",))


@pytest.mark.claim(id="IMP-13", kind="empirical",
                   statement="replacing the last fed latent (input at P6) by a norm-matched random vector leaves "
                             "accuracy unchanged (TOST +-3pp); positive control: the same at P3 or P5 drops it > 20pp",
                   source="AF via AO Phase 2 (claims.md 4.B IMP-13 / 8.4): qualitative; M-CYW templates",
                   hypothesis=IMP13)
def test_last_latent_is_replaceable(codi_engine, template_problems, codi_options, claim):
    problems = list(template_problems)
    qs = [p.question for p in problems]
    conds = {f"random@{pos}": [[Intervention("latent_post_prj", (pos,), Randomize(codi_options.seed * 1000 + i))]
                               for i in range(len(qs))] for pos in ("P3", "P5", "P6")}
    runs = run_conditions(codi_engine, qs, conds)
    gold = golds(problems)
    base = runs.correct("baseline", gold)
    acc = {pos: runs.correct(f"random@{pos}", gold) for pos in ("P3", "P5", "P6")}
    drop = Prediction("accuracy change, random at P3/P5", "less", -0.20)
    drops = {pos: stats.paired_binary_evidence(base, acc[pos], drop) for pos in ("P3", "P5")}
    control = any_shown(drops.values())
    claim.record(details={"baseline_correct": int(base.sum()),
                          "accuracy": {"baseline": base.mean(), **{k: v.mean() for k, v in acc.items()}}},
                 statistics={f"accuracy change, random at {pos} (control)": e.value for pos, e in drops.items()})
    ev = [stats.paired_binary_evidence(base, acc["P6"], IMP13.predictions[0])]
    claim.decide(ev, n=len(qs), controls={IMP13.controls[0]: control})


@pytest.mark.claim(id="IMP-13a", kind="invariant",
                   statement="the never-fed e_7 = prj(h_6) has no address: an intervention on it is refused "
                             "(the seeds' 'index 6' randomisation is a no-op by construction)",
                   source="claims.md 4.B IMP-13 (a) and 1.3")
def test_e7_has_no_address(claim):
    refused = 0
    for site in ("latent_pre_prj", "latent_post_prj"):
        try:
            Intervention(site, ("P7",))
        except ValueError:
            refused += 1
    claim.record("refused addresses of e_7", refused, threshold=2)
    assert claim.check(refused == 2)
