"""Carrier maps: which fed latent carries which intermediate, per (intermediate, P_k), three properties.

- ``CARRY-DECODE``: *decodability*: the value can be read from e_k. A value computed at a carrier is
  often decodable downstream (and upstream) of it too, so this does not locate a carrier.
- ``CARRY-PATCH``: *total effect*: patching e_k (later fed latents recomputed) moves the answer. A
  position upstream of a carrier passes its effect on through the carrier, so this does not locate a
  carrier either.
- ``CARRY-DIRECT``: *direct effect*: patching e_k with every later fed latent held at its clean value
  moves the answer to the one implied with every other intermediate at its own value. This is the
  carrier property: on an exclusive planted map (``codi_probe.design``) it is supported at the carriers
  and refuted at every other site; on the pause control (constant fed latents) and the random models
  it cannot be supported anywhere.

Methods: ``codi_probe.experiments.carriers`` (grouped-fold nearest-mean decoding of the fed latent e_k;
patching e_k with the mean latent of another value's problems, scored against the implied answer, with a
random-direction null control at the same site and, for the direct effect, the same held latents)."""

import numpy as np
import pytest

from codi_probe import stats
from codi_probe.design import INTERMEDIATES
from codi_probe.experiments.carriers import (decode_accuracy, grouped_folds, intermediate_values, scorable,
                                             value_patching)
from codi_probe.hypothesis import Hypothesis, Prediction, combine

SITES = [f"{name}@P{k}" for name in INTERMEDIATES for k in range(1, 7)]


def _site(key: str) -> tuple[str, int]:
    name, position = key.split("@")
    return name, int(position[1:])


DECODE = Hypothesis((Prediction("held-out-operand decoding accuracy", "greater", 0.5),), family="CARRY-DECODE")


@pytest.fixture(scope="module")
def carrier_decoding(template_problems, template_trace, codi_options):
    """Per site: the problems' decoding outcomes and the majority-value rate (chance for a constant latent)."""
    problems = list(template_problems)
    folds = grouped_folds(problems, seed=codi_options.seed)
    out = {}
    for key in SITES:
        name, k = _site(key)
        values = intermediate_values(problems, name)
        ok = scorable(values, folds)
        right = decode_accuracy(template_trace.latent_post[:, k - 1], values, folds)[ok]
        # no scorable problem (a handful of problems): no evidence, the rule decides n below minimum
        ev = [stats.proportion_evidence(int(right.sum()), len(right), DECODE.predictions[0])] if len(right) else []
        majority = float(np.unique(values[ok], return_counts=True)[1].max() / ok.sum()) if ok.any() else None
        info = {"majority-value rate": majority, "left out (value in no training fold)": int((~ok).sum())}
        out[key] = (ev, info, combine(DECODE, ev, len(right)))
    return out


@pytest.mark.claim(id="CARRY-DECODE", kind="empirical",
                   statement="decodability (not carrier location): the intermediate's value is read from the fed "
                             "latent e_k for > 50% of problems whose "
                             "(operation, X, Y) no training fold holds (nearest class mean, 5 grouped folds; problems whose value "
                             "no training fold holds are left out)",
                   source="planted-truth claim (issue 14; SIM-CoT / claims-2026 NEW-04, NEW-09): decides a carrier "
                          "map's decodability at each site", reported="n/a", hypothesis=DECODE)
@pytest.mark.parametrize("site", SITES)
def test_carrier_decodable(carrier_decoding, claim, site):
    decide_site(claim, carrier_decoding, site)


def decide_site(claim, outcomes: dict, site: str) -> None:
    """Record one site's statistics and decide it inside its family of 12 sites."""
    ev, info, outcome = outcomes[site]
    claim.record(statistics=info)
    claim.decide(ev, n=outcome.n, family={k: o for k, (*_, o) in outcomes.items()}, member=site)


PATCH = Hypothesis((Prediction("share moved to the implied answer", "greater", 0.5),
                    Prediction("moved - random-direction control (paired)", "greater", 0.0)),
                   family="CARRY-PATCH")


def patch_outcomes(engine, problems, trace, seed: int, hypothesis: Hypothesis, *, hold_later: bool) -> dict:
    """Per site: the value-patch evidence (share moved; moved - random control, paired), statistics and
    outcome under ``hypothesis``; ``hold_later``: the direct effect (later fed latents held clean)."""
    runs = value_patching(engine, list(problems), trace, [_site(key) for key in SITES], seed=seed,
                          hold_later=hold_later)
    out = {}
    for key in SITES:
        run = runs[_site(key)]
        n = len(run.rows)
        ev = []
        if n:
            ev = [stats.proportion_evidence(int(run.moved.sum()), n, hypothesis.predictions[0]),
                  stats.paired_binary_evidence(run.control, run.moved, hypothesis.predictions[1])]
        info = {"random control rate": float(run.control.mean()) if n else None,
                "baseline accuracy": float(run.baseline_correct.mean()) if n else None}
        out[key] = (ev, info, combine(hypothesis, ev, n))
    return out


@pytest.fixture(scope="module")
def carrier_patching(codi_engine, template_problems, template_trace, codi_options):
    return patch_outcomes(codi_engine, template_problems, template_trace, codi_options.seed, PATCH, hold_later=False)


@pytest.mark.claim(id="CARRY-PATCH", kind="empirical",
                   statement="total effect (not carrier location): setting the fed latent e_k to the mean e_k of "
                             "problems whose intermediate is v', the later fed latents recomputed, moves "
                             "the answer to the one v' implies (a set step 1 carried into step 2) for > 50% of "
                             "problems, more often than a norm-matched random direction there (exact Tango test)",
                   source="planted-truth claim (issue 14; CYW exp 5 / PATCH-02 generalised to both intermediates "
                          "and every fed position): a site's total (mediated) causal effect; upstream of a carrier "
                          "it is passed on through the carrier",
                   reported="n/a", hypothesis=PATCH)
@pytest.mark.parametrize("site", SITES)
def test_carrier_causal(carrier_patching, claim, site):
    decide_site(claim, carrier_patching, site)


DIRECT = Hypothesis((Prediction("share moved to the implied answer, later fed latents held", "greater", 0.5),
                     Prediction("moved - random-direction control (paired, later fed latents held)", "greater", 0.0)),
                    family="CARRY-DIRECT")


@pytest.fixture(scope="module")
def carrier_direct(codi_engine, template_problems, template_trace, codi_options):
    return patch_outcomes(codi_engine, template_problems, template_trace, codi_options.seed, DIRECT, hold_later=True)


@pytest.mark.claim(id="CARRY-DIRECT", kind="empirical",
                   statement="direct effect (carrier location): setting the fed latent e_k to the mean e_k of "
                             "problems whose intermediate is v', with every later fed latent e_j (j > k) held at the "
                             "problem's own clean value, moves the answer to the one v' implies with the other "
                             "intermediate at its own value (answer = step1 + step2) for > 50% of problems, more "
                             "often than a norm-matched random direction there with the same latents held (exact "
                             "Tango test)",
                   source="planted-truth claim (issue 29; path-specific patching, Pearl's controlled direct "
                          "effect of e_k on the answer): locates a carrier, where CARRY-DECODE and CARRY-PATCH "
                          "also fire upstream and downstream of it",
                   reported="n/a", hypothesis=DIRECT)
@pytest.mark.parametrize("site", SITES)
def test_carrier_direct(carrier_direct, claim, site):
    decide_site(claim, carrier_direct, site)

