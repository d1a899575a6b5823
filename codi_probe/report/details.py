"""Where each plot's data lives in the claim records (``claims[].details``) and how to find it.

Keys marked *requested* are not written by the claims yet; their panels render when a report carries
them and otherwise show a "not in this report" note naming the key (see ``REQUESTED``).
"""

from __future__ import annotations

from typing import Any

# Requested details keys: claim base id, key, expected shape.
REQUESTED: dict[str, tuple[str, str, str]] = {
    "method_position": (
        "IMP-01", "failure_by_method_position",
        ('{"rows": [method, ...], "cols": ["P0", ..., "P6"], "values": [[M x 7] failure rate], '
        '"lo": [[M x 7]], "hi": [[M x 7]], "level": 0.95}  (lo/hi/level optional)')),
    "top_heads": (
        "FLOW-01", "latent_attention_top_heads",
        ('[{"layer": int, "head": int, "score": float, "rows": [query P1..P6], "cols": [key P1..P6], '
        '"values": [[6 x 6] mean attention]}, ...]  (best first; 6x6 or 7x7)')),
    "scatter": (
        "ATT-01", "attention_importance",
        '{"positions": ["P0", ..., "P6"], "attention": [[n x 7]], "importance": [[n x 7]]}  (per problem)'),
    "lens_grid": (
        "LENS-10", "rate_by_layer_position",
        ('{"rows": [layer, ...], "cols": ["P0", ..., "P6"], "values": [[L x 7] top-1 rate]}  '
        "(also on each LENS-02[*] for step1/step2)")),
    "recovery_ci": ("LAY-01", "recovery_ci_by_layer", '{"lo": [L], "hi": [L], "level": 0.95}  (optional band)'),
    "accuracy_ci": ("ACC-03", "accuracy_ci_by_iterations", '{"0": [lo, hi], ..., "6": [lo, hi]}  (optional)'),
}


def missing_note(name: str) -> str:
    """The visible note for a panel whose requested key is absent."""
    base_id, key, _shape = REQUESTED[name]
    return f"not in this report: needs {base_id}.details.{key}"


def claims_with(report: dict[str, Any], base_id: str, key: str | None = None) -> list[dict[str, Any]]:
    """Claims with ``base_id`` (sorted by id) that carry details ``key`` (any, when ``key`` is None)."""
    found = [c for c in report.get("claims", []) if c.get("base_id") == base_id
             and (key is None or (isinstance(c.get("details"), dict) and key in c["details"]))]
    return sorted(found, key=lambda c: c.get("id", ""))


def detail(report: dict[str, Any], base_id: str, key: str) -> Any:
    """``details[key]`` of the first claim with ``base_id`` that has it, else None."""
    found = claims_with(report, base_id, key)
    return found[0]["details"][key] if found else None


def requested(report: dict[str, Any], name: str) -> Any:
    """The value of a requested key (see ``REQUESTED``), else None."""
    base_id, key, _shape = REQUESTED[name]
    return detail(report, base_id, key)


def series(mapping: Any) -> tuple[list[str], list[float]]:
    """Labels and values (None as NaN) of a ``{label: number}`` mapping or a plain list (labels 0..n-1)."""
    if isinstance(mapping, dict):
        items = list(mapping.items())
    elif isinstance(mapping, list):
        items = list(enumerate(mapping))
    else:
        raise TypeError(f"expected a mapping or a list, got {type(mapping).__name__}")
    return [str(k) for k, _ in items], [float("nan") if v is None else float(v) for _, v in items]


def matrix(grid: Any, field: str = "values") -> list[list[float]]:
    """A labelled matrix's ``field`` as floats (None as NaN), checked against its row/column labels."""
    rows, cols = grid["rows"], grid["cols"]
    values = [[float("nan") if v is None else float(v) for v in row] for row in grid[field]]
    if len(values) != len(rows) or any(len(row) != len(cols) for row in values):
        raise ValueError(f"{field} is not {len(rows)} x {len(cols)} like its rows and cols")
    return values
