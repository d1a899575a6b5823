"""ClaimRecorder and to_plain, without pytest runs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from codi_probe.plugin.jsonable import to_plain
from codi_probe.plugin.recorder import ClaimRecorder
from codi_probe.plugin.records import ClaimRecord


class FakeTensor:
    """Duck-typed like a torch tensor on a device (detach, cpu, tolist)."""

    def __init__(self, values):
        self.values = values

    def detach(self):
        return self

    def cpu(self):
        return self

    def tolist(self):
        return self.values


@dataclass
class Point:
    x: float
    y: np.float32


def recorder(kind: str = "empirical") -> ClaimRecorder:
    return ClaimRecorder(ClaimRecord(id="IMP-01[P5]", base_id="IMP-01", kind=kind, statement="s"))


def test_to_plain_converts_numeric_containers() -> None:
    value = {"a": np.float32(0.5), "b": np.arange(3), 3: (np.int64(2), {np.int8(1)}), "t": FakeTensor([[1.0]]),
             "nan": float("nan"), "inf": np.float64("inf"), "p": Point(1.0, np.float32(2.0)), "o": object}
    plain = to_plain(value)
    assert plain["a"] == 0.5 and type(plain["a"]) is float
    assert plain["b"] == [0, 1, 2] and all(type(v) is int for v in plain["b"])
    assert plain["3"] == [2, [1]]
    assert plain["t"] == [[1.0]] and plain["nan"] is None and plain["inf"] is None
    assert plain["p"] == {"x": 1.0, "y": 2.0}
    assert isinstance(plain["o"], str)


def test_record_merges_and_converts() -> None:
    rec = recorder()
    rec.record("acc_drop", np.float64(0.3), ci=(np.float32(0.25), 0.35), p_value=np.float64(0.01), n=np.int64(50),
               effect_size=0.8, effect_size_name="cohens_d", threshold=0.1, statistics={"kl": FakeTensor([0.2])})
    rec.record(verdict="supported", details={"per_problem": np.ones(2)})
    data = rec.record_data
    assert data["statistic"] == "acc_drop" and data["value"] == 0.3 and data["n"] == 50
    assert data["ci"] == {"lo": 0.25, "hi": 0.35, "level": 0.95}
    assert data["effect_size"] == {"name": "cohens_d", "value": 0.8}
    assert data["statistics"] == {"acc_drop": 0.3, "kl": [0.2]}
    assert data["verdict"] == "supported" and data["details"] == {"per_problem": [1.0, 1.0]}


def test_non_finite_values_are_null_and_named() -> None:
    data = recorder().record("m", float("nan"), ci=(0.0, math.inf), statistics={"x": np.nan}).record_data
    assert data["value"] is None and data["ci"]["hi"] is None
    assert data["non_finite"] == ["value", "ci.hi", "statistics.x"]


def test_scipy_confidence_interval_objects_are_accepted() -> None:
    from scipy.stats import binomtest

    ci = binomtest(7, 10).proportion_ci(confidence_level=0.9)
    data = recorder().record("rate", 0.7, ci=ci, ci_level=0.9).record_data
    assert data["ci"] == {"lo": pytest.approx(ci.low), "hi": pytest.approx(ci.high), "level": 0.9}


@pytest.mark.parametrize(("call", "message"), [
    (lambda r: r.set_verdict("maybe"), "unknown verdict 'maybe'"),
    (lambda r: r.record(p_value=1.5), "p_value must lie in [0, 1]"),
    (lambda r: r.record(value=1.0), "needs a statistic name"),
    (lambda r: r.record("m", "high"), "expected a number"),
    (lambda r: r.decide(n=1), "needs a hypothesis= in the claim marker"),
])
def test_bad_records_raise(call, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[").replace("]", r"\]")):
        call(recorder())


def hyp_recorder(hyp) -> ClaimRecorder:
    return ClaimRecorder(ClaimRecord(id="IMP-01[P5]", base_id="IMP-01", kind="empirical", statement="s"), hyp)


@pytest.mark.parametrize(("p_support", "p_refute", "verdict"), [
    (0.001, 0.99, "supported"), (0.99, 0.001, "refuted"), (0.3, 0.4, "inconclusive")])
def test_decide_records_the_rule_and_its_inputs(p_support, p_refute, verdict) -> None:
    from codi_probe.hypothesis import Evidence, Hypothesis, Prediction

    hyp = Hypothesis(Prediction("m", "greater", 0.1), min_n=10, controls=("control",))
    rec = hyp_recorder(hyp)
    assert rec.decide(Evidence("m", 0.2, 0.15, 0.25, 20, p_support, p_refute, "t"), n=20,
                      controls={"control": True}) == verdict == rec.verdict
    data = rec.record_data
    assert (data["statistic"], data["value"], data["threshold"], data["n"], data["min_n"]) == ("m", 0.2, 0.1, 20, 10)
    assert data["p_value"] == p_support and data["p_refute"] == p_refute and data["evidence"][0]["method"] == "t"
    assert data["verdict_reason"]
    bad = hyp_recorder(hyp)
    assert bad.decide([], n=20, controls={"control": False}) == "invalid"
    assert "failed control: control" in bad.record_data["verdict_reason"]
    small = hyp_recorder(hyp)
    assert small.decide([], n=5, controls={"control": True}) == "inconclusive"
    assert small.record_data["verdict_reason"] == "n below minimum (5 < 10)"


def test_check_sets_an_invariants_verdict() -> None:
    rec = recorder("invariant")
    assert rec.check(True) and rec.verdict == "supported"
    assert not rec.check(False) and rec.verdict == "refuted"
