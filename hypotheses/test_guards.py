"""Guards for the methodological flaws of claims.md section 7 that apply to this engine and are not
already covered by ``test_invariants.py`` (F-01/F-13 by SAN-10, F-02 and F-04 by their planted bugs,
F-08/F-09 by SAN-POSITIVE, F-21 by SAN-09)."""

import numpy as np
import pytest
import torch

from codi_probe import stats
from codi_probe.engine import Intervention, Patch, Record, knockout
from codi_probe.engine.positions import LATENT_POSITIONS
from codi_probe.tolerance import tolerance

SMALL = 4


@pytest.mark.claim(id="F-07", kind="invariant",
                   statement="attention columns map to the positions whose activations are ablated: blocking key P_j "
                             "zeroes exactly column P_j of every later latent query, at every layer and head",
                   source="claims.md 7 F-07 / F-12 (attention slices shifted by one; flow score identically 1)")
def test_attention_columns_are_aligned(codi_engine, codi_questions, claim):
    worst_blocked = 0.0
    for j, key in enumerate(LATENT_POSITIONS[:-1]):
        later = LATENT_POSITIONS[j + 1:]
        t = codi_engine.run(codi_questions[:SMALL], variants=[(i, [knockout(later, key)]) for i in range(SMALL)],
                            record=Record(sites=(), attention=True), max_new_tokens=1)
        att = t.latent_attention()  # [R, L, H, 7, 7]
        worst_blocked = max(worst_blocked, att[:, :, :, j + 1:, j].abs().max().item())
    ok = worst_blocked == 0.0
    claim.record("max attention to a blocked key", worst_blocked, threshold=0.0, n=SMALL)
    assert claim.check(ok)


@pytest.mark.claim(id="F-14", kind="invariant",
                   statement="intervention outputs are recomputed, never copied: after patching P2 from a donor, the "
                             "patched run's h_3 differs from the donor's h_3 unless the donor equals the base",
                   source="claims.md 7 F-14 (CYW exp 9 probe read the copied donor state)")
def test_patched_states_are_recomputed(codi_engine, codi_questions, claim):
    qs = codi_questions[:2]
    clean = codi_engine.run(qs, record=Record(sites=("resid_post",)), max_new_tokens=1)
    layer = codi_engine.model.n_layers - 1
    out = codi_engine.run(qs, variants=[(0, [Intervention("resid_post", ("P2",), Patch(clean, 1), layer=layer)])],
                          record=Record(sites=("resid_post",)), max_new_tokens=1)
    patched_site = torch.equal(out.resid(layer)[0, 2], clean.resid(layer)[1, 2])
    downstream = tolerance(codi_engine.model.base_dtype, "noop_vs_clean").deviation(out.latent_pre[0, 3],
                                                                                    clean.latent_pre[1, 3])
    ok = patched_site and downstream > 1.0  # beyond round-off: a recomputed state, not a copy
    claim.record("max |h_3(patched) - h_3(donor)| in tolerance units", downstream, threshold=1.0, n=2,
                 statistics={"patched site equals donor": patched_site})
    assert claim.check(ok)


@pytest.mark.claim(id="F-20", kind="invariant",
                   statement="answers match by exact value, never by substring: '1' does not match 12, '' matches "
                             "nothing, and 'The answer is: 18.' parses to 18",
                   source="claims.md 7 F-20 (AO substring matching), 4.E SAN-12")
def test_exact_answer_matching(claim):
    from codi_probe.data import answers_match, extract_answer

    cases = [answers_match(extract_answer("1"), 12.0) is False, answers_match(extract_answer(""), 0.0) is False,
             extract_answer("The answer is: 18.") == 18.0, extract_answer("1,234 apples") == 1234.0,
             extract_answer("it is -3") == -3.0]
    claim.record("passing cases", sum(cases), threshold=len(cases))
    assert claim.check(all(cases))


@pytest.mark.claim(id="F-05", kind="invariant",
                   statement="no significance claim from too few problems: below the minimum n every verdict is "
                             "inconclusive, and position effects are never tested on pooled problem x position rows",
                   source="claims.md 7 F-05 / F-06 (10 problems -> 60 pooled points)")
def test_too_few_problems_is_inconclusive(claim):
    from codi_probe.hypothesis import Hypothesis, Prediction, combine, decide

    hyp = Hypothesis(Prediction("mean", "greater", 0.0))
    rng = np.random.default_rng(0)
    verdicts = {}
    for n in (hyp.min_n - 1, hyp.min_n):
        x = rng.normal(1.0, 0.1, size=n)
        verdicts[n] = decide(combine(hyp, [stats.mean_evidence(x, hyp.predictions[0])], n)).verdict
    rhos = stats.within_problem_rhos(rng.normal(size=(10, 6)), rng.normal(size=(10, 6)))
    ok = verdicts == {hyp.min_n - 1: "inconclusive", hyp.min_n: "supported"} and len(rhos) == 10
    claim.record("verdicts below and at the minimum n", None, n=hyp.min_n,
                 details={"verdicts": {str(k): v for k, v in verdicts.items()}, "problem-level rhos": len(rhos)})
    assert claim.check(ok)


@pytest.mark.claim(id="F-11", kind="invariant",
                   statement="the loaded model carries its LoRA adapters and prj (strict loading, SAN-13)",
                   source="claims.md 7 F-11 (strict=False dropped the MLP LoRA and prj weights)")
def test_adapters_and_prj_are_loaded(codi_model, claim):
    counts = codi_model.param_counts()
    targets = {n.rsplit(".", 1)[-1] for n, _ in codi_model.lm.named_modules() if n.endswith(codi_model.arch.lora_targets)}
    ok = counts["lora"] > 0 and counts["prj"] > 0 and targets == set(codi_model.arch.lora_targets)
    claim.record("LoRA parameters", counts["lora"], statistics={"prj parameters": counts["prj"]},
                 details={"lora_targets": sorted(targets)})
    assert claim.check(ok)
