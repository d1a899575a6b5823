"""Atomic file writes, the one way codi-probe writes checkpoints, reports and caches.

A temporary file in the destination folder is written, fsynced and renamed over the destination, so
readers see the old file or the whole new one and an interrupted write leaves no partial file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def _stage(dest: Path, write: Callable[[str], object]) -> str:
    """Write a fsynced temporary file beside ``dest`` with ``write(tmp_path)``; its path (removed on failure)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes it 0600; give it an ordinary file's mode
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(dest: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` (e.g. ``torch.save`` or ``safetensors`` ``save_file``), then move it into place."""
    dest = Path(dest)
    tmp = _stage(dest, write)
    try:
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_together(payloads: dict[Path, bytes]) -> None:
    """Write several files all or none: every one is staged (written and fsynced beside its destination)
    first, and only when all are staged are they renamed into place. A failure while staging (a read-only
    or full folder) removes the staged files and leaves every destination as it was."""
    staged: list[tuple[str, Path]] = []
    try:
        for dest, payload in payloads.items():
            staged.append((_stage(Path(dest), lambda tmp, data=payload: Path(tmp).write_bytes(data)), Path(dest)))
        for tmp, dest in staged:
            os.replace(tmp, dest)
    finally:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)  # gone once renamed; left only after a failure


def torch_save_atomic(dest: str | os.PathLike, obj: object) -> None:
    """``torch.save(obj)`` to ``dest`` atomically, with the same bytes for the same tensors.

    torch.save writes through an open file, never a path: given a path, it names the zip archive's folder
    after the file, so the random temporary name would make every save's bytes (and file sha256) differ.
    """
    import torch

    def save(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)

    atomic_write(dest, save)


def write_bytes_atomic(dest: str | os.PathLike, payload: bytes) -> None:
    atomic_write(dest, lambda tmp: Path(tmp).write_bytes(payload))


def write_text_atomic(dest: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(dest, text.encode("utf-8"))
