"""Guards for the methodological flaws of claims.md section 7, each measured beside its planted flaw.

Every claim here runs the guard on the engine (it must hold) and on the flaw put back (it must be caught):
F-01 PAD placeholders, F-13 five latents, F-21 a double final norm, F-08 edits after the forward, F-09 the
shifted swap, F-12 a shifted attention slice, F-10 a first-token readout, F-11 adapters and prj.ln left at
their init, F-07 misaligned attention columns, F-14 copied states. F-02 and
F-04 sit beside the invariants they share (``test_invariants.py``); SAN-10, SAN-09 and SAN-POSITIVE are the
guards themselves on the clean run."""

import numpy as np
import pytest
import torch

from codi_probe import stats
from codi_probe.engine import Intervention, Patch, Record, Set, Zero, knockout
from codi_probe.engine.positions import FED_POSITIONS, LATENT_POSITIONS
from codi_probe.guards import fed_projection_deviation, run_beside_clean
from codi_probe.metrics import kl_divergence
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
                   statement="the loaded model carries the file's LoRA adapters on every official target and a trained "
                             "prj: no lora_B is left at peft's zero init and prj.ln is not at LayerNorm's (1, 0) init, "
                             "which is what a strict=False load that misses those keys leaves behind",
                   source="claims.md 7 F-11 (strict=False dropped the MLP LoRA and prj weights; prj.ln at index 4)")
def test_adapters_and_prj_are_loaded(codi_model, claim):
    lora_b = {n: p for n, p in codi_model.named_parameters() if ".lora_B." in n}
    zero_b = sorted(n for n, p in lora_b.items() if not bool(p.detach().any()))
    ln = codi_model.prj.ln
    ln_at_init = bool((ln.weight == 1).all()) and bool((ln.bias == 0).all())
    targets = {n.rsplit(".", 1)[-1] for n, _ in codi_model.lm.named_modules() if n.endswith(codi_model.arch.lora_targets)}
    ok = bool(lora_b) and not zero_b and not ln_at_init and targets == set(codi_model.arch.lora_targets)
    claim.record("lora_B matrices left at zero", len(zero_b), threshold=0, n=len(lora_b),
                 statistics={"prj.ln at its initial values": ln_at_init, "LoRA parameters": codi_model.param_counts()["lora"]},
                 details={"lora_targets": sorted(targets), "zero lora_B (first 5)": zero_b[:5]})
    assert claim.check(ok)


@pytest.mark.claim(id="F-01", kind="invariant",
                   statement="the latent positions carry prj(h_{k-1}), not token embeddings: the fed-latent guard holds "
                             "on the engine's run and flags every row of a run fed PAD placeholders at P1..P6",
                   source="claims.md 7 F-01 (GS patching and attention pipelines fed question + BOT + PADs + EOT)")
def test_pad_placeholders_are_detected(codi_engine, codi_questions, clean_trace, claim):
    model = codi_engine.model
    pad = model.embed.weight[model.special.pad].detach()
    planted = codi_engine.run(codi_questions[:SMALL], variants=[
        (i, [Intervention("latent_post_prj", FED_POSITIONS, Set(pad))]) for i in range(SMALL)],
        record=Record(sites=()), max_new_tokens=1)
    clean_dev, planted_dev = fed_projection_deviation(codi_engine, clean_trace), fed_projection_deviation(codi_engine, planted)
    ok = bool((clean_dev <= 1.0).all()) and bool((planted_dev > 1.0).all())
    claim.record("min deviation of the PAD-fed rows from prj(h) in tolerance units", planted_dev.min(), threshold=1.0,
                 n=SMALL, statistics={"max deviation of the engine's rows in tolerance units": clean_dev.max()})
    assert claim.check(ok)


@pytest.mark.claim(id="F-13", kind="invariant",
                   statement="a loop that feeds 5 latents (BOT counted as step 0) is flagged by the six-latent guard, and "
                             "the difference reaches the answer distribution",
                   source="claims.md 7 F-13 (5 latent iterations in GS pipelines)")
def test_five_latents_are_detected(codi_engine, codi_questions, clean_trace, claim):
    five = codi_engine.with_latents(5).run(codi_questions[:SMALL], record=Record(sites=()),
                                                          max_new_tokens=1)
    fed = {"engine": clean_trace.latent_post.shape[1], "planted": five.latent_post.shape[1]}
    kl = torch.cat([kl_divergence(clean_trace.answer_logits[r][0], five.answer_logits[r][0]) for r in range(SMALL)])
    ok = fed == {"engine": 6, "planted": 5}
    claim.record("fed latents of the planted loop", fed["planted"], threshold=6, n=SMALL,
                 statistics={"fed latents of the engine": fed["engine"], "mean KL(6 || 5 latents) at EOT": kl.mean()})
    assert claim.check(ok)


@pytest.mark.claim(id="F-21", kind="invariant",
                   statement="the logit lens applies the final norm once: at the last block it equals lm_head(h_k) within "
                             "the dtype's tolerance, and a lens that normalises h_k again is caught",
                   source="claims.md 7 F-21 (double final norm on hidden_states[-1], CYW exp 3/9)")
def test_double_final_norm_is_detected(codi_engine, clean_trace, claim):
    model = codi_engine.model
    h = clean_trace.latent_pre.to(model.device, model.base_dtype)
    if tolerance(model.base_dtype, "batch_vs_alone").close(model.final_norm(h).float().cpu(), clean_trace.latent_pre):
        pytest.skip("the final norm is idempotent on these states (gain 1, no bias): normalising twice changes "
                    "nothing here, so the flaw is harmless and cannot be seen")
    tol = tolerance(model.base_dtype, "cached_vs_recompute")
    last = model.n_layers - 1
    direct = codi_engine.logits(h).float().cpu()  # [R, 7, V]
    lens = torch.stack([codi_engine.logit_lens(clean_trace, last, p) for p in LATENT_POSITIONS], 1)
    planted = codi_engine.logits(model.final_norm(h)).float().cpu()
    ours, bug = tol.deviation(lens, direct), tol.deviation(planted, direct)
    claim.record("lens vs lm_head(h_k) in tolerance units", ours, threshold=1.0, n=clean_trace.n_rows,
                 statistics={"double-norm lens vs lm_head(h_k) in tolerance units": bug})
    assert claim.check(ours <= 1.0 < bug)


@pytest.mark.claim(id="F-08", kind="invariant",
                   statement="an intervention changes the intervened block's output during the forward, so later steps "
                             "see it; editing a copy of the recorded state after the forward (the planted flaw) moves "
                             "nothing downstream and is caught",
                   source="claims.md 7 F-08 (GS operation intervention modified a copy of hidden_states)")
def test_after_the_forward_edits_are_detected(codi_engine, codi_questions, clean_trace, claim):
    layer = codi_engine.model.n_layers // 2
    qs = codi_questions[:SMALL]
    out, ref = run_beside_clean(codi_engine, qs, [(i, [Intervention("resid_post", ("P3",), Zero(), layer=layer)])
                                                  for i in range(SMALL)],
                                record=Record(sites=("resid_post",)), max_new_tokens=1)
    tol = tolerance(codi_engine.model.base_dtype, "noop_vs_clean")

    def applied(site: torch.Tensor, h4: torch.Tensor, r: int) -> bool:
        """The guard: the recorded block output at P3 and the next state h_4 both moved."""
        return tol.deviation(site[r], out.resid(layer)[ref[r], 3]) > 1.0 and tol.deviation(h4[r], out.latent_pre[ref[r], 4]) > 1.0

    engine_rows = [applied(out.resid(layer)[:, 3], out.latent_pre[:, 4], r) for r in range(SMALL)]
    copy = out.resid(layer)[:, 3].clone()  # the planted flaw: edit a copy after the forward of the clean rows
    copy[:SMALL] = 0.0
    planted_rows = [applied(copy, out.latent_pre[ref, 4], r) for r in range(SMALL)]
    ok = all(engine_rows) and not any(planted_rows)
    claim.record("rows where the intervention reached h_4", sum(engine_rows), threshold=SMALL, n=SMALL,
                 statistics={"rows where the after-forward edit reached h_4": sum(planted_rows)})
    assert claim.check(ok)


@pytest.mark.claim(id="F-09", kind="invariant",
                   statement="a self swap of the fed latent e_3 is the identity, and the shifted swap (h_3 fed where "
                             "prj(h_2) belongs) is caught: it moves h_3",
                   source="claims.md 7 F-09 (GS resampling fed the donor's output h_k as the input at step k)")
def test_shifted_swap_is_detected(codi_engine, codi_questions, clean_trace, claim):
    qs = codi_questions[:SMALL]
    right = [(i, [Intervention("latent_post_prj", ("P3",), Set(clean_trace.latent_post[i, 2]))]) for i in range(SMALL)]
    shifted = [(i, [Intervention("latent_post_prj", ("P3",), Set(clean_trace.latent_pre[i, 3]))]) for i in range(SMALL)]
    out, ref = run_beside_clean(codi_engine, qs, right + shifted, max_new_tokens=1)
    tol = tolerance(codi_engine.model.base_dtype, "noop_vs_clean")
    dev = torch.tensor([tol.deviation(out.latent_pre[r, 3:], out.latent_pre[ref[r], 3:]) for r in range(2 * SMALL)])
    ok = bool((dev[:SMALL] <= 1.0).all()) and bool((dev[SMALL:] > 1.0).all())
    claim.record("max |self swap - clean| in tolerance units", dev[:SMALL].max(), threshold=1.0, n=SMALL,
                 statistics={"min |shifted swap - clean| in tolerance units": dev[SMALL:].min()})
    assert claim.check(ok)


@pytest.mark.claim(id="F-12", kind="invariant",
                   statement="the latent attention the trace holds equals the attention of an independent one-forward "
                             "recompute at the same absolute columns, and a key slice shifted by one is caught",
                   source="claims.md 7 F-12 (attention-flow extractor assumed the new token at ql+1+s)")
def test_shifted_attention_slice_is_detected(codi_engine, clean_trace, claim):
    _, attn = codi_engine.replay(clean_trace, attention=True)  # [R, L, H, T+8, T+8]
    t = clean_trace.prefix_len
    k = len(LATENT_POSITIONS)
    oracle = attn[:, :, :, t: t + k, t: t + k]
    planted = attn[:, :, :, t: t + k, t + 1: t + k + 1]
    tol = tolerance(codi_engine.model.base_dtype, "cached_vs_recompute")
    ours, bug = tol.deviation(clean_trace.latent_attention(), oracle), tol.deviation(planted, oracle)
    claim.record("trace vs recompute latent attention in tolerance units", ours, threshold=1.0, n=clean_trace.n_rows,
                 statistics={"shifted slice vs recompute in tolerance units": bug})
    assert claim.check(ours <= 1.0 < bug)


@pytest.mark.claim(id="F-10", kind="invariant",
                   statement="answer-level claims read the answer number, not the first token after EOT: the readout "
                             "index of every answer target starts the number, and a first-token readout is caught",
                   source="claims.md 7 F-10 (first-answer-token-only readout), F-04 (KL read at 'The')")
def test_first_token_readout_is_detected(codi_engine, answer_problems, claim):
    from codi_probe.experiments.common import answer_target, number_text

    model = codi_engine.model
    if model.config.answer_format.startswith("{}"):
        pytest.skip(f"the answer format {model.config.answer_format!r} starts with the number: the first token after "
                    f"EOT is the number's first token, so a first-token readout is the right one here")
    problems = [p for p in answer_problems if p.answer is not None][:2 * SMALL]

    def starts_number(ids, k, value) -> bool:
        text = codi_engine.decode([ids[k]]).strip()
        return bool(text) and number_text(value).startswith(text)

    targets = [(answer_target(codi_engine, p.answer), p.answer) for p in problems]
    ours = [starts_number(ids, k, v) for (ids, k), v in targets]
    planted = [starts_number(ids, 0, v) for (ids, _), v in targets]
    ok = all(ours) and not any(planted)
    claim.record("targets whose readout starts the number", sum(ours), threshold=len(problems), n=len(problems),
                 statistics={"first-token readouts that start the number": sum(planted)})
    assert claim.check(ok)


@pytest.mark.claim(id="SAN-12", kind="invariant",
                   statement="answer extraction: the last number wins, thousands commas and signs parse, '' and text "
                             "without a number match nothing, and every answer the engine reports is the extraction "
                             "of its own decoded text",
                   source="claims.md 4.E SAN-12 (unit tests of answer extraction); F-20 covers substring matching")
def test_answer_extraction(codi_engine, clean_trace, claim):
    from codi_probe.data import answers_match, extract_answer

    cases = [extract_answer("3 apples, then 5") == 5.0, extract_answer("The answer is: 1,200.") == 1200.0,
             extract_answer("-7") == -7.0, extract_answer("no number") is None, answers_match(None, None) is False,
             answers_match(extract_answer(""), None) is False]
    engine_path = [extract_answer(t) == a or (a is None and extract_answer(t) is None)
                   for t, a in zip(clean_trace.answer_text, clean_trace.answer)]
    ok = all(cases) and all(engine_path)
    claim.record("passing cases", sum(cases), threshold=len(cases), n=clean_trace.n_rows,
                 statistics={"engine answers equal to the extraction of their text": sum(engine_path)})
    assert claim.check(ok)


@pytest.mark.claim(id="SAN-13", kind="invariant",
                   statement="LoRA is loaded as configured: every adapter's scaling is lora_alpha / r of the model's "
                             "config (the seeds rebuilt it with alpha=16 on q/k/v/o only) and prj holds both of its "
                             "Linear layers with trained (non-initial) LayerNorm",
                   source="claims.md 4.E SAN-13 / 7 F-11 (strict=False, alpha 16, no projection)")
def test_lora_scaling_and_prj(codi_model, claim):
    want = codi_model.config.lora_alpha / codi_model.config.lora_r
    scalings = [s for m in codi_model.lm.modules() if hasattr(m, "lora_A") and isinstance(m.scaling, dict)
                for s in m.scaling.values()]  # peft's LoRA layers: {adapter: alpha / r}
    off = [s for s in scalings if abs(s - want) > 1e-12]
    linears = [m for m in codi_model.prj.modules() if isinstance(m, torch.nn.Linear)]
    ok = bool(scalings) and not off and len(linears) == 2
    claim.record("adapters with another scaling", len(off), threshold=0, n=len(scalings),
                 statistics={"configured scaling (alpha / r)": want, "prj Linear layers": len(linears)})
    assert claim.check(ok)
