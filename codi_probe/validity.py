"""The validity table: the suite's verdicts against the truths planted in each model's design.

For every model, ``pytest hypotheses`` runs against the profile its design decides
(``codi_probe.planted``), and its JSON report is read back here. Each claim the design decides is one
row: the planted verdict(s), the measured one, and whether they agree.

- A *planted truth* is an entry with one definite verdict (supported or refuted). It is recovered only
  when measured exactly; ``inconclusive`` counts as a miss.
- A *constraint* allows several verdicts, none of them supported (a random model, the pause control's
  PATCH-01): it is met unless the claim comes out supported.

Floors (``check_floors``, asserted in CI by ``codi-probe validate --check``): at least 95% of planted
truths recovered over all models, no constraint broken, and no claim about latent content supported
on a ``pause`` (negative control) model.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from .design import Design
from .planted import planted_truths

RECOVERY_FLOOR = 0.95
VALIDATE_MODELS = ("codi-tiny-planted", "codi-tiny-pause", "tiny-random-gpt2", "tiny-random-llama")


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

    @property
    def agrees(self) -> bool:
        return self.measured is not None and self.measured in self.planted.split("|")


def rows_of(report: dict[str, Any], model: str | None = None) -> list[Row]:
    """The rows of one report: every claim its model's design decides (a missing claim is measured None)."""
    design = Design.from_json((report.get("expectations") or {}).get("design"))
    name = model or (report.get("options") or {}).get("model") or "?"
    measured = {c["id"]: c.get("verdict") for c in report.get("claims", [])}
    out = []
    for cid, truth in sorted(planted_truths(design).items()):
        out.append(Row(name, design.mechanism, cid, truth.expected, measured.get(cid), len(truth.verdicts) == 1,
                       truth.content, truth.why))
    return out


@dataclass(frozen=True)
class Summary:
    truths: int
    recovered: int
    inconclusive: int  # planted truths measured inconclusive
    constraints: int
    constraints_broken: int
    control_content: int  # content claims on pause models
    control_false_supported: int

    @property
    def accuracy(self) -> float:
        return self.recovered / self.truths if self.truths else float("nan")

    @property
    def inconclusive_rate(self) -> float:
        return self.inconclusive / self.truths if self.truths else float("nan")

    @property
    def false_supported_rate(self) -> float:
        return self.control_false_supported / self.control_content if self.control_content else float("nan")


def summarise(rows: Sequence[Row]) -> Summary:
    truths = [r for r in rows if r.definite]
    constraints = [r for r in rows if not r.definite]
    control = [r for r in rows if r.mechanism == "pause" and r.content]
    return Summary(len(truths), sum(r.agrees for r in truths), sum(r.measured == "inconclusive" for r in truths),
                   len(constraints), sum(not r.agrees for r in constraints), len(control),
                   sum(r.measured == "supported" for r in control))


def check_floors(summary: Summary) -> list[str]:
    """The floors a validity table must meet; one message per miss (empty: all met)."""
    problems = []
    if summary.truths == 0:
        problems.append("no planted truth was measured: the table validates nothing")
    elif summary.accuracy < RECOVERY_FLOOR:
        problems.append(f"planted truths recovered {summary.recovered}/{summary.truths} "
                        f"({summary.accuracy:.1%}) < {RECOVERY_FLOOR:.0%}")
    if summary.constraints_broken:
        problems.append(f"{summary.constraints_broken} claim(s) came out supported where the design forbids it")
    if summary.control_false_supported:
        problems.append(f"{summary.control_false_supported} latent-content claim(s) supported on the negative control")
    return problems


def markdown(rows: Sequence[Row], by_model: dict[str, Summary], total: Summary) -> str:
    lines = ["| model | design | planted truths recovered | inconclusive | constraints met | "
             "false supported on control |", "|---|---|---|---|---|---|"]
    for model, s in by_model.items():
        mech = next(r.mechanism for r in rows if r.model == model)
        ctl = f"{s.control_false_supported}/{s.control_content}" if s.control_content else "n/a"
        lines.append(f"| {model} | {mech} | {s.recovered}/{s.truths} | {s.inconclusive} | "
                     f"{s.constraints - s.constraints_broken}/{s.constraints} | {ctl} |")
    lines.append(f"| **all** | | **{total.recovered}/{total.truths} ({total.accuracy:.1%})** | "
                 f"{total.inconclusive} ({total.inconclusive_rate:.1%}) | "
                 f"{total.constraints - total.constraints_broken}/{total.constraints} | "
                 f"{total.control_false_supported}/{total.control_content} |")
    lines += ["", "| model | claim | planted | measured | agrees | why |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.model} | {r.claim} | {r.planted} | {r.measured or 'not run'} | "
                     f"{'yes' if r.agrees else '**no**'} | {r.why} |")
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
             extra: Sequence[str] = ()) -> dict[str, Any]:
    """Run (or, with ``run=False``, read back) one report per model in ``out_dir`` and tabulate them.
    Returns ``{"rows", "by_model", "total", "exit_codes", "problems", "markdown"}``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    exit_codes: dict[str, int | None] = {}
    rows: list[Row] = []
    by_model: dict[str, Summary] = {}
    for model in models:
        path = out_dir / f"{Path(model).name}.json"
        if run:
            hypotheses = catalogue_dir(hypotheses)
            exit_codes[model] = run_catalogue(model, path, hypotheses, extra)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no report for {model}")
        report = json.loads(path.read_text())
        if report.get("status") != "complete":
            raise ValueError(f"{path}: the run did not complete (status {report.get('status')!r})")
        mine = rows_of(report, Path(model).name)
        rows += mine
        by_model[Path(model).name] = summarise(mine)
    total = summarise(rows)
    problems = check_floors(total)
    problems += [f"pytest hypotheses --codi-model {m} exited {c}" for m, c in exit_codes.items() if c not in (0, None)]
    return {"rows": [asdict(r) | {"agrees": r.agrees} for r in rows],
            "by_model": {m: asdict(s) for m, s in by_model.items()}, "total": asdict(total),
            "exit_codes": exit_codes, "problems": problems, "markdown": markdown(rows, by_model, total)}
