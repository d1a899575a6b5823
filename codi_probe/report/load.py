"""Reading a report file: one-line :class:`ReportError` naming the file and the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..plugin.report import validate_report


class ReportError(ValueError):
    """A report that cannot be read, or an output that cannot be written (one line)."""


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def load_report(path: str | Path) -> dict[str, Any]:
    """The report at ``path``, checked against the shipped schema."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read: {_one_line(getattr(exc, 'strerror', None) or exc)}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not a codi-probe report: malformed JSON: {exc}") from None
    if not isinstance(data, dict) or "schema_version" not in data or "claims" not in data:
        raise ReportError(f"{path}: not a codi-probe report (no schema_version and claims)")
    import jsonschema

    try:
        validate_report(data)
    except jsonschema.ValidationError as exc:
        where = exc.json_path if exc.absolute_path else "the top level"
        raise ReportError(f"{path}: schema-invalid codi-probe report at {where}: {_one_line(exc.message)}") from None
    return data
