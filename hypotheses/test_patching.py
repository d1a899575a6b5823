"""Layer-wise clean→corrupted patching (LAY-01) and mean-latent patching on templates (PATCH-01/02)."""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.data import load_pairs, shipped_pairs_path
from codi_probe.design import implied_answer
from codi_probe.engine import Intervention, Randomize, Set
from codi_probe.engine.positions import FED_POSITIONS
from codi_probe.experiments.common import golds, run_conditions
from codi_probe.experiments.patching import band_margin, groups, layer_patching, template_pairs
from codi_probe.hypothesis import EQUIVALENCE_MIN_N, EQUIVALENCE_MIN_N_SOURCE, Hypothesis, Prediction, combine, shown
from codi_probe.experiments.problems import model_families


@pytest.fixture(scope="module")
def patching(codi_engine, codi_model, answer_problems, empirical_n, codi_options):
    family = model_families(codi_model)[0]
    if family == "gsm8k":
        pairs = [(p.clean, p.corrupted) for p in list(load_pairs(shipped_pairs_path()))[:empirical_n]]
    else:
        pairs = template_pairs(list(answer_problems), codi_options.seed)[:empirical_n]
    return layer_patching(codi_engine, pairs), len(pairs)


LAY01 = Hypothesis(Prediction("recovery in the band - best recovery outside it", "greater", 0.0),
                   min_n=50, min_n_source="claims.md LAY-04 / F-05: >= 50 pairs")


def band_of(n_layers: int) -> list[int]:
    """Relative depth 0.25-0.375 (layers 4-5 of 16)."""
    return [l for l in range(n_layers) if 0.25 <= l / n_layers < 0.375] or [round(0.25 * n_layers)]


@pytest.mark.claim(id="LAY-01", kind="empirical",
                   statement="patching the latent positions clean->corrupted recovers the clean answer most at "
                             "relative depth 0.25-0.375 (layers 4-5 of 16): the best recovery in that band beats "
                             "the best elsewhere (recovery pooled over pairs as a ratio of sums)",
                   source="GS layer patching (claims.md 4.F LAY-01): 'reasoning localises to layers 4-5' "
                          "(PAD-placeholder pipeline, KL at EOT, n=66)",
                   reported={"L5 KL": 0.00233, "L4 KL": 0.00231, "L15 KL": 0.0}, hypothesis=LAY01)
def test_layer_recovery_peak(codi_engine, patching, codi_options, claim):
    result, n_pairs = patching
    n_layers = codi_engine.model.n_layers
    band = band_of(n_layers)
    n = len(result.ld_clean)
    details = {"band": band, "pairs": n_pairs, "dropped": result.dropped}
    if n >= 2:
        pooled = result.pooled_recovery()
        rng = np.random.default_rng(codi_options.seed)
        peaks = [int(np.argmax(result.pooled_recovery(rng.integers(0, n, n)))) for _ in range(1000)]
        details.update({"pooled_recovery_by_layer": pooled.tolist(),
                        "mean_per_pair_recovery_by_layer (unstable, for contrast)": result.recovery.mean(0).tolist(),
                        "share of resamples with the peak in the band": float(np.mean([p in band for p in peaks]))})
        claim.stat("argmax layer", int(np.argmax(pooled)))
    claim.record(details=details)
    ev = []
    if n >= 2:
        rows = np.concatenate([result.ld_patched - result.ld_corrupted[:, None],
                               (result.ld_clean - result.ld_corrupted)[:, None]], 1)
        ev = [stats.rows_evidence(rows, lambda m: band_margin(m[..., :-1] / m[..., -1:], band),
                                  LAY01.predictions[0], seed=codi_options.seed)]
    claim.decide(ev, n=n)


def step_key(p):
    return tuple(p.intermediates[:2])


PATCH01 = Hypothesis(Prediction("accuracy change, same-group mean", "equivalent", 0.05),
                     min_n=EQUIVALENCE_MIN_N, min_n_source=EQUIVALENCE_MIN_N_SOURCE,
                     controls=("a different group's mean drops accuracy by > 30pp",), family="PATCH-01")


@pytest.fixture(scope="module")
def mean_patching(codi_engine, template_problems, template_trace, codi_options):
    """PATCH-01 at every fed position: per position the evidence, the control and the outcome."""
    problems, trace = list(template_problems), template_trace
    by = groups(problems, step_key)
    keys = list(by)
    out = {}
    for position in FED_POSITIONS:
        k = int(position[1:]) - 1
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
        n = len(rows)
        if n < 2:
            out[position] = ([], None, {}, combine(PATCH01, [], n, {PATCH01.controls[0]: False}))
            continue
        sub = [problems[i] for i in rows]
        runs = run_conditions(codi_engine, [p.question for p in sub], {"same": same, "diff": diff})
        gold = golds(sub)
        base = runs.correct("baseline", gold)
        control = stats.paired_binary_evidence(base, runs.correct("diff", gold),
                                               Prediction("accuracy change, different-group mean", "less", -0.30))
        ev = [
            stats.paired_binary_evidence(base, runs.correct("same", gold), PATCH01.predictions[0])]
        info = {"baseline accuracy": float(base.mean()), "accuracy change, same-group mean":
                float(runs.correct("same", gold).mean() - base.mean()), "accuracy change, different-group mean":
                control.value}
        out[position] = (ev, control, info, combine(PATCH01, ev, n, {PATCH01.controls[0]: shown(control)}))
    return out


@pytest.mark.claim(id="PATCH-01", kind="empirical",
                   statement="replacing a step-carrying fed latent by the mean latent of other prompts with the same "
                             "intermediates keeps accuracy (TOST +-5pp); positive control: a different group's mean "
                             "drops it > 30pp",
                   source="CYW exp 4 / AF headline (claims.md 4.I PATCH-01, 8.2): numbers n/r; M-CYW",
                   reported="n/r", hypothesis=PATCH01)
@pytest.mark.parametrize("position", FED_POSITIONS)
def test_mean_latent_patching(mean_patching, claim, position):
    ev, control, info, outcome = mean_patching[position]
    claim.record(statistics=info, details={"problems_with_a_group_mate": outcome.n})
    claim.decide(ev, n=outcome.n, family={p: o for p, (*_, o) in mean_patching.items()}, member=position)


PATCH02 = Hypothesis(
    (Prediction("share moved to the implied answer", "greater", 0.30),
     Prediction("moved - 10 x random-control moved (per problem)", "greater", 0.0)),
    family="PATCH-02", correction="holm")


@pytest.fixture(scope="module")
def step2_transfer(codi_engine, template_problems, template_trace, codi_options):
    """PATCH-02 at every fed position: per position the evidence and the outcome."""
    problems, trace = list(template_problems), template_trace
    by = groups(problems, lambda p: p.intermediates[1])
    out = {}
    for position in FED_POSITIONS:
        k = int(position[1:]) - 1
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
            expected.append(implied_answer(p, "step2", s2))
        n = len(rows)
        ev, info = [], {}
        if n >= 2:
            sub = [problems[i] for i in rows]
            runs = run_conditions(codi_engine, [p.question for p in sub], {"patched": patched, "random": random})
            moved = runs.correct("patched", expected)
            control = runs.correct("random", expected)
            ev = [stats.proportion_evidence(int(moved.sum()), n, PATCH02.predictions[0]),
                  stats.mean_evidence(moved.astype(float) - 10 * control.astype(float), PATCH02.predictions[1],
                                      seed=codi_options.seed)]
            info = {"random control rate": float(control.mean())}
        out[position] = (ev, info, combine(PATCH02, ev, n))
    return out


@pytest.mark.claim(id="PATCH-02", kind="empirical",
                   statement="patching a fed latent with the mean latent of prompts whose step-2 value is s' moves the "
                             "answer to the value implied by s' in > 30% of problems and > 10x a random control",
                   source="CYW exp 5 (claims.md 4.I PATCH-02, 8.3): h_4 = input at P5; numbers n/r", reported="n/r",
                   hypothesis=PATCH02)
@pytest.mark.parametrize("position", FED_POSITIONS)
def test_step2_latent_transfer(step2_transfer, claim, position):
    ev, info, outcome = step2_transfer[position]
    claim.record(statistics=info)
    claim.decide(ev, n=outcome.n, family={p: o for p, (*_, o) in step2_transfer.items()}, member=position)


PATCH06 = Hypothesis(Prediction("share of problems given the donor's answer", "less", 0.05))


@pytest.mark.claim(id="PATCH-06", kind="empirical",
                   statement="a whole-latent transplant does not transfer answers: feeding another problem's six fed "
                             "latents (e_1..e_6) gives that donor's answer for < 5% of problems whose answer differs",
                   source="CDS pointer-chase, Qwen3-8B (claims.md 4.I PATCH-06): donor cross-patch transfers the donor "
                          "answer ~0.01, shuffle ~0.00; a hypothesis on CODI here",
                   reported=0.01, hypothesis=PATCH06)
def test_latent_transplant_transfers_little(codi_engine, answer_problems, answer_attention_trace, codi_options, claim):
    from codi_probe.engine import Patch

    problems = list(answer_problems)
    rng = np.random.default_rng(codi_options.seed)
    donors = []  # a donor whose gold answer differs (its own greedy answer is read from the same batch)
    for i, p in enumerate(problems):
        cands = [j for j, q in enumerate(problems) if q.answer != p.answer]
        donors.append(int(cands[int(rng.integers(len(cands)))]) if cands else i)
    runs = run_conditions(codi_engine, [p.question for p in problems], {"transplant": [
        [Intervention("latent_post_prj", FED_POSITIONS, Patch(answer_attention_trace, d))] for d in donors]})
    own, got = runs.answers("baseline"), runs.answers("transplant")
    rows = [i for i, d in enumerate(donors) if own[d] is not None and own[d] != own[i]]
    took = np.array([got[i] == own[donors[i]] for i in rows], dtype=bool)
    claim.record(statistics={"answer changed by the transplant": float(runs.changed("transplant").mean())},
                 details={"problems whose donor answers differently": len(rows)})
    ev = [stats.proportion_evidence(int(took.sum()), len(rows), PATCH06.predictions[0])] if rows else []
    claim.decide(ev, n=len(rows))
