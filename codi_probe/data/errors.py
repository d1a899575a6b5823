"""Error types of ``codi_probe.data``; every message is one line naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class DataFormatError(ValueError):
    """A data file (or one record of it) does not have a recognised shape."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.line = line


class FixtureNotFoundError(FileNotFoundError):
    """A data file that should exist (shipped fixture or user path) is missing."""

    def __init__(self, path: str | Path, hint: str = "") -> None:
        self.message = f"{path}: file not found" + (f" ({hint})" if hint else "")
        super().__init__(self.message)
        self.filename = str(path)

    def __str__(self) -> str:
        return self.message


class MissingOptionalDependency(ImportError):
    """An optional extra (e.g. ``datasets``) is needed for the requested operation."""
