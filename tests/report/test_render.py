"""The HTML page is self-contained and complete; the Markdown page links figures written beside it."""

import re
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from codi_probe.report import ReportError
from codi_probe.report.plots import PANELS
from codi_probe.report.render import output_path
from codi_probe.report.render import write_report as render


def test_html_is_self_contained_and_complete(rendered_html, report):
    out = rendered_html
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert not re.findall(r'(?:src|href)="(?!data:|#)', page), "only data: URLs and in-page anchors"
    assert "http://" not in page and "https://" not in page
    assert page.count('src="data:image/png;base64,') == len(PANELS)
    for _slug, title, *_ in PANELS:
        assert f"<h3>{title}</h3>" in page
    for claim in report["claims"]:
        assert claim["id"] in page
    att = next(c for c in report["claims"] if c["id"] == "ATT-01[late-0.875]")
    assert f"{att['q_value']:.3g}" in page  # q-values in the claims table
    assert "P5: 0.343" in page and "Reported vs measured" in page
    for text in (report["model"]["sha256"], report["data"]["answer_problems"]["fingerprint"], "threads_per_process"):
        assert text in page
    assert "&lt;with markup&gt;" in page and "<with markup>" not in page
    assert [p.name for p in out.parent.iterdir()] == ["page.html"], "no temporary files left"


def test_html_notes_missing_panels(tmp_path, report, write_report):
    for claim in report["claims"]:
        claim["details"] = {}
    page = render(write_report(tmp_path / "r.json", report)).read_text()
    assert "not in this report: needs FLOW-01.details.latent_attention_top_heads" in page
    assert 'src="data:' not in page.replace('href="data:,"', "")


def test_markdown_writes_figures_beside_it(tmp_path, report_path):
    out = render(report_path, str(tmp_path / "page.md"))
    text = out.read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == len(PANELS) and all(link.startswith("page_files/") for link in links)
    for link in links:
        assert (tmp_path / link).read_bytes().startswith(b"\x89PNG")
    assert "| claim | kind | verdict |" in text and "## Fingerprints" in text


def test_output_path_and_format():
    assert output_path(Path("r/latest.json"), None, None)[0].as_posix() == "r/latest.html"
    assert output_path(Path("r.json"), "x.md", None)[1] == "md"
    assert output_path(Path("r.json"), "x.txt", "md")[1] == "md"


def test_an_unwritable_output_is_one_line(tmp_path, report_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ReportError, match="cannot write"):
        render(report_path, str(blocker / "page.html"))
