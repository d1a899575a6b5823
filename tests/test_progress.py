"""codi_probe.progress: one bar with the time left, drawn only where a front end said, or when forced."""

import io

from codi_probe import progress


def test_bars_are_drawn_only_where_shown(monkeypatch):
    monkeypatch.setattr(progress, "_stream", None)
    assert list(progress.track(range(3), "quiet")) == [0, 1, 2]  # nothing to draw on: no bar
    stream = io.StringIO()
    progress.show_on(stream)
    try:
        assert list(progress.track(range(3), "grid", "chunk")) == [0, 1, 2]
    finally:
        progress.show_on(None)
    text = stream.getvalue()
    assert "grid" in text and "/3 [" in text and "<" in text  # count of 3 and [elapsed<time left]
