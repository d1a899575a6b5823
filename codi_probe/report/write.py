"""Atomic file writes for the report command (one-line errors on unwritable paths)."""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_bytes_atomic
from .load import ReportError


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        write_bytes_atomic(path, payload)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc.strerror or exc}") from None
