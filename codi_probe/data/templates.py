"""Template problem families with ground-truth intermediates (claims.md 2.3 and 2.4).

CYW (``family="cyw"``): 10 scenarios x {addition, subtraction}; step1 = X +/- Y, step2 = step1 * Z,
answer = step1 + step2; intermediates = (step1, step2, answer); prompts end with ``CYW_SUFFIX``.
Only the team/addition wording is pinned to the published canonical prompt; the other nine
scenarios follow the slot description (entity/unit, verbs) and may differ in wording from CYW's
files. Units are always plural (as in the canonical prompt), so token counts do not depend on X/Y/Z.

AO (``family="ao"``): add: step1 = X+Y, step2 = step1*Z; sub (X > Y): step1 = X-Y, step2 = step1*Z;
mul: step1 = X*Y, step2 = step1+Z; answer = step2; intermediates = (step1, step2). Wordings are
written for this suite (3 per operation), not copied from AO's script.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .problemset import Problem, ProblemSet

CYW_SUFFIX = "Give the answer only and nothing else."


@dataclass(frozen=True)
class Scenario:
    """Slots of one CYW scenario template."""

    entity: str
    units: str
    unit: str
    add_verb: str
    new_word: str
    sub_verb: str
    bring_verb: str
    prep: str


CYW_SCENARIOS: tuple[Scenario, ...] = (
    Scenario("team", "members", "member", "recruit", "new", "leave", "recruits", "on"),
    Scenario("company", "employees", "employee", "hire", "new", "resign", "refers", "in"),
    Scenario("school", "students", "student", "enroll", "new", "transfer out", "brings", "in"),
    Scenario("club", "members", "member", "welcome", "new", "quit", "invites", "in"),
    Scenario("restaurant", "customers", "customer", "seat", "more", "cancel", "brings", "in"),
    Scenario("gym", "members", "member", "sign up", "new", "depart", "refers", "in"),
    Scenario("band", "musicians", "musician", "add", "new", "move away", "invites", "in"),
    Scenario("community", "residents", "resident", "welcome", "more", "drop out", "invites", "in"),
    Scenario("group", "participants", "participant", "admit", "more", "withdraw", "brings", "in"),
    Scenario("workshop", "attendees", "attendee", "register", "more", "leave", "refers", "in"),
)
CYW_FAMILIES = ("addition", "subtraction")


def cyw_prompt(scenario: Scenario, family: str, x: int, y: int, z: int) -> str:
    """The CYW prompt of one scenario and family, with the answer-only suffix."""
    s = scenario
    if family == "addition":
        change, who = f"They {s.add_verb} {y} {s.new_word} {s.units}.", "current"
    elif family == "subtraction":
        change, who = f"{y} {s.units} {s.sub_verb}.", "remaining"
    else:
        raise ValueError(f"CYW family must be one of {CYW_FAMILIES}, got {family!r}")
    return (
        f"A {s.entity} starts with {x} {s.units}. {change} Then each {who} {s.unit} {s.bring_verb} {z} "
        f"additional people. How many people are there now {s.prep} the {s.entity}? {CYW_SUFFIX}"
    )


def cyw_combos(seed: int = 42, low: int = 1, high: int = 8) -> list[tuple[int, int, int]]:
    """All (X, Y, Z) in [low, high]^3 with X > Y, in ``product`` order shuffled by ``np.random.seed(seed)``."""
    combos = [(x, y, z) for x, y, z in itertools.product(range(low, high + 1), repeat=3) if x > y]
    order = np.random.RandomState(seed).permutation(len(combos))
    return [combos[i] for i in order]


def cyw_problem(template: int, family: str, x: int, y: int, z: int, index: int = 0, seed: int | None = None) -> Problem:
    """One CYW problem; subtraction needs X > Y. ``cyw_problem(0, "addition", 3, 5, 2)`` is the
    canonical team prompt (8, 16, 24)."""
    if family == "subtraction" and not x > y:
        raise ValueError(f"CYW subtraction needs X > Y, got X={x}, Y={y}")
    step1 = x + y if family == "addition" else x - y
    step2 = step1 * z
    return Problem(
        id=f"cyw-{family}-t{template}-p{index}",
        question=cyw_prompt(CYW_SCENARIOS[template], family, x, y, z),
        answer=float(step1 + step2),
        steps=3,
        family="cyw",
        operation="add" if family == "addition" else "sub",
        intermediates=(float(step1), float(step2), float(step1 + step2)),
        template=template,
        meta={"X": x, "Y": y, "Z": z, "cyw_family": family, "prompt_idx_in_template": index, "seed": seed},
    )


def cyw_template_problems(
    families: tuple[str, ...] = CYW_FAMILIES,
    *,
    prompts_per_template: int = 50,
    seed: int = 42,
    value_range: tuple[int, int] = (1, 8),
    templates: tuple[int, ...] | range = range(len(CYW_SCENARIOS)),
) -> ProblemSet:
    """CYW prompts: the first ``prompts_per_template`` shuffled combos, shared by every template.

    Default: 2 families x 10 templates x 50 = 1000 problems, ids ``cyw-<family>-t<t>-p<i>``.
    """
    combos = cyw_combos(seed, *value_range)[:prompts_per_template]
    problems = [
        cyw_problem(t, family, x, y, z, i, seed)
        for family, t, (i, (x, y, z)) in itertools.product(families, templates, enumerate(combos))
    ]
    return ProblemSet(problems, name=f"cyw(seed={seed},n={prompts_per_template})", source="generated")


AO_ENTITIES: tuple[tuple[str, str], ...] = (
    ("team", "members"), ("company", "workers"), ("school", "students"), ("club", "players"),
    ("farm", "sheep"), ("library", "books"), ("shop", "boxes"), ("garden", "plants"),
    ("zoo", "animals"), ("choir", "singers"),
)
AO_WORDINGS: dict[str, tuple[str, ...]] = {
    "add": (
        "A {e} has {X} {u}. It gains {Y} more {u}. Then the number of {u} is multiplied by {Z}. "
        "How many {u} does the {e} have now?",
        "There are {X} {u} in a {e}, and {Y} more {u} arrive. Later the {e} becomes {Z} times as "
        "large. How many {u} are in the {e}?",
        "A {e} starts with {X} {u} and adds {Y} {u}. Each of its {u} is then replaced by {Z} {u}. "
        "How many {u} are there in total?",
    ),
    "sub": (
        "A {e} has {X} {u}. It loses {Y} {u}. Then the number of {u} is multiplied by {Z}. "
        "How many {u} does the {e} have now?",
        "There are {X} {u} in a {e}, and {Y} {u} leave. Later the {e} becomes {Z} times as large. "
        "How many {u} are in the {e}?",
        "A {e} starts with {X} {u} and removes {Y} {u}. Each remaining one is then replaced by {Z} "
        "{u}. How many {u} are there in total?",
    ),
    "mul": (
        "A {e} has {X} groups of {Y} {u}. Then {Z} more {u} join. How many {u} does the {e} have now?",
        "There are {X} rows with {Y} {u} each in a {e}, and {Z} extra {u} arrive. How many {u} are "
        "in the {e}?",
        "A {e} gets {X} crates holding {Y} {u} each, plus {Z} single {u}. How many {u} does it have?",
    ),
}
AO_OPERATIONS = ("add", "sub", "mul")


def _ao_values(op: str, rng: np.random.RandomState) -> tuple[int, int, int, int, int]:
    """X, Y in [1, 10], Z in [2, 10] (X > Y for sub) and the two steps."""
    while True:
        x, y, z = int(rng.randint(1, 11)), int(rng.randint(1, 11)), int(rng.randint(2, 11))
        if op != "sub" or x > y:
            break
    if op == "mul":
        return x, y, z, x * y, x * y + z
    step1 = x + y if op == "add" else x - y
    return x, y, z, step1, step1 * z


def ao_synthetic_problems(n: int = 1200, *, seed: int = 42, n_heldout: int = 200) -> ProblemSet:
    """AO-style problems, operations cycling add/sub/mul (balanced); problem i uses seed ``seed + i``.

    The last ``n_heldout`` problems carry ``meta["split"] = "heldout"``, the others ``"train"``.
    """
    problems = []
    for i in range(n):
        op = AO_OPERATIONS[i % 3]
        rng = np.random.RandomState(seed + i)
        x, y, z, step1, step2 = _ao_values(op, rng)
        t = int(rng.randint(len(AO_WORDINGS[op])))
        entity, units = AO_ENTITIES[int(rng.randint(len(AO_ENTITIES)))]
        problems.append(Problem(
            id=f"ao-{i}",
            question=AO_WORDINGS[op][t].format(e=entity, u=units, X=x, Y=y, Z=z),
            answer=float(step2),
            steps=2,
            family="ao",
            operation=op,
            intermediates=(float(step1), float(step2)),
            template=t,
            meta={"X": x, "Y": y, "Z": z, "seed": seed + i, "entity": entity,
                  "split": "heldout" if i >= n - n_heldout else "train"},
        ))
    return ProblemSet(problems, name=f"ao(seed={seed},n={n})", source="generated")
