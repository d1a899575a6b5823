"""Reading the plugin's input files (one-line usage errors), checking its output folders before the run,
and writing JSON atomically."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..atomic import write_bytes_together

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


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8")


def write_json_together(paths: list[Path], data: Any) -> None:
    """Write ``data`` as JSON to every path, all or none (:func:`codi_probe.atomic.write_bytes_together`)."""
    payload = json_bytes(data)
    write_bytes_together({path: payload for path in paths})


def check_writable(folder: Path, what: str) -> None:
    """Refuse (one-line ``pytest.UsageError``, exit 4) a folder the run could not write ``what`` into, before
    any work: a temporary file is created in it, or in its nearest existing ancestor when the run would
    create it (permission bits alone do not say: root ignores them, and an immutable folder refuses root)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise pytest.UsageError(f"codi-probe: cannot write the {what} in {folder}: {probe} is not a directory")
    try:
        tempfile.TemporaryFile(dir=probe).close()
    except OSError as exc:
        raise pytest.UsageError(f"codi-probe: cannot write the {what} in {folder}: "
                                f"{exc.strerror or exc}") from None
