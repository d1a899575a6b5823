"""``--codi-randomization-check``: every empirical claim also runs on a weight-randomized twin of the model.

The model-randomization sanity check (Adebayo et al. 2018): a claim supported on the model under test and
on its twin (:func:`codi_probe.randomization.randomize_weights`: same architecture, tokenizer and config,
every weight re-drawn, LoRA and ``prj`` too, seeded by ``--codi-seed``) measures nothing specific to what
training put into the weights. The report marks it ``not_specific_to_training``; the terminal line and the
HTML report say ``not specific to training``.

How a claim gets its second verdict without a second copy of its code: after collection (and after ``-k``,
``-m`` and pytest's own reordering), each selected empirical claim that uses ``codi_model`` gets a twin item,
``<name>@randomized``: the same test function, fixtures and parameters, whose ``codi_model`` request carries
the session-scoped parameter :data:`RANDOMIZED`. The twins run after every other test, so pytest tears the
model's session fixtures (engine, traces, CCTA grid, ...) down once and builds them once more on the twin
(``codi_model`` then returns the session fixture ``codi_randomized_model``); every claim's code, its fixtures
and the shared work run unchanged. A twin's verdict is only recorded (never checked against the
expectation profile or a baseline); the report folds it into its claim's record (:func:`attach_twins`).
With the option off nothing is added: no twin item, no second model, the same run.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import pytest

RANDOMIZED = "randomized"  # the session-scoped parameter of ``codi_model`` in a twin item
SUFFIX = "@" + RANDOMIZED  # a twin item's name: its claim test's name plus this
NOT_SPECIFIC = "not specific to training"
TWIN_WHY = "randomized twin (model-randomization check): the verdict is recorded, never checked"
TWIN_FIELDS = ("verdict", "verdict_reason", "statistic", "value", "ci", "p_value", "p_refute", "n", "min_n",
               "outcome", "message", "nodeid", "duration_s")


def is_twin_nodeid(nodeid: str) -> bool:
    return nodeid.endswith(SUFFIX)


def is_twin(item: pytest.Item) -> bool:
    """Is ``item`` the randomized twin of a claim test?"""
    return is_twin_nodeid(item.nodeid)


def is_randomized(request: pytest.FixtureRequest) -> bool:
    """Does this ``codi_model`` request come from a twin item (its parameter is :data:`RANDOMIZED`)?"""
    return getattr(request, "param", None) == RANDOMIZED


def wants_twin(item: pytest.Item) -> bool:
    """An empirical claim (its kind given in the marker or as the ``empirical`` marker, which collection adds
    for the former) that uses the model, and not a twin itself."""
    return (isinstance(item, pytest.Function) and item.get_closest_marker("claim") is not None
            and item.get_closest_marker("empirical") is not None
            and "codi_model" in getattr(item, "fixturenames", ()) and not is_twin(item))


def make_twin(item: pytest.Function) -> pytest.Function:
    """The twin of ``item``: the same function, fixture closure, parameters and markers; its ``codi_model``
    is parametrized (session scope) with :data:`RANDOMIZED`, so its id and record keep the claim's own."""
    from _pytest.python import CallSpec2  # no public constructor of an item's parameters
    from _pytest.scope import Scope

    spec = getattr(item, "callspec", None) or CallSpec2()
    spec = dataclasses.replace(spec, params={**spec.params, "codi_model": RANDOMIZED},
                               indices={**spec.indices, "codi_model": 1},
                               _arg2scope={**spec._arg2scope, "codi_model": Scope.Session})
    twin = pytest.Function.from_parent(item.parent, name=item.name + SUFFIX, callspec=spec, callobj=item.obj,
                                       fixtureinfo=item._fixtureinfo, originalname=item.originalname)
    for mark in item.own_markers:  # markers added at collection (empirical, decided) as well
        if mark not in twin.own_markers:
            twin.own_markers.append(mark)
            twin.keywords[mark.name] = mark
    return twin


# ------------------------------------------------------------------------------------------- the report
def split_twins(entries: list[Any]) -> tuple[list[Any], list[Any]]:
    """(the run's own test entries, the twins' entries), each in the given order."""
    return ([e for e in entries if not is_twin_nodeid(e.nodeid)], [e for e in entries if is_twin_nodeid(e.nodeid)])


def attach_twins(claims: list[dict[str, Any]], twins: list[Any], session: dict[str, Any]) -> dict[str, Any]:
    """Fold each twin's verdict into its claim (``randomized``: the twin's verdict, numbers and outcome;
    ``not_specific_to_training``: supported on both); returns the report's ``randomization`` section."""
    by_nodeid = {c["nodeid"]: c for c in claims}
    outcomes: Counter[str] = Counter()
    for entry in twins:
        done = {"nodeid": entry.nodeid, **(entry.claim or {}), **entry.to_dict()}
        outcomes[done["outcome"]] += 1
        claim = by_nodeid.get(entry.nodeid.removesuffix(SUFFIX))
        if claim is None:
            continue
        claim["randomized"] = {key: done.get(key) for key in TWIN_FIELDS}
        claim["not_specific_to_training"] = claim.get("verdict") == done.get("verdict") == "supported"
    marked = [c["id"] for c in claims if c.get("not_specific_to_training")]
    return {"model": session.get("randomized_model"), "tests": len(twins), "outcomes": dict(sorted(outcomes.items())),
            "claims": sum("randomized" in c for c in claims), "not_specific_to_training": marked}


def twin_note(claim: dict[str, Any]) -> str:
    """`` (randomized: refuted)``, or `` (randomized: supported) [not specific to training]``; empty for a
    claim without a twin."""
    twin = claim.get("randomized")
    if not twin:
        return ""
    note = f" (randomized: {twin.get('verdict') or twin.get('outcome')})"
    return note + (f" [{NOT_SPECIFIC}]" if claim.get("not_specific_to_training") else "")


__all__ = ["NOT_SPECIFIC", "RANDOMIZED", "SUFFIX", "attach_twins", "is_randomized", "is_twin", "is_twin_nodeid",
           "make_twin", "split_twins", "twin_note", "wants_twin"]
