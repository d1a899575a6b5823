"""``codi-probe report``: writes the page, says how to install matplotlib when it is absent."""

import sys

import pytest

from codi_probe.cli import main


@pytest.fixture
def light_report(tmp_path, report, write_report):
    """The fixture without details: every panel is a note, so rendering is fast."""
    for claim in report["claims"]:
        claim["details"] = {}
    return write_report(tmp_path / "light.json", report)


def test_report_writes_html_beside_the_report_by_default(light_report, capsys):
    pytest.importorskip("matplotlib")
    assert main(["report", str(light_report)]) == 0
    out = light_report.with_suffix(".html")
    assert capsys.readouterr().out.strip() == str(out) and out.read_text().startswith("<!DOCTYPE html>")


def test_report_markdown(light_report, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["report", str(light_report), "--out", str(tmp_path / "x" / "r.txt"), "--format", "md"]) == 0
    assert (tmp_path / "x" / "r.txt").read_text().startswith("# codi-probe report")


def test_report_without_matplotlib_says_how_to_install(light_report, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", str(light_report)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install "codi-probe[plot]"' in err
    assert not light_report.with_suffix(".html").exists()


def test_report_on_a_missing_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["report", str(tmp_path / "none.json")]) == 2
    assert capsys.readouterr().err == f"codi-probe: error: {tmp_path / 'none.json'}: file not found\n"
