"""What a model's latents do *by construction*: the design that decides its claims' planted verdicts.

A ``Design`` is stored in the model's ``codi_config.json`` (``CodiConfig.design``) by the recipe that
trained it, so a model retrained with another seed or carrier map carries its own ground truth:

- ``planted``: named intermediates live in named fed latents. ``carriers`` maps an intermediate of the
  CYW chain (``step1 = X +/- Y``, ``step2 = step1 * Z``, ``answer = step1 + step2``) to the fed position
  ``P_k`` (k in 1..6) whose input ``e_k = prj(h_(k-1))`` carries it. The recipe trains this with an
  interchange (IIT) loss: swapping ``e_k`` from a donor problem must yield the answer the donor's value
  implies under the chain (``counterfactual_answer``), and a decoding loss on ``e_k``. An ``exclusive``
  map is also trained so that every non-carrier fed latent is causally inert for the answer (directly
  and through the later latents) and each carrier is read directly (``mechanisms.ExclusiveTwins``):
  then every (intermediate, P_k) site has a known direct effect, carrier or not.
- ``pause``: a negative control. Every fed latent is one learned constant vector (``prj``'s LayerNorm
  has weight 0, so ``prj(h)`` is its bias whatever ``h``): the fed latents carry nothing.
- ``not planted``: trained with the plain CODI recipe; where its reasoning lives is not known.
- ``random``: random weights; nothing is learned.

Positions follow the suite's convention: ``P_k`` names the fed latent ``e_k``; the output ``h_k`` at
``P_k`` feeds ``e_(k+1)``, one position later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

MECHANISMS = ("planted", "pause", "echo", "not planted", "random")
INTERMEDIATES = ("step1", "step2")  # index 0 and 1 of a CYW problem's ``intermediates``
FED = range(1, 7)
# The echo control's copy map: fed latent e_k -> the question word it copies (X, Y, Z: the operand values;
# "op": the operation's verb, e.g. "recruit" / "leave"). Every slot is one word of the question, and none of
# them alone fixes step1 or step2 (step1 = X +/- Y, step2 = step1 * Z).
ECHO_SURFACE = {1: "X", 2: "op", 3: "Y", 4: "Z", 5: "X", 6: "op"}


@dataclass(frozen=True)
class Design:
    """A model's mechanism and, for ``planted``, its carrier map ``{intermediate: k}`` (e_k at P_k)."""

    mechanism: str = "not planted"
    carriers: Mapping[str, int] = field(default_factory=dict)
    how: str = ""  # one line: what planted it
    exclusive: bool = False  # planted only: the non-carrier fed latents are trained to be inert

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"unknown design mechanism {self.mechanism!r} (use {', '.join(MECHANISMS)})")
        if self.carriers and self.mechanism != "planted":
            raise ValueError(f"a {self.mechanism!r} design plants no carriers")
        if self.mechanism == "planted" and not self.carriers:
            raise ValueError("a planted design needs at least one carrier, e.g. step1=P2")
        if self.exclusive and self.mechanism != "planted":
            raise ValueError(f"a {self.mechanism!r} design has no exclusive carrier map")
        check_carriers(dict(self.carriers))

    def carrier_of(self, intermediate: str) -> int | None:
        return dict(self.carriers).get(intermediate)

    def to_json(self) -> dict[str, Any]:
        out = {"mechanism": self.mechanism, "carriers": {k: f"P{v}" for k, v in sorted(self.carriers.items())},
               "how": self.how}
        return out | {"exclusive": True} if self.exclusive else out

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> "Design":
        if not data:
            return cls()
        carriers = {str(k): _position(str(v), str(k)) for k, v in dict(data.get("carriers", {})).items()}
        return cls(str(data.get("mechanism", "not planted")), carriers, str(data.get("how", "")),
                   bool(data.get("exclusive", False)))

    def describe(self) -> str:
        if self.mechanism == "planted":
            return ("planted" + (" (exclusive)" if self.exclusive else "") + ": "
                    + ", ".join(f"{k} in e_{v} (P{v})" for k, v in sorted(self.carriers.items(), key=lambda kv: kv[1])))
        return {"pause": "none (pause control: every fed latent is one learned constant)",
                "echo": "none (echo control: each fed latent copies a question word, X op Y Z X op, and is inert)",
                "not planted": "not planted", "random": "none (random weights)"}[self.mechanism]


def _position(text: str, name: str) -> int:
    t = text.strip().upper()
    if not (t.startswith("P") and t[1:].isdigit() and int(t[1:]) in FED):
        raise ValueError(f"carrier {name}={text}: the site must be a fed latent position P1..P6")
    return int(t[1:])


def check_carriers(carriers: Mapping[str, int]) -> None:
    """Names are CYW intermediates, sites distinct fed positions, and step 1 sits before step 2 (step 2
    is computed from the step-1 carrier, so it cannot be fed earlier)."""
    for name, k in carriers.items():
        if name not in INTERMEDIATES:
            raise ValueError(f"carrier {name!r}: unknown intermediate (use {', '.join(INTERMEDIATES)})")
        if k not in FED:
            raise ValueError(f"carrier {name}=P{k}: the site must be a fed latent position P1..P6")
    if len(set(carriers.values())) != len(carriers):
        raise ValueError(f"carriers {dict(carriers)}: two intermediates share one position")
    if "step1" in carriers and "step2" in carriers and not carriers["step1"] < carriers["step2"]:
        raise ValueError("carriers: step1 must sit at an earlier position than step2 (step2 is computed from it)")


def parse_carriers(text: str) -> dict[str, int]:
    """``"step1=P2,step2=P4"`` -> ``{"step1": 2, "step2": 4}`` (validated)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, site = part.partition("=")
        if not sep:
            raise ValueError(f"carrier {part!r}: write NAME=POSITION, e.g. step1=P2")
        name = name.strip()
        if name in out:
            raise ValueError(f"carrier {name!r} given twice")
        out[name] = _position(site, name)
    if not out:
        raise ValueError("--carriers: no carrier given (e.g. step1=P2,step2=P4)")
    check_carriers(out)
    return out


def counterfactual_answer(step1: float, z: float, *, step1_value: float | None = None,
                          step2_value: float | None = None) -> float:
    """The CYW answer when step 1 and/or step 2 take the given values: step 2 follows a set step 1
    (``step1 * Z``) unless set itself; the answer is ``step1 + step2``."""
    s1 = step1 if step1_value is None else step1_value
    s2 = s1 * z if step2_value is None else step2_value
    return float(s1 + s2)


def implied_answer(problem, intermediate: str, value: float) -> float:
    """The answer ``problem`` would have if ``intermediate`` took ``value`` (CYW chain; the answer-only
    family answers step 2 itself)."""
    if intermediate not in INTERMEDIATES:
        raise ValueError(f"unknown intermediate {intermediate!r}")
    if problem.family != "cyw":
        if intermediate == "step2":
            return float(value)
        raise ValueError(f"{problem.id}: the step-1 counterfactual is defined for the CYW chain only")
    s1 = problem.intermediates[0]
    z = problem.meta["Z"]
    key = "step1_value" if intermediate == "step1" else "step2_value"
    return counterfactual_answer(s1, z, **{key: value})


def direct_answer(problem, intermediate: str, value: float) -> float:
    """The answer ``problem`` would have if ``intermediate`` took ``value`` and every *other* intermediate
    kept its own value (CYW: a set step 1 is *not* carried into step 2; answer = step1 + step2): what a
    direct-effect patch implies when the other carriers are held at their clean values."""
    if intermediate not in INTERMEDIATES:
        raise ValueError(f"unknown intermediate {intermediate!r}")
    if problem.family != "cyw" or intermediate == "step2":
        return implied_answer(problem, intermediate, value)
    return counterfactual_answer(problem.intermediates[0], problem.meta["Z"], step1_value=value,
                                 step2_value=problem.intermediates[1])


def surface_word(problem, slot: str) -> str:
    """The question word an echo slot (``ECHO_SURFACE``) copies from a CYW ``problem``: the operand's value
    as text for ``X``/``Y``/``Z``, the first word of the operation's verb (``recruit``, ``leave``, ...) for
    ``op``."""
    if problem.family != "cyw":
        raise ValueError(f"{problem.id}: the echo surface is defined for CYW problems only")
    if slot in ("X", "Y", "Z"):
        return str(int(problem.meta[slot]))
    if slot != "op":
        raise ValueError(f"unknown echo slot {slot!r} (use X, Y, Z or op)")
    from .data.templates import CYW_SCENARIOS

    scenario = CYW_SCENARIOS[problem.template]
    verb = scenario.add_verb if problem.meta["cyw_family"] == "addition" else scenario.sub_verb
    return verb.split()[0]


def design_for_spec(spec: str | None) -> Design:
    """The design of a model spec (a built-in name, a shipped organism or a checkpoint path) read from
    its ``codi_config.json`` without loading weights; ``not planted`` when none is stored."""
    import json
    from pathlib import Path

    from .data.loaders import fixtures_dir
    from .defaults import DEFAULT_MODEL, TINY_MODELS

    spec = str(spec or DEFAULT_MODEL)
    if spec in TINY_MODELS:
        return Design("random", how="seeded random weights (codi_probe.tiny)")
    path = Path(spec)
    if not path.exists():
        path = fixtures_dir() / "models" / spec
    sidecar = (path if path.is_dir() else path.parent) / "codi_config.json"
    if not sidecar.is_file():
        return Design()
    try:
        data = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{sidecar}: unreadable codi_config.json ({exc})") from None
    return Design.from_json(data.get("design"))
