"""The ``--codi-*`` options: declared once, settable by command line > environment > ini > default."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import pytest

DEPTHS = ("quick", "full")  # problem tiers of the empirical claims (codi_probe.plugin.catalogue.TIERS)
OPTIONS_KEY = pytest.StashKey["CodiOptions"]()


@dataclass(frozen=True)
class CodiOptions:
    """The resolved options; ``sources`` says where each came from (cli, env, ini, default)."""

    model: str
    base: str | None = None
    tokenizer: str | None = None
    lora_alpha: int | None = None  # None: the sidecar's, else assumed 32 (the report says which)
    dtype: str = "fp32"
    device: str = "cpu"
    problems: int | None = None  # None: the depth tier's number
    depth: str = "quick"  # "quick" (the default run) or "full" (every claim at its minimum n)
    seed: int = 0
    threads: int | None = None  # None: OMP_NUM_THREADS, else cpu count / xdist workers (``torch_threads``)
    report: str | None = None  # None: reports/<timestamp>.json under the rootdir
    baseline: str | None = None  # a report path (the same as ``compare`` given a path)
    expect: str | None = None  # a path, "none", or None (the profile the model's design decides)
    tolerance: float = 0.0  # absolute widening of the baseline CI (codi_probe.regression.Tolerance)
    cache: str | None = None  # None or "none": no on-disk result cache
    compare: str | None = None  # "latest", a saved run number, or a report path
    autosave: bool = False  # save every run, numbered, under ``storage``
    storage: str | None = None  # None: <rootdir>/reports/runs
    rel_tolerance: float = 0.0  # relative widening: rel * |baseline value|
    fail_on: str = "flip,moved"  # codi_probe.regression.parse_fail_on
    force_compare: bool = False  # compare even when the runs are not comparable
    update_expect: str | None = None  # write the profile drafted from this (complete) run here
    claim_tolerances: tuple[str, ...] = ()  # "PATTERN abs=X rel=Y" per claim
    randomization_check: bool = False  # also run every empirical claim on the weight-randomized twin
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class _Spec:
    name: str
    help: str
    parse: Callable[[str], Any] = str
    default: Any = None
    path: str | None = None  # "file": made absolute; "maybe": a name, or a path (ini-relative)
    flag: bool = False  # a switch on the command line (``--codi-autosave``); "true"/"false" in env and ini

    @property
    def option(self) -> str:
        return "--codi-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "codi_" + self.name

    @property
    def env(self) -> str:
        return "CODI_" + self.name.upper()


def _positive_int(text: str) -> int:
    number = int(text)
    if number < 1:
        raise ValueError("must be at least 1")
    return number


def _non_negative_float(text: str) -> float:
    number = float(text)
    if not number >= 0:
        raise ValueError("must be a number >= 0")
    return number


def _boolean(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _fail_on(text: str) -> str:
    from ..regression import parse_fail_on

    names = parse_fail_on(text)
    return ",".join(sorted(names)) or "none"


def _depth(text: str) -> str:
    if text not in DEPTHS:
        raise ValueError(f"must be one of {', '.join(DEPTHS)}")
    return text


def _dtype(text: str) -> str:
    from ..defaults import DTYPE_CHOICES

    if text not in DTYPE_CHOICES:
        raise ValueError(f"must be one of {', '.join(DTYPE_CHOICES)}")
    return text


SPECS = (
    _Spec("model", "CODI model: tiny-random-gpt2, tiny-random-llama, a shipped model, a checkpoint path or a "
          "Hugging Face Hub id owner/name[@revision] (default: codi_probe.loading.DEFAULT_MODEL)", path="maybe"),
    _Spec("base", "base model for a checkpoint: a directory with config.json, a bundled base name (gpt2, "
          "meta-llama/Llama-3.2-1B-Instruct) or a Hub id", path="maybe"),
    _Spec("tokenizer", "tokenizer directory, fixtures name or Hub id (default: the --codi-base directory when it "
          "holds tokenizer files, else the model's own; a bcywinski checkpoint's own tokenizer comes first)", path="maybe"),
    _Spec("lora_alpha", "LoRA alpha of a checkpoint, a positive integer (not stored in the file; default: the sidecar's, else "
          "the official 32, reported as assumed)", _positive_int),
    _Spec("dtype", "model dtype, as the CLI's --dtype: fp32, bf16 (the released evaluation's numerics), fp16, "
          "mixed (bf16 base, fp32 LoRA and prj) or native (the file's own dtypes); default fp32", _dtype, "fp32"),
    _Spec("device", "torch device (default cpu)", str, "cpu"),
    _Spec("problems", "number of problems per claim (default: the --codi-depth tier's)", _positive_int),
    _Spec("depth", "problem tier: quick (100 problems, the default run) or full (500: every claim reaches its "
          "minimum n, including the equivalence claims)", _depth, "quick"),
    _Spec("seed", "random seed (default 0)", int, 0),
    _Spec("threads", "torch threads per process (default: OMP_NUM_THREADS when set, else cpu count / xdist "
          "workers, at least 1)", _positive_int),
    _Spec("report", "JSON report path (default: reports/<timestamp>.json, plus reports/latest.json)",
          path="file"),
    _Spec("baseline", "a previous report to compare verdicts and statistics with (the same as --codi-compare "
          "PATH)", path="file"),
    _Spec("compare", "compare with a saved run: latest (the newest complete whole run in --codi-storage), its "
          "number N, or a report PATH; refused when the runs are not comparable (see --codi-force-compare)"),
    _Spec("autosave", "save this run's report, numbered, in --codi-storage", _boolean, False, flag=True),
    _Spec("storage", "directory of saved runs (default: reports/runs under the rootdir)", path="file"),
    _Spec("fail_on", "what fails a claim against its baseline: flip, moved, flip,moved (default) or none",
          _fail_on, "flip,moved"),
    _Spec("rel_tolerance", "relative widening of the baseline CI: rel x |baseline value| (default 0; the "
          "larger of this and --codi-tolerance applies)", _non_negative_float, 0.0),
    _Spec("force_compare", "compare even when the baseline is partial or the runs differ in model, problems, "
          "seed, dtype, version or schema (the differences go to the report's warnings)", _boolean, False,
          flag=True),
    _Spec("update_expect", "write the expectation profile drafted from this run to PATH (only a complete, "
          "whole run; planted truths come from the design)", path="file"),
    _Spec("expect", "expectation profile (TOML); 'none' records only (default: the profile the model's "
          "design decides, codi_probe.planted)", path="file"),
    _Spec("tolerance", "absolute widening of the baseline CI before a statistic counts as moved "
          "(default 0)", _non_negative_float, 0.0),
    _Spec("cache", "directory of resumable on-disk results of long sweeps (the CCTA grid), reused while "
          "the model weights and the sweep's configuration are unchanged (default: none, no cache)", path="file"),
    _Spec("randomization_check", "model-randomization sanity check: run every empirical claim also on a weight-"
          "randomized twin of the model (seeded by --codi-seed) and mark a claim supported on both 'not specific "
          "to training' (codi_probe.plugin.randomization)", _boolean, False, flag=True),
)


def add_options(parser: pytest.Parser) -> None:
    """Register every option on the command line and as an ini key."""
    group = parser.getgroup("codi-probe", "codi-probe claims")
    for spec in SPECS:
        if spec.flag:
            group.addoption(spec.option, dest="codi_" + spec.name, default=None, action="store_const", const="true",
                            help=f"{spec.help} [env {spec.env}, ini {spec.ini}]")
        else:
            group.addoption(spec.option, dest="codi_" + spec.name, default=None, metavar=spec.name.upper(),
                            help=f"{spec.help} [env {spec.env}, ini {spec.ini}]")
        parser.addini(spec.ini, spec.help, default=None)
    group.addoption("--codi-claim-tolerance", dest="codi_claim_tolerance", action="append", default=None,
                    metavar="'PATTERN abs=X rel=Y'",
                    help="a tolerance for the claims whose id matches PATTERN (fnmatch; repeatable; first match "
                         "wins) [ini codi_claim_tolerances, one per line]")
    parser.addini("codi_claim_tolerances", "per-claim tolerances, one 'PATTERN abs=X rel=Y' per line",
                  type="linelist", default=[])


def default_model() -> str:
    """``codi_probe.defaults.DEFAULT_MODEL`` (a torch-free module)."""
    from ..defaults import DEFAULT_MODEL

    return DEFAULT_MODEL


def _raw_value(config: pytest.Config, spec: _Spec) -> tuple[str | None, str]:
    """The winning raw text and its source name."""
    cli = config.getoption("codi_" + spec.name)
    if cli is not None:
        return cli, "cli"
    env = os.environ.get(spec.env)
    if env:
        return env, "env"
    ini = config.getini(spec.ini)
    if ini not in (None, ""):
        return str(ini).strip(), "ini"
    return None, "default"


def _locate(config: pytest.Config, spec: _Spec, raw: str, source: str) -> str:
    """Anchor a relative path: an ini value at the ini file's folder, others at the invocation dir.

    A "maybe" path (model, base, tokenizer) stays as given unless the ini-anchored path exists;
    the special value ``none`` stays as is.
    """
    if spec.path is None or raw.lower() == "none":
        return raw
    ini_dir = config.inipath.parent if config.inipath else config.rootpath
    candidate = (ini_dir if source == "ini" else config.invocation_params.dir) / raw
    if spec.path == "file" or (source == "ini" and candidate.exists()):
        return str(candidate)
    return raw


def resolve_options(config: pytest.Config) -> CodiOptions:
    """Resolve every option; a bad value is a one-line ``pytest.UsageError``."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SPECS:
        raw, source = _raw_value(config, spec)
        sources[spec.name] = source
        if raw is None:
            values[spec.name] = spec.default
            continue
        try:
            values[spec.name] = spec.parse(_locate(config, spec, raw, source))
        except ValueError as exc:
            where = {"cli": spec.option, "env": spec.env, "ini": f"ini {spec.ini}"}[source]
            raise pytest.UsageError(f"{where}={raw!r}: {exc}") from None
    if values["model"] is None:
        values["model"] = default_model()
    values["claim_tolerances"], sources["claim_tolerances"] = _claim_tolerances(config)
    if values["cache"] is not None and values["cache"].lower() == "none":
        values["cache"] = None
    return CodiOptions(**values, sources=sources)


def _claim_tolerances(config: pytest.Config) -> tuple[tuple[str, ...], str]:
    """The command line's ``--codi-claim-tolerance`` lines, else the ini's; each checked here."""
    from ..regression import parse_claim_tolerance

    cli = config.getoption("codi_claim_tolerance")
    lines, source = (tuple(cli), "cli") if cli else (tuple(config.getini("codi_claim_tolerances")), "ini")
    for line in lines:
        try:
            parse_claim_tolerance(line)
        except ValueError as exc:
            where = "--codi-claim-tolerance" if source == "cli" else "ini codi_claim_tolerances"
            raise pytest.UsageError(f"{where}: {exc}") from None
    return lines, (source if lines else "default")


def regression_rule(options: CodiOptions):
    """The :class:`codi_probe.regression.Rule` these options choose."""
    from ..regression import OPTION_DTYPES, Rule, Tolerance, parse_claim_tolerance, parse_fail_on

    return Rule(parse_fail_on(options.fail_on), Tolerance(options.tolerance, options.rel_tolerance),
                tuple(parse_claim_tolerance(line) for line in options.claim_tolerances),
                dtype=OPTION_DTYPES.get(options.dtype))  # native: the loaded model's (plugin.baseline.check_model)


def worker_count(config: pytest.Config) -> int:
    """How many pytest processes run tests: the xdist worker count, or 1."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return int(workerinput.get("workercount", 1))
    if config.getoption("dist", "no") != "no":
        return max(1, len(config.getoption("tx", None) or []))
    return 1


def torch_threads(config: pytest.Config, options: CodiOptions) -> int:
    """Torch threads for this process (:func:`codi_probe.threads.default_threads`): ``--codi-threads``,
    else the user's ``OMP_NUM_THREADS``, else cpu count / workers (at least 1)."""
    from ..threads import default_threads

    return default_threads(options.threads, processes=worker_count(config))


def worker_device(device: str, config: pytest.Config) -> str:
    """The device this process loads the model on: with ``--codi-device cuda`` (no index) in an xdist
    worker ``gwN``, ``cuda:(N mod GPU count)``, so that ``-n K`` spreads the workers over the GPUs; any
    other device as given (an explicit ``cuda:1`` is every worker's)."""
    wid = worker_id(config)
    if device != "cuda" or not wid.startswith("gw"):
        return device
    import torch

    count = torch.cuda.device_count()
    return f"cuda:{int(wid[2:]) % count}" if count else device  # no GPU: loading gives the one-line error


def worker_id(config: pytest.Config) -> str:
    """``gw0``, ``gw1``, ... in xdist workers; ``main`` otherwise."""
    return str(getattr(config, "workerinput", {}).get("workerid", "main"))
