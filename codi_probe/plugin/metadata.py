"""Session metadata (model fingerprint, data fingerprint, per-process facts) that crosses xdist.

Fixtures call :func:`add_session_metadata`; in an xdist worker the data is mirrored into
``config.workeroutput`` and the controller merges it in ``pytest_testnodedown``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from .jsonable import to_plain
from .options import CodiOptions, torch_threads, worker_id

SECTIONS = ("model", "data", "session")
WORKEROUTPUT_KEY = "codi_probe"
METADATA_KEY = pytest.StashKey["SessionMetadata"]()


@dataclass
class SessionMetadata:
    """Report sections ``model``, ``data``, ``session``; per-process facts; warnings."""

    sections: dict[str, dict[str, Any]] = field(default_factory=lambda: {s: {} for s in SECTIONS})
    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def payload(self) -> str:
        return json.dumps({"sections": self.sections, "processes": self.processes})

    def merge(self, payload: str, origin: str) -> None:
        """Merge a worker's :meth:`payload`; a differing shared value is kept and noted."""
        data = json.loads(payload)
        for section, items in data.get("sections", {}).items():
            mine = self.sections.setdefault(section, {})
            for key, value in items.items():
                if key not in mine:
                    mine[key] = value
                elif mine[key] != value:
                    self.warnings.append(f"{section}.{key}: {origin} reported {value!r}, kept {mine[key]!r}")
        self.processes.update(data.get("processes", {}))


def get_metadata(config: pytest.Config) -> SessionMetadata:
    """This process's metadata store."""
    if METADATA_KEY not in config.stash:
        config.stash[METADATA_KEY] = SessionMetadata()
    return config.stash[METADATA_KEY]


def _publish(config: pytest.Config) -> None:
    """Mirror the store into ``workeroutput`` (xdist workers only)."""
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[WORKEROUTPUT_KEY] = get_metadata(config).payload()


def add_session_metadata(config: pytest.Config, key: str, value: Any, *, section: str = "session") -> None:
    """Put ``value`` (made JSON-able) under ``report[section][key]``.

    ``section`` is ``"model"`` (the model fingerprint), ``"data"`` (the data fingerprint) or
    ``"session"`` (anything else). Values should be the same in every xdist worker; a differing
    one is kept from the first worker and listed in the report's ``warnings``.
    """
    if section not in SECTIONS:
        raise ValueError(f"section must be one of {', '.join(SECTIONS)}, got {section!r}")
    get_metadata(config).sections[section][str(key)] = to_plain(value)
    _publish(config)


def add_process_info(config: pytest.Config, key: str, value: Any) -> None:
    """Record a per-process fact (threads, model load time) under this process's worker id."""
    get_metadata(config).processes.setdefault(worker_id(config), {})[str(key)] = to_plain(value)
    _publish(config)


def set_torch_threads(config: pytest.Config, options: CodiOptions) -> int:
    """``torch.set_num_threads`` for this process (:func:`~.options.torch_threads`); recorded as process info.
    Lives here, not in ``fixtures``: a module in ``pytest_plugins`` imported by another first cannot be
    assertion-rewritten, and pytest warns in every run."""
    import torch

    threads = torch_threads(config, options)
    torch.set_num_threads(threads)
    add_process_info(config, "torch_threads", threads)
    return threads
