"""Progress bars for long work, one way for the whole package: a tqdm bar (as the trace cache draws) with
the count, the rate and the time left, ``[elapsed<left, rate]``.

Library calls draw no bar unless asked (``force=True``, e.g. a ``progress=True`` argument) or unless a
front end has said where bars go (:func:`show_on`): the pytest plugin does so for a run on a terminal that
is not ``-q`` (:mod:`codi_probe.plugin.progress`), so that the shared grids, the corruption and noise
sweeps show their progress inside their fixtures, and a piped or quiet run stays quiet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_stream: Any = None  # where bars are drawn (a file-like object); None: nowhere


def show_on(stream: Any) -> None:
    """Draw every later bar on ``stream`` (``None``: draw none unless forced)."""
    global _stream
    _stream = stream


def shown() -> bool:
    return _stream is not None


def bar(total: int | None, desc: str, unit: str = "problem", *, force: bool = False, delay: float = 0.0) -> Any:
    """A tqdm bar of ``total`` ``unit`` s (disabled unless :func:`shown` or ``force``); close it, or use it
    as a context manager. It clears its line when closed (the terminal's own output goes on). ``delay``:
    seconds before it first draws (work that ends sooner draws nothing)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not (force or shown()), file=_stream, leave=False,
                mininterval=0.5, dynamic_ncols=True, delay=delay)


def track(items: Iterable[T], desc: str, unit: str = "problem", *, total: int | None = None,
          force: bool = False) -> Iterator[T]:
    """``items`` one by one, counted on a :func:`bar` (``total``: ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with bar(total, desc, unit, force=force) as shown_bar:
        for item in items:
            yield item
            shown_bar.update(1)
