"""The ``--codi-*`` options: declared once, settable by command line > environment > ini > default."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import pytest

DTYPES = ("fp32", "bf16")
DEPTHS = ("quick", "full")  # problem tiers of the empirical claims (hypotheses/conftest.py TIERS)
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
    threads: int | None = None  # None: cpu count / xdist workers (see ``torch_threads``)
    report: str | None = None  # None: reports/<timestamp>.json under the rootdir
    baseline: str | None = None
    expect: str | None = None  # a path, "none", or None (the profile the model's design decides)
    tolerance: float = 0.0
    cache: str | None = None  # None or "none": no on-disk result cache
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

    @property
    def flag(self) -> str:
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


def _depth(text: str) -> str:
    if text not in DEPTHS:
        raise ValueError(f"must be one of {', '.join(DEPTHS)}")
    return text


def _dtype(text: str) -> str:
    if text not in DTYPES:
        raise ValueError(f"must be one of {', '.join(DTYPES)}")
    return text


SPECS = (
    _Spec("model", "CODI model: tiny-random-gpt2, tiny-random-llama, a checkpoint path "
          "(default: codi_probe.loading.DEFAULT_MODEL)", path="maybe"),
    _Spec("base", "base model config/directory for a checkpoint", path="maybe"),
    _Spec("tokenizer", "tokenizer directory or fixtures name (default: the --codi-base directory when it "
          "holds tokenizer files, else the model's own)", path="maybe"),
    _Spec("lora_alpha", "LoRA alpha of a checkpoint (not stored in the file; default: the sidecar's, else "
          "the official 32, reported as assumed)", _positive_int),
    _Spec("dtype", "model dtype: fp32 or bf16 (default fp32)", _dtype, "fp32"),
    _Spec("device", "torch device (default cpu)", str, "cpu"),
    _Spec("problems", "number of problems per claim (default: the --codi-depth tier's)", _positive_int),
    _Spec("depth", "problem tier: quick (100 problems, the default run) or full (500: every claim reaches its "
          "minimum n, including the equivalence claims)", _depth, "quick"),
    _Spec("seed", "random seed (default 0)", int, 0),
    _Spec("threads", "torch threads per process (default: cpu count / xdist workers, at least 1)",
          _positive_int),
    _Spec("report", "JSON report path (default: reports/<timestamp>.json, plus reports/latest.json)",
          path="file"),
    _Spec("baseline", "previous report to compare verdicts and statistics with", path="file"),
    _Spec("expect", "expectation profile (TOML); 'none' records only (default: the profile the model's "
          "design decides, codi_probe.planted)", path="file"),
    _Spec("tolerance", "absolute widening of the baseline CI before a statistic counts as moved "
          "(default 0)", _non_negative_float, 0.0),
    _Spec("cache", "directory of resumable on-disk results of long sweeps (the CCTA grid), reused while "
          "the model weights and the sweep's configuration are unchanged (default: none, no cache)", path="file"),
)


def add_options(parser: pytest.Parser) -> None:
    """Register every option on the command line and as an ini key."""
    group = parser.getgroup("codi-probe", "codi-probe claims")
    for spec in SPECS:
        group.addoption(spec.flag, dest="codi_" + spec.name, default=None, metavar=spec.name.upper(),
                        help=f"{spec.help} [env {spec.env}, ini {spec.ini}]")
        parser.addini(spec.ini, spec.help, default=None)


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
            where = {"cli": spec.flag, "env": spec.env, "ini": f"ini {spec.ini}"}[source]
            raise pytest.UsageError(f"{where}={raw!r}: {exc}") from None
    if values["model"] is None:
        values["model"] = default_model()
    if values["cache"] is not None and values["cache"].lower() == "none":
        values["cache"] = None
    return CodiOptions(**values, sources=sources)


def worker_count(config: pytest.Config) -> int:
    """How many pytest processes run tests: the xdist worker count, or 1."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return int(workerinput.get("workercount", 1))
    if config.getoption("dist", "no") != "no":
        return max(1, len(config.getoption("tx", None) or []))
    return 1


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def torch_threads(config: pytest.Config, options: CodiOptions) -> int:
    """Torch threads for this process: ``--codi-threads``, else cpu count / workers (at least 1)."""
    return options.threads or max(1, cpu_count() // worker_count(config))


def worker_id(config: pytest.Config) -> str:
    """``gw0``, ``gw1``, ... in xdist workers; ``main`` otherwise."""
    return str(getattr(config, "workerinput", {}).get("workerid", "main"))
