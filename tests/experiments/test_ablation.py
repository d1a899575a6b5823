"""Position-set ablation: each set's run against a hand-built run, and the F-15 label guard planted."""

import numpy as np
import pytest

from codi_probe.engine import Intervention, Zero
from codi_probe.experiments.ablation import SetEffect, mislabelled, set_ablation, set_label
from codi_probe.data.problemset import Problem


def _problems(questions):
    return [Problem(id=str(i), question=q, answer=1.0) for i, q in enumerate(questions)]


def test_set_label_is_canonical():
    assert set_label(["P2", "P0", "P1", "P0"]) == "{P0,P1,P2}"


def test_set_run_equals_per_position_interventions(engine, questions):
    res = set_ablation(engine, _problems(questions), [("P2", "P1"), ("P0",)], layer=0, max_new_tokens=4)
    ref = engine.run(questions, max_new_tokens=4, variants=[
        (i, [Intervention("resid_post", ("P1",), Zero(), layer=0), Intervention("resid_post", ("P2",), Zero(), layer=0)])
        for i in range(len(questions))])
    assert set(res.effects) == {"{P1,P2}", "{P0}"} and res["P1", "P2"].set_size == 2
    base = engine.run(questions, max_new_tokens=4)
    assert res.baseline_correct.tolist() == [a == 1.0 for a in base.answer]
    assert res["P2", "P1"].correct.tolist() == [a == 1.0 for a in ref.answer]
    with pytest.raises(ValueError, match="latent positions"):
        set_ablation(engine, _problems(questions), [("EOT",)], layer=0)


def test_the_label_guard_bites_on_a_prefix_labelled_as_one_position():
    z = np.zeros(3, dtype=bool)
    honest = {"{P0,P1,P2}": SetEffect("{P0,P1,P2}", ("P0", "P1", "P2"), z, z)}
    assert mislabelled(honest) == []
    planted = {"P2": SetEffect("P2", ("P0", "P1", "P2"), z, z),  # MECH-02: "position 2" = zeroed prefix
               "{P3}": SetEffect("{P3}", ("P0", "P1", "P2", "P3"), z, z)}
    assert mislabelled(planted) == ["P2", "{P3}"]


def test_mean_and_resample_set_ablation(engine, questions):
    from codi_probe.engine import Mean, Record

    problems = _problems(questions)
    clean = engine.run(questions, record=Record(sites=("resid_post",)), max_new_tokens=4)
    mean = set_ablation(engine, problems, [("P1", "P2")], layer=0, max_new_tokens=4, method="mean", clean=clean)
    ref = engine.run(questions, max_new_tokens=4, variants=[
        (i, [Intervention("resid_post", ("P1", "P2"), Mean(clean), layer=0)]) for i in range(len(questions))])
    assert mean.method == "mean" and mean["P1", "P2"].correct.tolist() == [a == 1.0 for a in ref.answer]
    res = set_ablation(engine, problems, [("P3",)], layer=0, max_new_tokens=4, method="resample", clean=clean)
    assert res.method == "resample" and len(res[("P3",)].correct) == len(questions)
    with pytest.raises(ValueError, match="clean trace"):
        set_ablation(engine, problems, [("P3",)], layer=0, method="mean")
    with pytest.raises(ValueError, match="unknown ablation method"):
        set_ablation(engine, problems, [("P3",)], layer=0, method="shuffle")
