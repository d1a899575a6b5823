"""Reading the plugin's input files (one-line usage errors) and writing JSON atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..atomic import write_bytes_atomic

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise pytest.UsageError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise pytest.UsageError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None


def _parse(path: Path, what: str, fmt: str, loads: Callable[[str], Any], error: type[Exception]) -> Any:
    try:
        return loads(_read_text(path, what))
    except error as exc:
        raise pytest.UsageError(f"{path}: malformed {fmt} in {what}: {exc}") from None


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's table; a missing or malformed file is a one-line ``pytest.UsageError``."""
    if tomllib is None:
        raise pytest.UsageError(f"{path}: reading a {what} needs Python >= 3.11 (tomllib) or tomli")
    return _parse(path, what, "TOML", tomllib.loads, tomllib.TOMLDecodeError)


def read_json(path: Path, what: str) -> Any:
    """A JSON file's content; a missing or malformed file is a one-line ``pytest.UsageError``."""
    return _parse(path, what, "JSON", json.loads, json.JSONDecodeError)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (see :func:`write_bytes_atomic`)."""
    write_bytes_atomic(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8"))
