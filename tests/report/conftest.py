"""A small synthetic, schema-valid report carrying every details key the report plots read."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

POSITIONS = [f"P{k}" for k in range(7)]
METHODS = ["zero", "mean", "noise_0.1", "noise_1", "shuffle", "replace", "random"]
N_LAYERS = 4


def _claim(cid: str, kind: str = "empirical", *, value: float | None = 0.1, p: float | None = None,
           verdict: str = "refuted", details: dict[str, Any] | None = None, reported: Any = None,
           statistic: str = "a statistic", ci: tuple[float, float] | None = (0.0, 0.2)) -> dict[str, Any]:
    base, _, param = cid.partition("[")
    return {
        "nodeid": f"hypotheses/test_synthetic.py::test_{base.lower()}" + (f"[{param}" if param else ""),
        "outcome": "passed", "duration_s": 0.01, "message": None,
        "id": cid, "base_id": base, "kind": kind, "statement": f"synthetic claim {cid}", "source": "synthetic",
        "reported": reported, "param_id": param.rstrip("]") or None, "params": {}, "statistic": statistic,
        "value": value, "statistics": {}, "effect_size": None,
        "ci": {"lo": ci[0], "hi": ci[1], "level": 0.95} if ci else None, "p_value": p, "q_value": None, "n": 20,
        "threshold": 0.2, "verdict": verdict, "details": details or {}, "non_finite": [],
        "expected": None if kind == "invariant" else "record", "baseline": None, "failures": [],
    }


def _grid(rows: list[Any], values: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {"rows": rows, "cols": POSITIONS, "values": values.round(4).tolist(), **extra}


def _claims(rng: np.random.Generator) -> list[dict[str, Any]]:
    rates = rng.uniform(0.05, 0.4, (len(METHODS), 7))
    imp = {"failure_rate_by_position": dict(zip(POSITIONS, rates.mean(0).round(4).tolist())),
           "failure_by_method_position": _grid(METHODS, rates, lo=(rates - 0.05).round(4).tolist(),
                                               hi=(rates + 0.05).round(4).tolist(), level=0.95)}
    claims = [_claim(f"IMP-01[{p}]", details=imp, reported={"P5": 0.343, "P1": 0.186}) for p in POSITIONS]
    claims.append(_claim("IMP-02", details={"zero_failure_by_position": dict(zip(POSITIONS, rates[0].tolist()))}))
    recovery = np.sin(np.linspace(0, 3, N_LAYERS)).round(4)
    claims.append(_claim("LAY-01", details={
        "pooled_recovery_by_layer": recovery.tolist(), "band": [1],
        "recovery_ci_by_layer": {"lo": (recovery - 0.1).tolist(), "hi": (recovery + 0.1).tolist(), "level": 0.95}},
        reported={"L5 KL": 0.00233}))
    heads = []
    for layer, head in ((3, 1), (2, 0), (1, 2)):
        m = np.tril(rng.uniform(0, 1, (6, 6)))
        heads.append({"layer": layer, "head": head, "score": float(m.sum().round(3)), "rows": POSITIONS[1:],
                      "cols": POSITIONS[1:], "values": (m / m.sum(1, keepdims=True)).round(4).tolist()})
    claims.append(_claim("FLOW-01", value=0.5, verdict="supported", reported=0.197, ci=(0.3, 0.7),
                         details={"latent_attention_top_heads": heads}))
    for i, depth in enumerate(("early-0.25", "middle-0.5", "late-0.875")):
        att = rng.dirichlet(np.ones(7), 20)
        claims.append(_claim(f"ATT-01[{depth}]", value=0.1 * i, p=0.01 * (i + 1), details={
            "mean_attention": dict(zip(POSITIONS, att.mean(0).tolist())),
            "attention_importance": {"positions": POSITIONS, "attention": att.round(4).tolist(),
                                     "importance": (att + rng.normal(0, 0.05, att.shape)).round(4).tolist()}},
            reported={"early (L4)": 0.013}, statistic="mean within-problem Spearman(attention, importance)"))
    for cid in ("LENS-02[step1-P2]", "LENS-02[step2-P4]", "LENS-10"):
        lens = rng.uniform(0, 1, (N_LAYERS, 7))
        claims.append(_claim(cid, details={"rate_by_position": dict(zip(POSITIONS, lens[-1].round(4).tolist())),
                                           "rate_by_layer_position": _grid(list(range(N_LAYERS)), lens)},
                             reported=0.16))
    acc = {str(k): round(0.1 + 0.1 * k, 3) for k in range(7)}
    claims.append(_claim("ACC-03", p=0.001, verdict="supported", reported="n/r", details={
        "accuracy_by_iterations": acc,
        "accuracy_ci_by_iterations": {k: [max(0.0, v - 0.1), min(1.0, v + 0.1)] for k, v in acc.items()}}))
    sigmas = [0.001, 0.01, 0.1, 0.5, 1.0, 2.0]
    claims.append(_claim("COR-01", "invariant", value=0.0, verdict="supported", ci=None, details={
        "sigma_relative": sigmas, "mean_kl": [0.0001 * 10 ** k for k in range(6)], "layer": 2},
        reported={"zero": 0.2}))  # the fields hypotheses/test_corruption.py records
    claims.append(_claim("SAN-CAUSAL", "invariant", value=0.0, verdict="supported", ci=None))
    return claims


def _q_values(claims: list[dict[str, Any]]) -> None:
    from codi_probe.plugin.report import bh_q_values

    with_p = [c for c in claims if c["p_value"] is not None]
    for claim, q in zip(with_p, bh_q_values([c["p_value"] for c in with_p])):
        claim["q_value"] = q


def synthetic_report() -> dict[str, Any]:
    """The report dict (deterministic)."""
    claims = _claims(np.random.default_rng(0))
    _q_values(claims)
    verdicts = {v: sum(c["verdict"] == v for c in claims) for v in ("supported", "refuted", "inconclusive")}
    return {
        "schema_version": "1.0", "created": "2026-01-01T00:00:00+00:00", "duration_s": 12.5, "status": "complete",
        "exitstatus": 0,
        "model": {"name": "synthetic-codi", "path": None, "architecture": "gpt2", "n_layers": N_LAYERS,
                  "n_heads": 4, "params": {"total": 1000, "lora": 10}, "sha256": "ab" * 32},
        "data": {"answer_problems": {"family": "gsm8k", "n": 20, "fingerprint": "cd" * 32,
                                     "filters": [{"filter": "first_n", "n": 20}]}},
        "session": {},
        "environment": {"python": "3.11.7", "platform": "Linux", "packages": {"torch": "2.13.0", "numpy": None},
                        "device": "cpu", "workers": 1, "threads_per_process": 2,
                        "processes": [{"worker": "main", "torch_threads": 2}]},
        "options": {"model": "synthetic-codi", "base": None, "tokenizer": None, "dtype": "fp32", "device": "cpu",
                    "problems": 20, "seed": 0, "threads": None, "report": None, "baseline": None, "expect": None,
                    "tolerance": 0.0, "sources": {}},
        "expectations": {"source": "none", "path": None, "default": "record", "claims": {}},
        "baseline": None,
        "multiple_testing": {"method": "benjamini-hochberg", "family": "all claims with a p-value",
                             "m": sum(c["q_value"] is not None for c in claims)},
        "summary": {"tests": len(claims), "outcomes": {"passed": len(claims)}, "claims": len(claims),
                    "kinds": {"invariant": 2, "empirical": len(claims) - 2}, "verdicts": verdicts,
                    "check_failures": 0},
        "claims": claims, "other_tests": [], "warnings": ["a synthetic warning <with markup>"],
    }


def _write(path: Path, report: Any) -> Path:
    path.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def report() -> dict[str, Any]:
    """A fresh copy of the synthetic report (tests may edit it)."""
    return copy.deepcopy(_REPORT)


@pytest.fixture
def write_report() -> Callable[[Path, Any], Path]:
    """Write a report dict (or anything) as JSON to a path; returns the path."""
    return _write


@pytest.fixture
def report_path(tmp_path: Path, report: dict[str, Any]) -> Path:
    return _write(tmp_path / "report.json", report)


@pytest.fixture
def claim_of() -> Callable[[dict[str, Any], str], dict[str, Any]]:
    """The claim with an id in a report dict."""
    return lambda rep, cid: next(c for c in rep["claims"] if c["id"] == cid)


@pytest.fixture(scope="session")
def rendered_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture report rendered once as HTML (read-only for the tests)."""
    pytest.importorskip("matplotlib")
    from codi_probe.report.render import write_report

    folder = tmp_path_factory.mktemp("rendered")
    return write_report(_write(folder / "report.json", _REPORT), str(folder / "out" / "page.html"))


_REPORT = synthetic_report()
