"""The flaw guards bite: each catalogue guard of ``hypotheses/test_guards.py`` passes on the engine and
fails when its flaw is planted into the engine itself (monkeypatched), run on the tiny random models.

The guard functions are called directly with the fixtures they take in the catalogue; ``Claim`` stands in
for the plugin's recorder (the verdict is what ``check`` receives).
"""

from __future__ import annotations

import pytest
import torch

from codi_probe.engine import CodiEngine, Patch, Record
from codi_probe.engine.hooks import HookSession
from codi_probe.engine.trace import Trace
from codi_probe.guards import fed_projection_deviation, run_beside_clean
from codi_probe.hypotheses import test_guards as guards
from codi_probe.hypotheses import test_invariants as guards_inv


class Claim:
    """The recorder's two calls a guard makes; ``holds`` is the verdict it reached."""

    holds: bool | None = None

    def record(self, *args, **kwargs) -> "Claim":
        return self

    def check(self, holds: bool) -> bool:
        self.holds = bool(holds)
        return self.holds


@pytest.fixture(scope="module")
def qs(questions):
    """The guards use up to four questions (``SMALL``)."""
    return [*questions, "Ann has 3 cats and 4 dogs. How many pets does she have?",
            "A box holds 12 eggs. How many eggs are in 5 boxes?"][:max(len(questions), guards.SMALL)]


def _clean(engine, questions):
    return engine.run(questions, record=Record(sites=("resid_post", "attn_out", "mlp_out"), attention=True),
                      max_new_tokens=8)


def _verdict(fn, **fixtures) -> bool:
    claim = Claim()
    try:
        fn(claim=claim, **fixtures)
    except AssertionError:
        assert claim.holds is False  # the guard's own assert, on its recorded verdict
    return bool(claim.holds)


GUARDS = {
    "F-01": guards.test_pad_placeholders_are_detected,
    "F-13": guards.test_five_latents_are_detected,
    "F-21": guards.test_double_final_norm_is_detected,
    "F-08": guards.test_after_the_forward_edits_are_detected,
    "F-09": guards.test_shifted_swap_is_detected,
    "F-12": guards.test_shifted_attention_slice_is_detected,
    "F-11": guards.test_adapters_and_prj_are_loaded,
    "F-10": guards.test_first_token_readout_is_detected,
    "F-07": guards.test_attention_columns_are_aligned,
    "F-14": guards.test_patched_states_are_recomputed,
}


def _fixtures(fn, engine, questions):
    import inspect

    given = {"codi_engine": engine, "codi_questions": questions, "codi_model": engine.model}
    wants = inspect.signature(fn).parameters
    if "answer_problems" in wants:
        from codi_probe.experiments.problems import family_problems

        given["answer_problems"] = family_problems("gsm8k", 8)
    if "clean_trace" in wants:
        given["clean_trace"] = _clean(engine, questions)
    return {k: v for k, v in given.items() if k in wants}


@pytest.mark.parametrize("flaw", list(GUARDS))
def test_each_guard_holds_on_the_engine(engine, qs, flaw):
    fn = GUARDS[flaw]
    assert _verdict(fn, **_fixtures(fn, engine, qs)) is True


def _plant(flaw: str, monkeypatch, engine):
    """Put the flaw into the engine (or its reader) and return the engine the guard then runs on."""
    if flaw == "F-01":  # PAD placeholders fed at P1..P6 instead of prj(h)
        monkeypatch.setattr(CodiEngine, "_project",
                            lambda self, h: self.model.embed.weight[self.model.special.pad].detach().expand_as(h).clone())
    elif flaw == "F-13":  # five latents
        return CodiEngine(engine.model, num_latent=5)
    elif flaw == "F-21":  # the lens normalises h_k once more
        original = CodiEngine.logit_lens

        def double(self, trace, layer, position):
            logits = original(self, trace, layer, position)
            if layer == self.model.n_layers - 1:
                k = ["P0", "P1", "P2", "P3", "P4", "P5", "P6"].index(position)
                h = trace.latent_pre[:, k].to(self.model.device, self.model.base_dtype)
                return self.logits(self.model.final_norm(h)).float().cpu()
            return logits

        monkeypatch.setattr(CodiEngine, "logit_lens", double)
    elif flaw == "F-08":  # edits land in the record, but the forward continues with the unedited state
        original = HookSession._make_hook

        def copy_only(self, site, layer):
            hook = original(self, site, layer)

            def wrapped(module, args, output):
                hook(module, args, output)
                return None

            return wrapped

        monkeypatch.setattr(HookSession, "_make_hook", copy_only)
    elif flaw == "F-09":  # a latent-site op lands one step early (the swap position shift)
        original = CodiEngine._apply_latent

        def shifted(self, plan, site, pos, x, active, keys):
            return original(self, plan, site, f"P{int(pos[1:]) + 1}", x, active, keys)

        monkeypatch.setattr(CodiEngine, "_apply_latent", shifted)
    elif flaw == "F-11":  # a strict=False load that missed the adapters and the prj LayerNorm
        import copy

        model = copy.deepcopy(engine.model)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if ".lora_B." in name and ".mlp." in name:
                    p.zero_()
            model.prj.ln.reset_parameters()
        return CodiEngine(model)
    elif flaw == "F-10":  # every answer target read at the first token after EOT
        from codi_probe.experiments import common

        monkeypatch.setattr(common, "answer_readout_index", lambda tokenizer, ids, number: 0)
    elif flaw == "F-14":  # CYW exp 9: the donor's hidden-state list copied up to the patch site, read there
        original = CodiEngine.run

        def copying(self, questions, variants=None, **kw):
            out = original(self, questions, variants=variants, **kw)
            for r, (_, ivs) in enumerate(variants or []):
                for iv in ivs:
                    if isinstance(iv.op, Patch):
                        upto = max(int(p[1:]) for p in iv.positions if p.startswith("P")) + 1
                        out.latent_pre[r, :upto] = iv.op.source.latent_pre[iv.op.row, :upto]
            return out

        monkeypatch.setattr(CodiEngine, "run", copying)
    elif flaw in ("F-12", "F-07"):  # the latent attention read one key column to the right
        def shifted_columns(self):
            cols = [self.key_column(p) + 1 for p in ("P0", "P1", "P2", "P3", "P4", "P5", "P6")]
            return self.attn[:, :, :, :7][..., cols]

        monkeypatch.setattr(Trace, "latent_attention", shifted_columns)
    return engine


@pytest.mark.parametrize("flaw", list(GUARDS))
def test_each_guard_fails_when_its_flaw_is_planted(engine, qs, flaw, monkeypatch):
    planted = _plant(flaw, monkeypatch, engine)
    fn = GUARDS[flaw]
    assert _verdict(fn, **_fixtures(fn, planted, qs)) is False


def test_fed_projection_deviation_reads_prj_not_the_feeding_path(engine, questions, monkeypatch):
    """The F-01/SAN-10 statistic must not share the code path it checks: with the engine's projection
    replaced, the recorded fed latents stand far from prj(h)."""
    clean = engine.run(questions[:2], max_new_tokens=1)
    assert (fed_projection_deviation(engine, clean) <= 1.0).all()
    monkeypatch.setattr(CodiEngine, "_project", lambda self, h: torch.zeros_like(h))
    broken = engine.run(questions[:2], max_new_tokens=1)
    assert (fed_projection_deviation(engine, broken) > 1.0).all()


def test_run_beside_clean_appends_one_clean_row_per_question(engine, questions):
    out, ref = run_beside_clean(engine, questions[:2], [(1, ()), (0, ())], max_new_tokens=1)
    assert out.n_rows == 4 and ref == [3, 2] and out.row_question == [1, 0, 0, 1]


def test_f06_guard_fails_when_the_last_position_is_kept(monkeypatch):
    """F-06 planted into ATT-02's procedure: without dropping the last position, the planted between-position
    artifact reads as a supported within-problem correlation, and the F-06 claim fails."""
    from types import SimpleNamespace

    from codi_probe.hypotheses import test_attention as attention

    options = SimpleNamespace(seed=0)
    assert _verdict(attention.test_between_position_pooling_is_detected, codi_options=options) is True
    monkeypatch.setattr(attention, "last_position_excluded",
                        lambda att, imp, seed: attention.correlation_evidence(att, imp, attention.ATT02, seed))
    assert _verdict(attention.test_between_position_pooling_is_detected, codi_options=options) is False


def test_f19_guard_fails_when_probes_are_scored_in_sample(monkeypatch):
    """F-19 planted into the probe: held-out predictions replaced by the in-sample fit (PROBE-01's training
    accuracy reported as probe accuracy); the overfit case then reads as supported and F-19 fails."""
    from types import SimpleNamespace

    from codi_probe.experiments import probes
    from codi_probe.hypotheses import test_probes

    options = SimpleNamespace(seed=0)
    assert _verdict(test_probes.test_probe_controls_bite, codi_options=options) is True
    monkeypatch.setattr(probes, "_held_out", lambda x, y, groups, seed, components=None:
                        probes.make_probe(seed, components).fit(x, y).predict(x) == y)
    assert _verdict(test_probes.test_probe_controls_bite, codi_options=options) is False


def test_san05_guard_fails_without_the_per_key_null(monkeypatch):
    """SAN-05 planted: a hub is any key above the mean incoming score (no shuffled-key null), so earlier keys
    win on uniform causal attention and the null cases report hubs."""
    from types import SimpleNamespace

    from codi_probe.experiments import attention_flow
    from codi_probe.hypotheses import test_invariants

    options = SimpleNamespace(seed=0)
    assert _verdict(test_invariants.test_hub_score_null, codi_options=options) is True
    monkeypatch.setattr(attention_flow, "hub_hits", lambda a, rng, **kw: attention_flow.incoming(a) > attention_flow.incoming(
        a).mean(-1, keepdims=True))
    assert _verdict(test_invariants.test_hub_score_null, codi_options=options) is False


def test_san12_guard_fails_with_first_number_extraction(engine, questions, monkeypatch):
    """SAN-12 planted: the first number wins instead of the last."""
    import re

    import codi_probe.data as data

    clean = engine.run(questions, max_new_tokens=8)
    assert _verdict(guards.test_answer_extraction, codi_engine=engine, clean_trace=clean) is True
    monkeypatch.setattr(data, "extract_answer", lambda text: (lambda m: float(m[0]) if m else None)(
        re.findall(r"-?\d+\.?\d*", text.replace(",", ""))))
    assert _verdict(guards.test_answer_extraction, codi_engine=engine, clean_trace=clean) is False


def test_san13_guard_fails_with_alpha_16(engine):
    """SAN-13 planted: the adapters rebuilt with alpha=16 (the seeds' layer-patching pipelines)."""
    import copy

    assert _verdict(guards.test_lora_scaling_and_prj, codi_model=engine.model) is True
    model = copy.deepcopy(engine.model)
    for m in model.lm.modules():
        if hasattr(m, "lora_A") and isinstance(m.scaling, dict):
            m.scaling = {k: 16 / model.config.lora_r for k in m.scaling}
    assert _verdict(guards.test_lora_scaling_and_prj, codi_model=model) is False


def test_f03_guard_fails_when_noise_acts_like_ablation(engine, monkeypatch):
    """F-03 planted: the noise op zeroes its input (a corruption whose size does not matter)."""
    from types import SimpleNamespace

    from codi_probe.engine import Noise
    from codi_probe.experiments.problems import family_problems
    from codi_probe.hypotheses import test_corruption

    fixtures = dict(codi_engine=engine, codi_problems=list(family_problems("gsm8k", 4)),
                    codi_options=SimpleNamespace(seed=0))
    assert _verdict(test_corruption.test_small_noise_is_not_ablation, **fixtures) is True
    monkeypatch.setattr(Noise, "__call__", lambda self, x, **kw: torch.zeros_like(x))
    assert _verdict(test_corruption.test_small_noise_is_not_ablation, **fixtures) is False


def test_f16_guard_fails_on_another_baseline():
    """F-16 planted: the set run's baseline comes from another run (here: another problem order)."""
    from types import SimpleNamespace

    import numpy as np

    from codi_probe.hypotheses import test_importance

    base = np.array([True, False, True, True])
    same = (SimpleNamespace(baseline_correct=base), SimpleNamespace(baseline_correct=base))
    assert _verdict(test_importance.test_combined_effects_share_a_baseline, small_sets=same) is True
    other = (SimpleNamespace(baseline_correct=base[::-1]), SimpleNamespace(baseline_correct=base))
    assert _verdict(test_importance.test_combined_effects_share_a_baseline, small_sets=other) is False


def test_f22_guard_fails_without_the_bottom_decile_control(monkeypatch):
    """F-22 planted into FLOW-08's procedure: the bottom-decile control is dropped, so an ablation that kills
    every head (top and bottom decile alike) reads as evidence that single heads are redundant."""
    from codi_probe.hypotheses import test_flow

    assert _verdict(test_flow.test_unspecific_ablation_is_not_evidence) is True
    original = test_flow.flow08_evidence

    def without_control(base, top, bottom, unparseable=0.0):
        ev, controls = original(base, top, bottom, unparseable)
        return ev, dict.fromkeys(controls, True)

    monkeypatch.setattr(test_flow, "flow08_evidence", without_control)
    assert _verdict(test_flow.test_unspecific_ablation_is_not_evidence) is False



def test_f02_guard_fails_when_patches_read_one_layer_off(engine, qs, monkeypatch):
    """F-02 planted into the engine's Patch op: it reads the source's block L-1 output for block L (the seeds'
    hidden_states[L] into block L). Its guard, the self-patch identity (SAN-01), then fails."""
    from codi_probe.engine import Patch

    fn = guards_inv.test_self_patch_is_identity
    fixtures = dict(_fixtures(fn, engine, qs), site="resid_post")
    assert _verdict(fn, **fixtures) is True
    original = Patch.__call__

    def off_by_one(self, x, *, site, layer, position, **kw):
        return original(self, x, site=site, layer=max(0, layer - 1) if layer else layer, position=position, **kw)

    monkeypatch.setattr(Patch, "__call__", off_by_one)
    assert _verdict(fn, **fixtures) is False


def test_f04_guard_fails_with_batchmean_kl(engine, qs, monkeypatch):
    """F-04 planted into the suite's KL: batchmean over the 1-D vocabulary vector (divides by V)."""
    fn = guards_inv.test_kl_batchmean_artifact_is_detected
    fixtures = _fixtures(fn, engine, qs)
    assert _verdict(fn, **fixtures) is True
    monkeypatch.setattr(guards_inv, "kl_divergence", lambda p, q: torch.nn.functional.kl_div(
        torch.log_softmax(q.double(), -1), torch.log_softmax(p.double(), -1), reduction="batchmean",
        log_target=True).reshape(1))
    assert _verdict(fn, **fixtures) is False


def test_f05_guard_fails_when_the_minimum_n_is_ignored(monkeypatch):
    """F-05 planted into the verdict rule: the declared minimum n is not enforced."""
    import dataclasses

    import codi_probe.hypothesis as hypothesis

    assert _verdict(guards.test_too_few_problems_is_inconclusive) is True
    original = hypothesis.combine
    monkeypatch.setattr(hypothesis, "combine", lambda hyp, ev, n, controls=None: original(
        dataclasses.replace(hyp, min_n=1), ev, n, controls))
    assert _verdict(guards.test_too_few_problems_is_inconclusive) is False


def test_f20_guard_fails_with_substring_matching(monkeypatch):
    """F-20 planted into answer matching: the gold's text found anywhere in the prediction's (AO's check)."""
    import codi_probe.data as data

    assert _verdict(guards.test_exact_answer_matching) is True
    monkeypatch.setattr(data, "answers_match", lambda pred, gold: pred is not None and gold is not None and
                        str(int(pred)) in str(int(gold)))
    assert _verdict(guards.test_exact_answer_matching) is False


def test_f17_guard_fails_when_the_unfiltered_effect_is_dropped(monkeypatch):
    """F-17 planted into the report: the filtered effect alone (the seeds' pre-filtered tables)."""
    from types import SimpleNamespace

    import numpy as np

    from codi_probe.experiments.corruption import CorruptionResult
    from codi_probe.hypotheses import test_importance

    base = np.array([True, True, False, True])
    grid = CorruptionResult(1, ("P0", "P1"), ("zero",), base)
    grid.failure["zero"] = {p: np.array([True, False, False, False]) for p in grid.positions}
    grid.changed["zero"] = {p: np.array([True, False, True, False]) for p in grid.positions}
    fixtures = dict(small_sets=(SimpleNamespace(), grid))
    assert _verdict(test_importance.test_filtered_effects_carry_the_unfiltered, **fixtures) is True
    monkeypatch.setattr(test_importance, "filtered_effect", lambda f, u, keep, name: {
        "filter": name, "n filtered": int(keep.sum()), "filtered": np.asarray(f, float).mean(0).tolist()})
    assert _verdict(test_importance.test_filtered_effects_carry_the_unfiltered, **fixtures) is False


def test_f18_guard_fails_with_a_baseline_from_another_decoding(engine, qs, monkeypatch):
    """F-18 planted into run_conditions: the baseline rows come from a separate run with another token budget."""
    from codi_probe.experiments import common

    fn = guards_inv.test_baseline_decoded_in_the_same_loop
    fixtures = _fixtures(fn, engine, qs)
    assert _verdict(fn, **fixtures) is True
    original = common.run_conditions

    def drifted(engine_, questions, conditions, **kw):
        runs = original(engine_, questions, conditions, **kw)
        other = engine_.run(questions, max_new_tokens=2)
        for i, r in enumerate(runs.rows["baseline"]):
            runs.trace.answer_ids[r] = other.answer_ids[i]
        return runs

    monkeypatch.setattr(common, "run_conditions", drifted)
    assert _verdict(fn, **fixtures) is False


def test_f15_guard_fails_when_sets_are_labelled_by_one_position(engine, monkeypatch):
    """F-15 planted into the set labeller: a cumulative set named by its last position (MECH-02's "position 5
    importance" zeroed five)."""
    from types import SimpleNamespace

    from codi_probe.experiments import ablation
    from codi_probe.experiments.problems import family_problems
    from codi_probe.hypotheses import test_importance

    problems = list(family_problems("gsm8k", 3))

    def sets():
        return ablation.set_ablation(engine, problems, test_importance.PREFIXES[:2], layer=0, max_new_tokens=4)

    assert _verdict(test_importance.test_set_effects_name_their_sets, small_sets=(sets(), SimpleNamespace())) is True
    monkeypatch.setattr(ablation, "set_label", lambda positions: sorted(positions)[-1])
    assert _verdict(test_importance.test_set_effects_name_their_sets, small_sets=(sets(), SimpleNamespace())) is False
