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

IMP01_REPORTED = {"P5": 0.343, "P1": 0.186, "P4": 0.186, "P2": 0.171, "P0": 0.157, "P3": 0.114}


@pytest.mark.claim(id="IMP-01", kind="empirical",
                   statement="one latent position is the most important: its failure rate under single-position "
                             "corruption (7 methods, relative depth 0.5) beats every other position by >= 5pp "
                             "(Holm p < 0.05) with a >= 2x gap to the least important",
                   source="GS CCTA test (claims.md 4.B IMP-01): 'Token 5 most important, 3x gap'; M-L1B, n=10",
                   reported=IMP01_REPORTED)
@pytest.mark.parametrize("position", LATENT_POSITIONS)
def test_position_is_most_important(ccta, claim, position):
    keep = ccta.baseline_correct
    rates = ccta.per_position("failure")[keep]  # [n_correct, 7], mean over the 7 methods
    n = int(keep.sum())
    k = LATENT_POSITIONS.index(position)
    means = rates.mean(0) if n else np.zeros(len(LATENT_POSITIONS))
    others = [j for j in range(len(LATENT_POSITIONS)) if j != k]
    claim.record(details={"failure_by_method_position": method_position_matrix(ccta),
                          "failure_rate_by_position": dict(zip(LATENT_POSITIONS, means.tolist())),
                          "baseline_correct": n, "n_problems": len(keep), "layer": ccta.layer,
                          "methods": list(ccta.methods), "filter": "baseline-correct problems (the seeds' definition)"})
    if n < stats.MIN_PROBLEMS:
        claim.record("failure-rate gap to the runner-up", None, n=n, threshold=0.05, verdict="inconclusive")
        return
    runner = max(others, key=lambda j: means[j])
    gap = stats.paired_difference(rates[:, k], rates[:, runner])
    pvals = stats.holm([stats.paired_difference(rates[:, k], rates[:, j]).p_value or 1.0 for j in others])
    ratio = means[k] / max(means[others].min(), 1e-12)
    ok = gap.lo > 0.05 and max(pvals) < 0.05 and ratio >= 2
    verdict = "supported" if ok else "refuted" if gap.hi < 0.05 else "inconclusive"
    claim.record("failure-rate gap to the runner-up", gap.value, ci=gap.ci, p_value=max(pvals), n=n,
                 threshold=0.05, effect_size=ratio, effect_size_name="max/min failure ratio",
                 statistics={"runner_up": LATENT_POSITIONS[runner]}, verdict=verdict)


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


@pytest.mark.claim(id="IMP-02", kind="empirical",
                   statement="zero-ablating P5 at relative depth 0.5 fails >= 3x as often as the mean of the other "
                             "positions (failures normalised by the baseline-correct problems)",
                   source="GS CCTA full (claims.md 4.B IMP-02): T5 26.0%, others 6-10%; M-L1B, n=100",
                   reported={"P5": 0.26, "P3": 0.10, "P2": 0.08, "P0": 0.07, "P1": 0.06, "P4": 0.06})
def test_p5_zero_ablation_dominates(ccta, claim):
    keep = ccta.baseline_correct
    n = int(keep.sum())
    zero = ccta.per_position("failure", "zero")[keep]
    k = LATENT_POSITIONS.index("P5")
    rest = np.delete(zero, k, axis=1).mean(1) if n else np.zeros(0)
    claim.record(details={"zero_failure_by_position": dict(zip(LATENT_POSITIONS, zero.mean(0).tolist())) if n else {},
                          "baseline_correct": n, "layer": ccta.layer})
    if n < stats.MIN_PROBLEMS:
        claim.record("P5 - mean(other) failure rate", None, n=n, threshold=0.0, verdict="inconclusive")
        return
    diff = stats.paired_difference(zero[:, k], rest)
    ratio = zero[:, k].mean() / max(rest.mean(), 1e-12)
    verdict = "supported" if diff.lo > 0 and ratio >= 3 else "refuted" if diff.hi <= 0 or ratio < 1 else "inconclusive"
    claim.record("P5 - mean(other) failure rate", diff.value, ci=diff.ci, p_value=diff.p_value, n=n, threshold=0.0,
                 effect_size=ratio, effect_size_name="P5 / mean(other)",
                 statistics={"cochran_q_p": stats.cochran_q(zero.astype(int))}, verdict=verdict)


@pytest.mark.claim(id="IMP-13", kind="empirical",
                   statement="replacing the last fed latent (input at P6) by a norm-matched random vector leaves "
                             "accuracy unchanged (TOST +-3pp), while the same at P3 or P5 drops it >= 20pp",
                   source="AF via AO Phase 2 (claims.md 4.B IMP-13 / 8.4): qualitative; M-CYW templates")
def test_last_latent_is_replaceable(codi_engine, template_problems, codi_options, claim):
    problems = list(template_problems)
    qs = [p.question for p in problems]
    conds = {f"random@{pos}": [[Intervention("latent_post_prj", (pos,), Randomize(codi_options.seed * 1000 + i))]
                               for i in range(len(qs))] for pos in ("P3", "P5", "P6")}
    runs = run_conditions(codi_engine, qs, conds)
    gold = golds(problems)
    base = runs.correct("baseline", gold).astype(float)
    acc = {pos: runs.correct(f"random@{pos}", gold).astype(float) for pos in ("P3", "P5", "P6")}
    p6 = stats.paired_difference(acc["P6"], base)
    tost_p = stats.tost_paired(acc["P6"], base, 0.03)
    drops = {pos: stats.paired_difference(base, acc[pos]) for pos in ("P3", "P5")}
    best_drop = max(drops.values(), key=lambda e: e.value)
    n = len(problems)
    claim.record(details={"baseline_correct": int(base.sum()),
                          "accuracy": {"baseline": base.mean(), **{k: v.mean() for k, v in acc.items()}},
                          "drop_P3": drops["P3"].value, "drop_P5": drops["P5"].value})
    if stats.at_floor(base):
        verdict = "inconclusive"
    elif tost_p < 0.05 and best_drop.lo >= 0.20:
        verdict = "supported"
    elif p6.lo > 0.03 or p6.hi < -0.03 or best_drop.hi < 0.20:
        verdict = "refuted"
    else:
        verdict = "inconclusive"
    claim.record("accuracy change, random at P6", p6.value, ci=p6.ci, p_value=tost_p, n=n, threshold=0.03,
                 statistics={"largest drop at P3/P5": best_drop.value, "largest drop CI lo": best_drop.lo},
                 verdict=verdict)


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
    claim.record("refused addresses of e_7", refused, threshold=2, verdict="supported" if refused == 2 else "refuted")
    assert refused == 2
