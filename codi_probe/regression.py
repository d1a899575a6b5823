"""Regression against a baseline run: the one rule that ``pytest --codi-compare``/``--codi-baseline`` and
``codi-probe compare OLD NEW`` share.

Two questions, in this order:

1. **May the runs be compared at all?** :func:`baseline_problems` refuses a baseline that is not a whole
   run (status other than ``complete``, or a ``-k``/``-m``/test-id subset), and :func:`differences` lists
   what makes two runs measure different things: the model, the problems (n, tier, seed, and the problem
   sets' fingerprints), the dtype, the codi-probe version and the report schema. Either refuses the
   comparison unless the user forces it, and the message says exactly what differs. "The model" is its
   shape (architecture, layers, width, heads, LoRA rank, prj width, latents, special ids), not its
   weights: a retrained checkpoint of the same model is what a regression check compares, so changed
   weights are reported (:func:`weights_changed`), never refused; a model of another shape is refused.
2. **Has a claim regressed?** :meth:`Rule.check`, per claim matched by id:

   - ``flip``: the verdict changed (any kind of claim);
   - ``moved``: an empirical claim's primary statistic (the same one) lies outside the baseline's CI
     widened by the larger of the claim's tolerance, ``max(abs, rel * |baseline value|)``, and the float
     noise of the run's dtype (:func:`float_slack`: the :mod:`codi_probe.tolerance` of that dtype, in the
     statistic's unit, :func:`statistic_unit`). A statistic that is 0 by construction and measured at
     1.9e-6 in one run and 0 in the next has not moved.

   ``fail_on`` chooses which of the two fail (default both); tolerances are global or per claim
   (``fnmatch`` patterns on the claim id, first match wins), from the command line or ini.

Exit codes follow pytest: a regression fails the claim's test (``codi-probe compare``: exit 1); a refused
comparison is a usage error (pytest: 4; ``codi-probe compare``: 2, its one-line error code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Iterable, Mapping

FAIL_ON = ("flip", "moved")
# (label, path into a report) of the facts two comparable runs share; None on either side is not a difference
MODEL_SHAPE = (
    ("model architecture", ("model", "architecture")),
    ("model type", ("model", "model_type")),
    ("layers", ("model", "n_layers")),
    ("width", ("model", "d_model")),
    ("heads", ("model", "n_heads")),
    ("LoRA rank", ("model", "lora_r")),
    ("prj width", ("model", "prj_dim")),
    ("latents", ("model", "num_latent")),
    ("loop variant", ("model", "variant")),
    ("special token ids", ("model", "special_ids")),
)
COMPARED = (
    *MODEL_SHAPE,
    ("problems per claim", ("options", "problems")),
    ("problem tier", ("options", "depth")),
    ("seed", ("options", "seed")),
    ("dtype", ("options", "dtype")),
    ("codi-probe version", ("environment", "packages", "codi-probe")),
    ("report schema", ("schema_version",)),
)


# the fields of a baseline claim the rule and the messages read
CLAIM_KEYS = ("id", "kind", "nodeid", "verdict", "statistic", "value", "ci", "p_value", "n", "min_n")


def match(old_claims: Iterable[Mapping[str, Any]], claim_id: str, nodeid: str | None) -> dict[str, Any] | None:
    """The baseline claim a new claim is judged against: the one with the same id, and among duplicate ids
    the one with the same nodeid; its :data:`CLAIM_KEYS` only, or ``None``."""
    candidates = [c for c in old_claims if c.get("id") == claim_id]
    same_node = [c for c in candidates if c.get("nodeid") == nodeid]
    chosen = same_node or (candidates if len(candidates) == 1 else [])
    return {k: chosen[0].get(k) for k in CLAIM_KEYS} if chosen else None


@dataclass(frozen=True)
class Tolerance:
    """How far a statistic may move beyond the baseline CI: ``max(abs, rel * |baseline value|)``."""

    abs: float = 0.0
    rel: float = 0.0

    def __post_init__(self) -> None:
        if not (self.abs >= 0 and self.rel >= 0):
            raise ValueError(f"tolerances must be >= 0 (abs={self.abs}, rel={self.rel})")

    def slack(self, baseline_value: float) -> float:
        return max(self.abs, self.rel * abs(baseline_value))

    def describe(self) -> str:
        parts = [f"abs {self.abs:g}"] + ([f"rel {self.rel:g}"] if self.rel else [])
        return ", ".join(parts)


def parse_claim_tolerance(line: str) -> tuple[str, Tolerance]:
    """``"PATTERN abs=X rel=Y"`` (either or both) -> (pattern, Tolerance); a malformed line is a
    ``ValueError`` naming it."""
    words = line.split()
    if len(words) < 2:
        raise ValueError(f"claim tolerance {line!r}: write 'PATTERN abs=X' and/or 'rel=Y'")
    values: dict[str, float] = {}
    for word in words[1:]:
        key, sep, text = word.partition("=")
        if not sep or key not in ("abs", "rel") or key in values:
            raise ValueError(f"claim tolerance {line!r}: {word!r} is not abs=X or rel=Y (each once)")
        try:
            values[key] = float(text)
        except ValueError:
            raise ValueError(f"claim tolerance {line!r}: {text!r} is not a number") from None
    return words[0], Tolerance(**values)


# the --codi-dtype / --dtype choices and the dtype their results are computed in (``mixed``: a bf16 base)
OPTION_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "mixed": "bfloat16"}
_KL = re.compile(r"\bKL\b")
_COUNTED = re.compile(r"accuracy|\brate\b|top-\d|answer|acc\(", re.IGNORECASE)
_MEASURED = re.compile(r"logit|attention|cosine|entropy|spearman|kendall|\btau\b|\|LD|tolerance units|norm\b",
                       re.IGNORECASE)


def statistic_unit(name: str | None) -> str:
    """Which float tolerance of :mod:`codi_probe.tolerance` bounds round-off in a statistic, by its name:

    - ``"kl"``: a KL divergence (the word ``KL``), in nats: the dtype's ``kl`` tolerance, absolute;
    - ``"exact"``: a statistic counted from discrete outcomes (an accuracy, a rate, a top-k hit, an
      answer): token ids are compared exactly, so round-off does not move it (no float slack);
    - ``"states"``: a statistic computed from logits or hidden states (logits, attention weights,
      cosines, entropies, rank correlations, values in tolerance units): the dtype's states tolerance,
      ``atol + rtol * |baseline value|``;
    - ``"exact"`` for anything else (a share or count of problems), the conservative choice: no float
      slack, so a real move is never hidden.
    """
    text = name or ""
    if text.lower().startswith("share of problems"):  # a counted share, whatever it counts (e.g. KL >= 0.01)
        return "exact"
    if _KL.search(text):
        return "kl"
    if _COUNTED.search(text):
        return "exact"
    return "states" if _MEASURED.search(text) else "exact"


def float_slack(statistic: str | None, baseline_value: float, dtype: str | None) -> float:
    """The round-off a run in ``dtype`` (``"float32"``, ``"bfloat16"``, ``"float16"``; ``None``: float32)
    may put on ``statistic`` near ``baseline_value`` (:func:`statistic_unit`), beyond which it has moved."""
    from .tolerance import TOLERANCES

    tol = TOLERANCES.get(dtype or "float32", TOLERANCES["float32"])
    unit = statistic_unit(statistic)
    if unit == "kl":
        return tol.kl
    if unit == "states":
        return tol.atol + tol.rtol * abs(baseline_value)
    return 0.0


def run_dtype(report: Mapping[str, Any]) -> str | None:
    """The dtype a report's results were computed in: its model's base dtype, else its dtype option."""
    return _get(report, ("model", "dtype")) or OPTION_DTYPES.get(str(_get(report, ("options", "dtype"))))


@dataclass(frozen=True)
class Finding:
    """One way a claim differs from its baseline; ``fails`` under the rule's ``fail_on``."""

    claim_id: str
    kind: str  # "flip" or "moved"
    message: str
    fails: bool


def _brief(claim: Mapping[str, Any]) -> str:
    from .plugin.records import brief

    return brief(claim)


@dataclass(frozen=True)
class Rule:
    fail_on: frozenset[str] = frozenset(FAIL_ON)
    tolerance: Tolerance = Tolerance()
    per_claim: tuple[tuple[str, Tolerance], ...] = ()
    dtype: str | None = None  # the new run's compute dtype (float noise, :func:`float_slack`); None: float32

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fail_on) - set(FAIL_ON))
        if unknown:
            raise ValueError(f"unknown failure rule {unknown[0]!r} (use {', '.join(FAIL_ON)}, or none)")

    def tolerance_for(self, claim_id: str) -> Tolerance:
        return next((t for pattern, t in self.per_claim if fnmatchcase(claim_id, pattern)), self.tolerance)

    def unused_patterns(self, claim_ids: Iterable[str]) -> list[str]:
        ids = list(claim_ids)
        return [p for p, _ in self.per_claim if not any(fnmatchcase(i, p) for i in ids)]

    def check(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Finding]:
        """Findings for claim ``new`` against its baseline ``old`` (report claim dicts: id, kind, verdict,
        statistic, value, ci and what :func:`brief` shows)."""
        findings = []
        cid = str(new["id"])
        now = f"now {new.get('verdict')} ({_brief(new)})"
        was = f"baseline {old.get('verdict')} ({_brief(old)})"
        if old.get("verdict") and new.get("verdict") and old["verdict"] != new["verdict"]:
            findings.append(Finding(cid, "flip", f"{cid}: verdict flipped: {was}, {now}", "flip" in self.fail_on))
        value = new.get("value")
        if (new.get("kind") == "empirical" and old.get("statistic") == new.get("statistic")
                and None not in (old.get("value"), value)):
            ci = old.get("ci") or {}
            lo, hi = ci.get("lo"), ci.get("hi")
            if None in (lo, hi):
                lo = hi = old["value"]
            tolerance = self.tolerance_for(cid)
            noise = float_slack(new.get("statistic"), old["value"], self.dtype)
            slack = max(tolerance.slack(old["value"]), noise) + 1e-9 * max(1.0, abs(lo), abs(hi))
            if not lo - slack <= value <= hi + slack:
                findings.append(Finding(
                    cid, "moved", f"{cid}: {new.get('statistic')}={value:.4g} outside baseline [{lo:.4g}, {hi:.4g}] "
                    f"widened by tolerance {tolerance.describe()}{f' (float noise {noise:.2g})' if noise else ''}: {was}, {now}",
                    "moved" in self.fail_on))
        return findings


def parse_fail_on(text: str) -> frozenset[str]:
    """``"flip,moved"``, ``"flip"``, ``"moved"`` or ``"none"``."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["none"]:
        return frozenset()
    unknown = [n for n in names if n not in FAIL_ON]
    if unknown or not names:
        raise ValueError(f"must be a comma list of {', '.join(FAIL_ON)}, or none")
    return frozenset(names)


_MISSING = object()


def _get(report: Mapping[str, Any], path: tuple[str, ...], default: Any = None) -> Any:
    node: Any = report
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def problem_set_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The problem sets (the report's ``data`` section) that both runs drew and that differ in content."""
    out = []
    old_data, new_data = old.get("data") or {}, new.get("data") or {}
    for name in sorted(set(old_data) & set(new_data)):
        a, b = old_data[name], new_data[name]
        if isinstance(a, Mapping) and isinstance(b, Mapping) and "fingerprint" in a and "fingerprint" in b \
                and a["fingerprint"] != b["fingerprint"]:
            out.append(f"problem set {name}: fingerprint {str(a['fingerprint'])[:12]} -> {str(b['fingerprint'])[:12]}")
    return out


def weights_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """``"weights sha256 a -> b"`` when both runs name their weights and they differ (a retrained model); another
    revision of the same Hub repository is such a checkpoint, and the message names both commits."""
    a, b = _get(old, ("model", "sha256")), _get(new, ("model", "sha256"))
    if a and b and a != b:
        return f"weights sha256 {str(a)[:12]} -> {str(b)[:12]}" + _revision_change(old, new)
    return None


def _revision_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``" (owner/name commit a -> b)"`` when both runs loaded the model from the same Hub repository."""
    a, b = _get(old, ("model", "hub", "model")) or {}, _get(new, ("model", "hub", "model")) or {}
    if a.get("repo_id") and a.get("repo_id") == b.get("repo_id") and a.get("commit") != b.get("commit"):
        return f" ({a['repo_id']} commit {str(a.get('commit'))[:12]} -> {str(b.get('commit'))[:12]})"
    return ""


def baseline_problems(report: Mapping[str, Any]) -> list[str]:
    """Why a report is not a whole run, and so no silent baseline: its status, or the subset it ran."""
    problems = []
    status = report.get("status")
    if status != "complete":
        problems.append(f"its status is {status!r}, not 'complete'")
    selection = _get(report, ("environment", "selection")) or {}
    if selection.get("subset"):
        how = [f"-k {selection['keyword']!r}" if selection.get("keyword") else "",
               f"-m {selection['markexpr']!r}" if selection.get("markexpr") else "",
               "--lf" if selection.get("last_failed") else "",
               "test ids" if selection.get("nodeids") else ""]
        problems.append("it ran a subset (" + ", ".join(h for h in how if h) + ")")
    return problems


def differences(old: Mapping[str, Any], new: Mapping[str, Any],
                fields: Iterable[tuple[str, tuple[str, ...]]] = COMPARED) -> list[str]:
    """``"label: old -> new"`` for every compared fact present on both sides that differs (a fact an older
    report lacks is not a difference; an option left to its default, ``None``, is a value)."""
    out = []
    for label, path in fields:
        a, b = _get(old, path, _MISSING), _get(new, path, _MISSING)
        if a is not _MISSING and b is not _MISSING and a != b:
            out.append(f"{label}: {_shown(label, a)} -> {_shown(label, b)}")
    return out


UNSET = {"problems per claim": "the tier's count (--codi-depth)"}  # what an option left unset (None) means


def _shown(label: str, value: Any) -> str:
    """A compared value as the user set it; ``None`` (left to its default) says what the default is."""
    return str(value) if value is not None else UNSET.get(label, "not set (the default)")


@dataclass
class Refusal:
    """What stops a comparison; empty means comparable."""

    baseline: str
    problems: list[str] = field(default_factory=list)

    def message(self, force_flag: str) -> str:
        return (f"{self.baseline}: not comparable ({'; '.join(self.problems)}); "
                f"pass {force_flag} to compare anyway")
