"""The validity table: the suite's verdicts against the truths planted in each model's design.

For every model, ``pytest hypotheses`` runs against the profile its design decides
(``codi_probe.planted``), and its JSON report is read back here. Each claim the design decides is one
row: the planted verdict(s), the measured one, whether they agree, the deciding p-value and the power
at the measured effect.

- A *positive truth* is planted ``supported`` (one verdict); it is recovered only when measured exactly
  (``inconclusive`` is a miss): **recall** = positive truths recovered / positive truths.
- A *negative truth* is planted ``refuted``, or a constraint that allows several verdicts, none of them
  supported (a random model, the pause control's PATCH-01): **specificity** = negative truths measured
  as allowed / negative truths (a definite refutation must be measured exactly; a constraint is met
  unless the claim comes out supported or the claim did not run).
- Any other constraint (it allows ``supported``, e.g. NEW-08 on the pause control) only counts as met
  or broken.

Power at the measured effect (``power_at_measured``): for the evidence that decides the planted verdict
(the weakest prediction where all must hold), the probability that the same test at the same n, at the
level the claim's family needs (``ALPHA`` / family size, Bonferroni: conservative for Holm), reaches
the planted verdict when the truth equals the measured value: exact for a share (binomial), a normal
approximation from the 95% interval otherwise. ``weakest`` names each model's definite truth with
the lowest power.

Floors (``check_floors``, asserted in CI by ``codi-probe validate --check``), **per model**, no pooling:
recall >= 95% where the model has positive truths, specificity >= 95% where it has negative ones, no
constraint broken, no claim about latent content supported on a control model (``CONTROLS``: pause, echo),
and, with ``min_power``, no decided truth below that power at its measured effect.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .design import Design
from .hypothesis import ALPHA
from .planted import planted_truths

RECALL_FLOOR = 0.95
SPECIFICITY_FLOOR = 0.95
CONTROLS = ("pause", "echo")  # designs whose fed latents carry no intermediate: no content claim supported
POWER_TARGET = 0.99  # the power a decided truth should have at its measured effect (issue 29)
# models validated at more than the quick tier's 100 problems: the n at which every truth of theirs is decided
# with power >= POWER_TARGET at its measured effect (codi-tiny-mcyw: CARRY-DIRECT[step2@P5], about 0.71 of
# answers moved against 0.5 in a Holm family of 12, has power 0.92 at 100 problems and 0.999 at 200;
# codi-tiny-adjacent's, CARRY-DIRECT[step2@P2] at 0.715, 0.9997 at 200)
VALIDATE_PROBLEMS = {"codi-tiny-mcyw": 200, "codi-tiny-adjacent": 200}
# models whose weakest truth is below POWER_TARGET at the tier CI runs them, and why (issue 29, left open);
# CI checks --min-power POWER_TARGET on every other model of VALIDATE_MODELS
POWER_SHORT = {"codi-tiny-planted": "CARRY-PATCH[step2@P4] moves 0.65 of answers: power 0.55 at 100 problems",
               "codi-tiny-pause": "NEW-05: power 0.72 at 100 problems"}
VALIDATE_MODELS = ("codi-tiny-planted", "codi-tiny-mcyw", "codi-tiny-adjacent", "codi-tiny-pause", "codi-tiny-echo", "tiny-random-gpt2", "tiny-random-llama")


@dataclass(frozen=True)
class Row:
    model: str
    mechanism: str
    claim: str
    planted: str  # "supported", or "refuted|inconclusive|invalid" for a constraint
    measured: str | None
    definite: bool  # a planted truth (one verdict) rather than a constraint
    content: bool
    why: str
    p: float | None = None  # the claim's (adjusted) p-value towards the planted verdict
    power: float | None = None  # power at the measured effect (definite truths only)

    @property
    def agrees(self) -> bool:
        return self.measured is not None and self.measured in self.planted.split("|")

    @property
    def kind(self) -> str:
        """``positive`` (planted supported), ``negative`` (never supported) or ``other``."""
        verdicts = self.planted.split("|")
        if verdicts == ["supported"]:
            return "positive"
        return "negative" if "supported" not in verdicts else "other"


def _binomial_power(n: int, theta0: float, theta1: float, greater: bool, alpha: float) -> float:
    """Exact power of the one-sided binomial test of ``theta0`` at level ``alpha`` when the true share is
    ``theta1`` (``greater``: the alternative is above ``theta0``)."""
    from scipy import stats

    k = range(n + 1)
    if greater:
        reject = [kk for kk in k if stats.binom.sf(kk - 1, n, theta0) < alpha]
    else:
        reject = [kk for kk in k if stats.binom.cdf(kk, n, theta0) < alpha]
    return float(sum(stats.binom.pmf(kk, n, min(1.0, max(0.0, theta1))) for kk in reject))


def power_at_measured(claim: Mapping[str, Any], planted: str) -> float | None:
    """The power of the evidence that decides ``planted`` (``supported`` or ``refuted``) at the measured
    effect (module docstring); None when the claim has no usable evidence or prediction."""
    from scipy import stats

    hyp = claim.get("hypothesis") or {}
    preds = {p["statistic"]: p for p in hyp.get("predictions", [])}
    evidence = [e for e in claim.get("evidence") or [] if e.get("statistic") in preds
                and all(isinstance(e.get(f), (int, float)) and math.isfinite(e[f]) for f in ("value", "lo", "hi"))
                and (e.get("n") or 0) > 0]
    evidence = [e for e in evidence if preds[e["statistic"]]["direction"] in ("greater", "less")]
    if not evidence:
        return None
    every = hyp.get("combine", "all") == "all"
    if planted == "supported":  # all must hold: the weakest (largest p_support) decides
        ev = (max if every else min)(evidence, key=lambda e: e["p_support"])
    else:  # all must hold: one refuted prediction refutes, the strongest decides
        ev = (min if every else max)(evidence, key=lambda e: e["p_refute"])
    pred = preds[ev["statistic"]]
    greater = (pred["direction"] == "greater") == (planted == "supported")
    threshold = float(pred["threshold"])
    alpha = ALPHA / max(1, int((claim.get("family") or {}).get("size") or 1))
    if str(ev.get("method", "")).startswith("exact binomial"):
        return _binomial_power(int(ev["n"]), threshold, float(ev["value"]), greater, alpha)
    z = stats.norm.ppf(0.5 + float(ev.get("level") or 0.95) / 2)
    se = (float(ev["hi"]) - float(ev["lo"])) / (2 * z)
    if not se > 0:
        return None
    effect = (float(ev["value"]) - threshold) * (1 if greater else -1)
    return float(stats.norm.cdf(effect / se - stats.norm.ppf(1 - alpha)))


def rows_of(report: dict[str, Any], model: str | None = None) -> list[Row]:
    """The rows of one report: every claim its model's design decides (a missing claim is measured None)."""
    design = Design.from_json((report.get("expectations") or {}).get("design"))
    name = model or (report.get("options") or {}).get("model") or "?"
    claims = {c["id"]: c for c in report.get("claims", [])}
    out = []
    for cid, truth in sorted(planted_truths(design).items()):
        c = claims.get(cid, {})
        definite = len(truth.verdicts) == 1
        key = "p_value" if truth.verdicts[0] == "supported" else "p_refute"
        p = c.get(key) if definite else None
        power = power_at_measured(c, truth.verdicts[0]) if definite and c else None
        out.append(Row(name, design.mechanism, cid, truth.expected, c.get("verdict"), definite, truth.content,
                       truth.why, p, power))
    return out


@dataclass(frozen=True)
class Summary:
    positives: int
    positives_recovered: int
    negatives: int
    negatives_met: int
    inconclusive: int  # definite truths measured inconclusive
    constraints: int
    constraints_broken: int
    control_content: int  # content claims on control models (CONTROLS)
    control_false_supported: int
    weakest: str | None  # the definite truth with the lowest power at its measured effect
    weakest_power: float | None

    @property
    def recall(self) -> float:
        return self.positives_recovered / self.positives if self.positives else float("nan")

    @property
    def specificity(self) -> float:
        return self.negatives_met / self.negatives if self.negatives else float("nan")

    @property
    def false_supported_rate(self) -> float:
        return self.control_false_supported / self.control_content if self.control_content else float("nan")


def summarise(rows: Sequence[Row]) -> Summary:
    pos = [r for r in rows if r.kind == "positive"]
    neg = [r for r in rows if r.kind == "negative"]
    constraints = [r for r in rows if not r.definite]
    control = [r for r in rows if r.mechanism in CONTROLS and r.content]
    powered = [r for r in rows if r.definite and r.power is not None]
    weakest = min(powered, key=lambda r: r.power, default=None)
    return Summary(len(pos), sum(r.agrees for r in pos), len(neg), sum(r.agrees for r in neg),
                   sum(r.measured == "inconclusive" for r in rows if r.definite),
                   len(constraints), sum(not r.agrees for r in constraints), len(control),
                   sum(r.measured == "supported" for r in control),
                   weakest.claim if weakest else None, weakest.power if weakest else None)


def check_floors(by_model: Mapping[str, Summary], rows: Sequence[Row] = (), *,
                 min_power: float | None = None) -> list[str]:
    """The floors every model must meet on its own; one message per miss (empty: all met)."""
    problems = []
    if not any(s.positives + s.negatives for s in by_model.values()):
        problems.append("no planted truth was measured: the table validates nothing")
    for model, s in by_model.items():
        if s.positives and s.recall < RECALL_FLOOR:
            problems.append(f"{model}: recall {s.positives_recovered}/{s.positives} ({s.recall:.1%}) "
                            f"< {RECALL_FLOOR:.0%}")
        if s.negatives and s.specificity < SPECIFICITY_FLOOR:
            problems.append(f"{model}: specificity {s.negatives_met}/{s.negatives} ({s.specificity:.1%}) "
                            f"< {SPECIFICITY_FLOOR:.0%}")
        if s.constraints_broken:
            problems.append(f"{model}: {s.constraints_broken} claim(s) came out where the design forbids it")
        if s.control_false_supported:
            problems.append(f"{model}: {s.control_false_supported} latent-content claim(s) supported on the "
                            "negative control")
    if min_power is not None:
        for r in rows:
            if r.definite and r.agrees and r.power is not None and r.power < min_power:
                problems.append(f"{r.model}: {r.claim} decided with power {r.power:.2f} < {min_power} at its "
                                "measured effect (strengthen the plant or raise n)")
    return problems


def _num(x: float | None, fmt: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def markdown(rows: Sequence[Row], by_model: Mapping[str, Summary]) -> str:
    lines = ["| model | design | recall (positive truths) | specificity (negative truths) | inconclusive | "
             "constraints met | false supported on control | weakest truth (power at measured effect) |",
             "|---|---|---|---|---|---|---|---|"]
    for model, s in by_model.items():
        mech = next((r.mechanism for r in rows if r.model == model), "?")
        ctl = f"{s.control_false_supported}/{s.control_content}" if s.control_content else "n/a"
        weakest = f"{s.weakest} ({s.weakest_power:.2f})" if s.weakest else "n/a"
        lines.append(f"| {model} | {mech} | {s.positives_recovered}/{s.positives} ({_num(s.recall, '.0%')}) | "
                     f"{s.negatives_met}/{s.negatives} ({_num(s.specificity, '.0%')}) | {s.inconclusive} | "
                     f"{s.constraints - s.constraints_broken}/{s.constraints} | {ctl} | {weakest} |")
    lines += ["", "| model | claim | planted | measured | agrees | p | power at measured effect | why |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.model} | {r.claim} | {r.planted} | {r.measured or 'not run'} | "
                     f"{'yes' if r.agrees else '**no**'} | {_num(r.p, '.2g')} | {_num(r.power, '.2f')} | {r.why} |")
    return "\n".join(lines) + "\n"


def catalogue_dir(given: Path | None = None) -> Path:
    """The catalogue to run: ``given`` when it is a folder; with none given, ``./hypotheses`` in a clone,
    else the installed ``codi_probe.hypotheses``. A given path that is no folder is a one-line error."""
    if given is not None:
        if not given.is_dir():
            raise FileNotFoundError(f"{given}: no hypotheses directory")
        return given
    local = Path("hypotheses")
    if local.is_dir():
        return local
    import codi_probe.hypotheses as installed

    return Path(installed.__file__).parent


def run_catalogue(model: str, report: Path, hypotheses: Path, extra: Sequence[str] = ()) -> int:
    """``pytest hypotheses --codi-model MODEL`` in a subprocess (its own session and profile); the exit code."""
    cmd = [sys.executable, "-m", "pytest", str(hypotheses), "-q", "-p", "no:cacheprovider", "--codi-model", model,
           "--codi-report", str(report), *extra]
    return subprocess.run(cmd, check=False).returncode


def validate(models: Sequence[str], out_dir: Path, *, hypotheses: Path | None = None, run: bool = True,
             extra: Sequence[str] = (), min_power: float | None = None) -> dict[str, Any]:
    """Run (or, with ``run=False``, read back) one report per model in ``out_dir`` and tabulate them. A model in
    ``VALIDATE_PROBLEMS`` runs at its n unless ``extra`` sets the problems or the depth.
    Returns ``{"rows", "by_model", "exit_codes", "problems", "markdown"}``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exit_codes: dict[str, int | None] = {}
    rows: list[Row] = []
    by_model: dict[str, Summary] = {}
    for model in models:
        path = out_dir / f"{Path(model).name}.json"
        if run:
            hypotheses = catalogue_dir(hypotheses)
            tier = [] if {"--codi-problems", "--codi-depth"} & set(extra) or model not in VALIDATE_PROBLEMS else [
                "--codi-problems", str(VALIDATE_PROBLEMS[model])]
            exit_codes[model] = run_catalogue(model, path, hypotheses, [*extra, *tier])
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no report for {model}")
        report = json.loads(path.read_text())
        if report.get("status") != "complete":
            raise ValueError(f"{path}: the run did not complete (status {report.get('status')!r})")
        mine = rows_of(report, Path(model).name)
        rows += mine
        by_model[Path(model).name] = summarise(mine)
    problems = check_floors(by_model, rows, min_power=min_power)
    problems += [f"pytest hypotheses --codi-model {m} exited {c}" for m, c in exit_codes.items() if c not in (0, None)]
    return {"rows": [asdict(r) | {"agrees": r.agrees, "kind": r.kind} for r in rows],
            "by_model": {m: asdict(s) | {"recall": s.recall if s.positives else None,
                                          "specificity": s.specificity if s.negatives else None}
                         for m, s in by_model.items()},
            "exit_codes": exit_codes, "problems": problems, "markdown": markdown(rows, by_model)}
