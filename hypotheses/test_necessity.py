"""Latent necessity by three removal methods (claims.md 4.A ACC-04, 8.15), the training-free pause control of
claims-2026 NEW-08 on the same runs, and the papers' accuracies (ACC-01/02)."""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.data import answers_match
from codi_probe.engine import Intervention, Mean, Record, Zero
from codi_probe.engine.positions import FED_POSITIONS
from codi_probe.experiments.common import golds, run_conditions
from codi_probe.hypothesis import EQUIVALENCE_MIN_N, EQUIVALENCE_MIN_N_SOURCE, Hypothesis, Prediction, shown

METHODS = ("zero_fed_latents", "mean_fed_latents", "skip_thinking")


@pytest.fixture(scope="module")
def necessity(codi_engine, answer_problems):
    problems = list(answer_problems)
    qs = [p.question for p in problems]
    gold = golds(problems)
    pool = codi_engine.run(qs, record=Record(sites=(), logits=False))  # the mean comes from these problems
    conds = {"zero_fed_latents": [[Intervention("latent_post_prj", FED_POSITIONS, Zero())] for _ in qs],
             "mean_fed_latents": [[Intervention("latent_post_prj", FED_POSITIONS, Mean(pool))] for _ in qs]}
    runs = run_conditions(codi_engine, qs, conds)
    skip = codi_engine.with_latents(0).run(qs, record=Record(sites=(), logits=False))
    base = runs.correct("baseline", gold)
    removed = {m: runs.correct(m, gold) for m in METHODS[:2]}
    removed["skip_thinking"] = [answers_match(a, g) for a, g in zip(skip.answer, gold)]
    return base, removed, {m: runs.changed(m) for m in METHODS[:2]}


ACC04 = Hypothesis(tuple(Prediction(f"necessity {m}", "greater", 0.9) for m in METHODS))


@pytest.mark.claim(id="ACC-04", kind="empirical",
                   statement="the latents are necessary: > 90% of baseline-correct problems become wrong when the "
                             "latents are removed, under every removal method (zero, mean, skip thinking)"
                             ". Differs from the source: only the GPT-2 half (> 0.9) is tested, on the model under"
                             " test: the Llama half (<= 0.6) is a claim about another checkpoint.",
                   source="GS (claims.md 4.A ACC-04): GPT-2 needs latent CoT 101/101, Llama 44/101",
                   reported={"gpt2": 1.0, "llama": 0.44}, hypothesis=ACC04)
def test_latents_are_necessary(necessity, claim):
    base, removed, _ = necessity
    n = int(sum(base))
    lost = {m: sum(1 for b, r in zip(base, removed[m]) if b and not r) for m in METHODS}
    claim.record(details={"baseline_correct": n, "baseline_accuracy": float(sum(base)) / len(base),
                          "removed_accuracy": {m: float(sum(removed[m])) / len(base) for m in METHODS}})
    ev = [] if n == 0 else sorted((stats.proportion_evidence(lost[m], n, pred) for m, pred in zip(METHODS, ACC04.predictions)),
                                  key=lambda e: e.value)  # the primary statistic shown: the weakest method
    claim.decide(ev, n=n)


NEW08 = Hypothesis(Prediction("accuracy change, every fed latent set to its across-problem mean", "equivalent", 0.03),
                   min_n=EQUIVALENCE_MIN_N, min_n_source=EQUIVALENCE_MIN_N_SOURCE,
                   controls=("zeroing every fed latent changes > 5% of answers (the fed positions are read)",))


@pytest.mark.claim(id="NEW-08", kind="empirical",
                   statement="the gain comes from compute, not content: replacing every fed latent by its mean over "
                             "problems (a training-free pause control: same steps, no problem-specific content; "
                             "ACC-04's mean removal) keeps accuracy within +-3pp (TOST)"
                             ". Differs from the source: a training-free mean-latent control stands in for a trained"
                             " pause-token model (not shipped).",
                   source="Curriculum Is the Mechanism (claims-2026 NEW-08): a pause-token control matches the latent "
                          "model, 96.6% vs 97.0%, McNemar p=0.845",
                   reported={"pause control": 0.966, "latent model": 0.970}, hypothesis=NEW08)
def test_compute_not_content(necessity, claim):
    base, removed, changed = necessity
    mean = np.asarray(removed["mean_fed_latents"], dtype=bool)
    control = stats.proportion_evidence(int(changed["zero_fed_latents"].sum()), len(base),
                                        Prediction("answers changed by zeroing the fed latents", "greater", 0.05))
    claim.record(details={"accuracy": {"baseline": float(base.mean()), "mean latents": float(mean.mean()),
                                       "zero latents": float(np.mean(removed["zero_fed_latents"]))}},
                 statistics={"answers changed by zeroing (control)": control.value})
    claim.decide([stats.paired_binary_evidence(base, mean, NEW08.predictions[0])], n=len(base),
                 controls={NEW08.controls[0]: shown(control)})


ACC_PAPER = {"ACC-01": ("gpt2", 0.437, "CODI paper (claims.md 4.A ACC-01): CODI-GPT2 43.7% on GSM8K test, greedy, 1319 "
                                     "problems"),
             "ACC-02": ("llama", 0.556, "GS quoting the CODI-Llama-1B paper value (claims.md 4.A ACC-02): 55.6% (a 66.5% "
                                      "'target' elsewhere)")}
ACC01 = Hypothesis(Prediction("GSM8K test accuracy", "greater", ACC_PAPER["ACC-01"][1] - 0.05))
ACC02 = Hypothesis(Prediction("GSM8K test accuracy", "greater", ACC_PAPER["ACC-02"][1] - 0.05))


def paper_accuracy(claim, codi_model, ccta, answer_problems, cid: str, hypothesis: Hypothesis) -> None:
    """The checkpoint reproduces its paper's GSM8K accuracy to within 5pp (non-inferiority, exact binomial).
    Skipped, saying why, on a model of the other family or one whose problems are not GSM8K."""
    from codi_probe.experiments.problems import model_families

    arch, reported, _ = ACC_PAPER[cid]
    if codi_model.arch.name != arch:
        pytest.skip(f"{cid} is about CODI-{arch}; this model is {codi_model.arch.name}")
    if model_families(codi_model)[0] != "gsm8k":
        pytest.skip(f"{cid} is GSM8K accuracy; this model's answer problems are {model_families(codi_model)[0]}")
    correct = ccta.baseline_correct
    claim.record(details={"problems": len(correct), "set": answer_problems.fingerprint()})
    claim.decide([stats.proportion_evidence(int(correct.sum()), len(correct), hypothesis.predictions[0])],
                 n=len(correct))


@pytest.mark.claim(id="ACC-01", kind="empirical", statement="CODI-GPT2 reproduces the paper's GSM8K test accuracy: "
                   "greedy accuracy > 43.7% - 5pp (the first N test problems)"
                   ". Differs from the source: a one-sided lower bound 5pp"
                   " below the paper on the first N problems, not the"
                   " two-sided band on all 1319 (a default run scores a"
                   " subset, whose sampling error the band would count"
                   " against the model).", source=ACC_PAPER["ACC-01"][2],
                   reported=ACC_PAPER["ACC-01"][1], hypothesis=ACC01)
def test_gpt2_paper_accuracy(codi_model, ccta, answer_problems, claim):
    paper_accuracy(claim, codi_model, ccta, answer_problems, "ACC-01", ACC01)


@pytest.mark.claim(id="ACC-02", kind="empirical", statement="CODI-Llama-1B reproduces the paper's GSM8K test "
                   "accuracy: greedy accuracy > 55.6% - 5pp (the first N test problems)"
                   ". Differs from the source: tests the paper value minus"
                   " 5pp, not the pipeline-vs-reference-loop drift"
                   " (F-18/SAN-11 guard that).", source=ACC_PAPER["ACC-02"][2],
                   reported=ACC_PAPER["ACC-02"][1], hypothesis=ACC02)
def test_llama_paper_accuracy(codi_model, ccta, answer_problems, claim):
    paper_accuracy(claim, codi_model, ccta, answer_problems, "ACC-02", ACC02)
