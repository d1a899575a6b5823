"""Layer-wise clean→corrupted patching (LAY-01) and mean-latent patching on templates (PATCH-01/02)."""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.data import load_pairs, shipped_pairs_path
from codi_probe.engine import Intervention, Randomize, Set
from codi_probe.engine.positions import FED_POSITIONS
from codi_probe.experiments.common import golds, run_conditions
from codi_probe.experiments.patching import groups, layer_patching, template_pairs
from codi_probe.experiments.problems import model_families


@pytest.fixture(scope="module")
def patching(codi_engine, codi_model, answer_problems, empirical_n, codi_options):
    family = model_families(codi_model)[0]
    if family == "gsm8k":
        pairs = [(p.clean, p.corrupted) for p in list(load_pairs(shipped_pairs_path()))[:empirical_n]]
    else:
        pairs = template_pairs(list(answer_problems), codi_options.seed)[:empirical_n]
    return layer_patching(codi_engine, pairs), len(pairs)


@pytest.mark.claim(id="LAY-01", kind="empirical",
                   statement="patching the latent positions clean->corrupted recovers the clean answer most at "
                             "relative depth 0.25-0.375 (layers 4-5 of 16) in >= 80% of bootstrap resamples of pairs",
                   source="GS layer patching (claims.md 4.F LAY-01): 'reasoning localises to layers 4-5' "
                          "(PAD-placeholder pipeline, KL at EOT, n=66)",
                   reported={"L5 KL": 0.00233, "L4 KL": 0.00231, "L15 KL": 0.0})
def test_layer_recovery_peak(codi_engine, patching, codi_options, claim):
    result, n_pairs = patching
    n_layers = codi_engine.model.n_layers
    band = [l for l in range(n_layers) if 0.25 <= l / n_layers < 0.375] or [round(0.25 * n_layers)]
    rec = result.recovery
    n = rec.shape[0]
    bands = [stats.bootstrap_mean(rec[:, l]) for l in range(rec.shape[1])] if n >= 2 else []
    claim.record(details={"mean_recovery_by_layer": rec.mean(0).tolist() if n else [], "band": band,
                          "recovery_ci_by_layer": {"lo": [b.lo for b in bands], "hi": [b.hi for b in bands],
                                                   "level": 0.95},
                          "pairs": n_pairs, "dropped": result.dropped})
    if n < stats.MIN_PROBLEMS:
        claim.record("share of resamples with the peak in the band", None, n=n, threshold=0.8, verdict="inconclusive")
        return
    rng = np.random.default_rng(codi_options.seed)
    peaks = [int(np.argmax(rec[rng.integers(0, n, n)].mean(0))) for _ in range(1000)]
    share = float(np.mean([p in band for p in peaks]))
    verdict = "supported" if share >= 0.8 else "refuted" if share <= 0.2 else "inconclusive"
    claim.record("share of resamples with the peak in the band", share, n=n, threshold=0.8,
                 statistics={"argmax layer": int(np.argmax(rec.mean(0)))}, verdict=verdict)


def step_key(p):
    return tuple(p.intermediates[:2])


@pytest.mark.claim(id="PATCH-01", kind="empirical",
                   statement="replacing a step-carrying fed latent by the mean latent of other prompts with the same "
                             "intermediates keeps accuracy (TOST +-5pp); a different group's mean drops it >= 30pp",
                   source="CYW exp 4 / AF headline (claims.md 4.I PATCH-01, 8.2): numbers n/r; M-CYW",
                   reported="n/r")
@pytest.mark.parametrize("position", FED_POSITIONS)
def test_mean_latent_patching(codi_engine, template_problems, template_trace, codi_options, claim, position):
    problems, trace = list(template_problems), template_trace
    k = int(position[1:]) - 1
    by = groups(problems, step_key)
    keys = list(by)
    rng = np.random.default_rng(codi_options.seed)
    rows, same, diff = [], [], []
    for i, p in enumerate(problems):
        mates = [r for r in by[step_key(p)] if r != i]
        others = [g for g in keys if g != step_key(p)]
        if not mates or not others:
            continue
        donor = others[int(rng.integers(len(others)))]
        rows.append(i)
        same.append([Intervention("latent_post_prj", (position,), Set(trace.latent_post[mates, k].mean(0)))])
        diff.append([Intervention("latent_post_prj", (position,), Set(trace.latent_post[by[donor], k].mean(0)))])
    sub = [problems[i] for i in rows]
    claim.record(details={"problems_with_a_group_mate": len(rows), "problems": len(problems)})
    if len(rows) < stats.MIN_PROBLEMS:
        claim.record("accuracy change, same-group mean", None, n=len(rows), threshold=-0.30, verdict="inconclusive")
        return
    runs = run_conditions(codi_engine, [p.question for p in sub], {"same": same, "diff": diff})
    gold = golds(sub)
    base = runs.correct("baseline", gold).astype(float)
    s = stats.paired_difference(runs.correct("same", gold).astype(float), base)
    d = stats.paired_difference(runs.correct("diff", gold).astype(float), base)
    tost = stats.tost_paired(runs.correct("same", gold).astype(float), base, 0.05)
    ok = tost < 0.05 and d.hi <= -0.30
    verdict = ("inconclusive" if stats.at_floor(base) else "supported" if ok
               else "refuted" if d.lo > -0.30 or s.hi < -0.05 else "inconclusive")
    claim.record("accuracy change, different-group mean", d.value, ci=d.ci, p_value=tost, n=len(rows),
                 threshold=-0.30, statistics={"accuracy change, same-group mean": s.value,
                                              "baseline accuracy": float(base.mean())}, verdict=verdict)


@pytest.mark.claim(id="PATCH-02", kind="empirical",
                   statement="patching a fed latent with the mean latent of prompts whose step-2 value is s' moves the "
                             "answer to the value implied by s' in >= 30% of problems and >= 10x a random control",
                   source="CYW exp 5 (claims.md 4.I PATCH-02, 8.3): h_4 = input at P5; numbers n/r", reported="n/r")
@pytest.mark.parametrize("position", FED_POSITIONS)
def test_step2_latent_transfer(codi_engine, template_problems, template_trace, codi_options, claim, position):
    problems, trace = list(template_problems), template_trace
    k = int(position[1:]) - 1
    by = groups(problems, lambda p: p.intermediates[1])
    rng = np.random.default_rng(codi_options.seed)
    rows, patched, random, expected = [], [], [], []
    for i, p in enumerate(problems):
        others = [s for s in by if s != p.intermediates[1]]
        if not others:
            continue
        s2 = others[int(rng.integers(len(others)))]
        rows.append(i)
        patched.append([Intervention("latent_post_prj", (position,), Set(trace.latent_post[by[s2], k].mean(0)))])
        random.append([Intervention("latent_post_prj", (position,), Randomize(codi_options.seed * 1000 + i))])
        expected.append(implied_answer(p, s2))
    sub = [problems[i] for i in rows]
    if len(rows) < stats.MIN_PROBLEMS:
        claim.record("share moved to the implied answer", None, n=len(rows), threshold=0.30, verdict="inconclusive")
        return
    runs = run_conditions(codi_engine, [p.question for p in sub], {"patched": patched, "random": random})
    moved = runs.correct("patched", expected)
    control = runs.correct("random", expected)
    est = stats.proportion(int(moved.sum()), len(rows))
    ratio = est.value / max(control.mean(), 1.0 / len(rows))
    verdict = ("supported" if est.lo >= 0.30 and ratio >= 10 else
               "refuted" if est.hi < 0.30 else "inconclusive")
    claim.record("share moved to the implied answer", est.value, ci=est.ci, n=len(rows), threshold=0.30,
                 effect_size=ratio, effect_size_name="patched / random-control rate",
                 statistics={"random control rate": float(control.mean())}, verdict=verdict)


def implied_answer(p, step2: float) -> float:
    """The answer a problem would have with step-2 value ``step2``: CYW answer = step1 + step2,
    AO answer = step2 (claims.md 2.3/2.4)."""
    return p.intermediates[0] + step2 if p.family == "cyw" else step2
