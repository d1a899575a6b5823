"""codi_probe.validity: rows, per-model recall and specificity, their floors and the power at the measured
effect, on reports whose verdicts are set by hand."""

from __future__ import annotations

import json

import pytest
from scipy import stats

from codi_probe.design import Design
from codi_probe.hypothesis import ALPHA
from codi_probe.planted import planted_truths
from codi_probe.validity import check_floors, power_at_measured, rows_of, summarise, validate


def report(design: Design, verdicts: dict[str, str], status: str = "complete", claims: dict | None = None) -> dict:
    return {"status": status, "options": {"model": "m"}, "expectations": {"design": design.to_json()},
            "claims": [{"id": k, "verdict": v, **(claims or {}).get(k, {})} for k, v in verdicts.items()]}


PLANTED = Design("planted", {"step1": 2, "step2": 4})
PAUSE = Design("pause")


def all_right(design: Design) -> dict[str, str]:
    return {k: t.verdicts[0] for k, t in planted_truths(design).items()}


def by_model(**reports) -> tuple[dict, list]:
    rows = {m: rows_of(r, m) for m, r in reports.items()}
    return {m: summarise(r) for m, r in rows.items()}, [row for r in rows.values() for row in r]


def test_every_truth_recovered_meets_the_floors() -> None:
    summaries, rows = by_model(planted=report(PLANTED, all_right(PLANTED)), pause=report(PAUSE, all_right(PAUSE)))
    planted, pause = summaries["planted"], summaries["pause"]
    assert (planted.positives, planted.negatives) == (4, 1)  # the carriers; NEW-08 (never supported)
    # pause: PATCH-06 and NEW-05 supported; 36 CARRY-* and 6 PATCH-02 refuted, PATCH-01 x6, OP-01, OP-02, OP-04,
    # PATCH-05 never supported; NEW-08 (may be supported) is neither
    assert (pause.positives, pause.negatives) == (2, 42 + 10)
    assert planted.recall == pause.recall == pause.specificity == 1.0 and pause.constraints == 11
    assert check_floors(summaries, rows) == []


def test_floors_are_per_model_not_pooled() -> None:
    """One carrier missed on the planted model: pooled over both models recall would be 5/6 and the
    specificity 53/53, but the planted model alone has recall 3/4 < 95%, which the check names."""
    verdicts = all_right(PLANTED) | {"CARRY-PATCH[step2@P4]": "inconclusive"}
    summaries, rows = by_model(planted=report(PLANTED, verdicts), pause=report(PAUSE, all_right(PAUSE)))
    assert (summaries["planted"].positives_recovered, summaries["planted"].inconclusive) == (3, 1)
    assert check_floors(summaries, rows) == ["planted: recall 3/4 (75.0%) < 95%"]


def test_specificity_counts_refutations_and_constraints() -> None:
    """Pause: three refuted truths measured inconclusive are misses (49/52 = 94% < 95%), but a constraint
    measured inconclusive is met."""
    wrong = {"CARRY-DECODE[step1@P1]", "CARRY-PATCH[step1@P1]", "CARRY-DIRECT[step1@P1]"}
    verdicts = all_right(PAUSE) | {k: "inconclusive" for k in wrong} | {"OP-01": "inconclusive"}
    summaries, rows = by_model(pause=report(PAUSE, verdicts))
    s = summaries["pause"]
    assert (s.negatives_met, s.negatives, s.constraints_broken) == (49, 52, 0)
    assert check_floors(summaries, rows) == ["pause: specificity 49/52 (94.2%) < 95%"]


def test_a_supported_content_claim_on_the_control_bites() -> None:
    verdicts = all_right(PAUSE) | {"CARRY-DECODE[step1@P1]": "supported", "PATCH-01[P2]": "supported"}
    summaries, rows = by_model(pause=report(PAUSE, verdicts))
    assert summaries["pause"].control_false_supported == 2 and summaries["pause"].constraints_broken == 1
    problems = check_floors(summaries, rows)
    assert any("negative control" in p for p in problems) and any("forbids" in p for p in problems)


def test_a_claim_that_did_not_run_is_a_miss() -> None:
    verdicts = all_right(PLANTED)
    del verdicts["CARRY-DECODE[step2@P4]"]
    rows = rows_of(report(PLANTED, verdicts))
    assert [r.measured for r in rows if r.claim == "CARRY-DECODE[step2@P4]"] == [None]
    assert summarise(rows).positives_recovered == 3


def share_claim(k: int, n: int, size: int, verdict: str) -> dict:
    """A claim decided on k/n against 0.5 (exact binomial) in a Holm family of ``size``."""
    return {"hypothesis": {"predictions": [{"statistic": "share", "direction": "greater", "threshold": 0.5}],
                           "combine": "all"},
            "family": {"size": size}, "p_value": 0.01, "p_refute": 1.0, "verdict": verdict,
            "evidence": [{"statistic": "share", "value": k / n, "lo": 0.0, "hi": 1.0, "n": n, "p_support": 0.001,
                          "p_refute": 1.0, "method": "exact binomial test, Clopper-Pearson interval"}]}


def exact_power(k: int, n: int, size: int) -> float:
    """The oracle: the binomial outcomes scipy's binomtest rejects at ALPHA / size, weighted at k / n."""
    reject = [j for j in range(n + 1) if stats.binomtest(j, n, 0.5, "greater").pvalue < ALPHA / size]
    return float(sum(stats.binom.pmf(j, n, k / n) for j in reject))


def test_power_at_the_measured_effect_is_the_exact_binomial_power() -> None:
    """CARRY-PATCH[step2@P4] on codi-tiny-planted: 65/100 in a family of 12 is decided with power ~0.5,
    far below 0.99; 95/100 is decided with power ~1."""
    weak, strong = power_at_measured(share_claim(65, 100, 12, "supported"), "supported"), \
        power_at_measured(share_claim(95, 100, 12, "supported"), "supported")
    assert weak == pytest.approx(exact_power(65, 100, 12), abs=1e-9) and weak < 0.9
    assert strong == pytest.approx(exact_power(95, 100, 12), abs=1e-9) and strong > 0.99
    # refuting "> 0.5" at 2/100: the power of the opposite one-sided test
    refute = dict(share_claim(2, 100, 12, "refuted"))
    assert power_at_measured(refute, "refuted") > 0.99


def test_the_table_names_the_weakest_truth_and_min_power_fails_it() -> None:
    claims = {"CARRY-PATCH[step2@P4]": share_claim(65, 100, 12, "supported")} | {
        k: share_claim(95, 100, 12, "supported") for k in ("CARRY-PATCH[step1@P2]", "CARRY-DECODE[step1@P2]",
                                                           "CARRY-DECODE[step2@P4]")}
    summaries, rows = by_model(planted=report(PLANTED, all_right(PLANTED), claims=claims))
    assert summaries["planted"].weakest == "CARRY-PATCH[step2@P4]"
    assert check_floors(summaries, rows) == []  # reported, not enforced, by default
    assert [p.split(" decided")[0] for p in check_floors(summaries, rows, min_power=0.99)] == \
        ["planted: CARRY-PATCH[step2@P4]"]


def test_an_exclusive_map_contributes_twelve_direct_effect_truths() -> None:
    design = Design("planted", {"step1": 3, "step2": 5}, exclusive=True)
    rows = [r for r in rows_of(report(design, all_right(design))) if r.claim.startswith("CARRY-DIRECT[")]
    assert len(rows) == 12 and all(r.definite and r.agrees for r in rows)
    assert sorted(r.kind for r in rows) == ["negative"] * 10 + ["positive"] * 2


def test_validate_reads_reports_and_refuses_partial_ones(tmp_path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(report(PLANTED, all_right(PLANTED))))
    out = validate(["a"], tmp_path, run=False)
    assert out["problems"] == [] and out["by_model"]["a"]["recall"] == 1.0
    assert "| a | planted | 4/4 (100%) | 1/1 (100%) |" in out["markdown"]
    json.dumps(out, allow_nan=False)  # valid JSON: no NaN for a model without positives or negatives
    (tmp_path / "b.json").write_text(json.dumps(report(PLANTED, {}, status="interrupted")))
    with pytest.raises(ValueError, match="did not complete"):
        validate(["b"], tmp_path, run=False)
    with pytest.raises(FileNotFoundError, match="no hypotheses directory"):
        validate(["a"], tmp_path, hypotheses=tmp_path / "none")


def test_the_echo_control_is_a_control_too() -> None:
    """A latent-content claim supported on the echo control fails the control floor, as on the pause control
    (it once counted pause models only)."""
    echo = Design("echo")
    summaries, rows = by_model(echo=report(echo, all_right(echo)))
    assert summaries["echo"].control_content > 0 and check_floors(summaries, rows) == []
    verdicts = all_right(echo) | {"CARRY-DECODE[step1@P1]": "supported"}
    summaries, rows = by_model(echo=report(echo, verdicts))
    assert summaries["echo"].control_false_supported == 1
    assert any("negative control" in p for p in check_floors(summaries, rows))


def test_a_model_in_validate_problems_runs_at_its_n_unless_told_otherwise(tmp_path, monkeypatch) -> None:
    """codi-tiny-mcyw is validated at the n where its truths have power >= 0.99; an explicit --problems or
    --depth wins; other models keep the tier's n."""
    import codi_probe.validity as validity

    seen = {}

    def fake_run(model, path, hypotheses, extra):
        seen[model] = list(extra)
        path.write_text(json.dumps(report(Design(), {})))
        return 0

    monkeypatch.setattr(validity, "run_catalogue", fake_run)
    monkeypatch.setattr(validity, "catalogue_dir", lambda given=None: tmp_path)
    n = validity.VALIDATE_PROBLEMS["codi-tiny-mcyw"]
    validate(["codi-tiny-mcyw", "tiny-random-gpt2"], tmp_path, extra=["-m", "decided or invariant"])
    assert seen == {"codi-tiny-mcyw": ["-m", "decided or invariant", "--codi-problems", str(n)],
                    "tiny-random-gpt2": ["-m", "decided or invariant"]}
    validate(["codi-tiny-mcyw"], tmp_path, extra=["--codi-problems", "50"])
    assert seen["codi-tiny-mcyw"] == ["--codi-problems", "50"]


def test_the_power_exceptions_are_shipped_models_with_a_reason() -> None:
    """CI checks --min-power on every model of VALIDATE_MODELS but those POWER_SHORT names, each with why."""
    from codi_probe.validity import POWER_SHORT, VALIDATE_MODELS, VALIDATE_PROBLEMS

    assert set(POWER_SHORT) <= set(VALIDATE_MODELS) and all(POWER_SHORT.values())
    assert set(VALIDATE_PROBLEMS) <= set(VALIDATE_MODELS) and not set(VALIDATE_PROBLEMS) & set(POWER_SHORT)
