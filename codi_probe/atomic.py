"""Atomic file writes, the one way codi-probe writes checkpoints, reports and caches.

A temporary file in the destination folder is written, fsynced and renamed over the destination, so
readers see the old file or the whole new one and an interrupted write leaves no partial file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(dest: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` (e.g. ``torch.save`` or ``safetensors`` ``save_file``), then move it into place."""
    dest = Path(dest)
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
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
