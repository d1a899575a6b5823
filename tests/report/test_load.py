"""Reading reports: schema-valid fixture, one-line errors naming the file and the problem."""

import json

import pytest

from codi_probe.plugin.report import validate_report
from codi_probe.report import ReportError, load_report


def test_the_synthetic_fixture_is_schema_valid(report, report_path):
    validate_report(report)
    assert load_report(report_path)["claims"] == report["claims"]


@pytest.mark.parametrize("content,problem", [
    (None, "file not found"),
    ("{not json", "malformed JSON"),
    ("[1, 2]", "not a codi-probe report"),
    (json.dumps({"hello": 1}), "not a codi-probe report"),
])
def test_unreadable_inputs(tmp_path, content, problem):
    path = tmp_path / "in.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReportError) as err:
        load_report(path)
    message = str(err.value)
    assert message.startswith(str(path)) and problem in message and "\n" not in message


def test_a_schema_invalid_report_names_the_field(tmp_path, report, write_report):
    report["claims"][0]["verdict"] = "maybe"
    with pytest.raises(ReportError, match=r"schema-invalid .* at \$\.claims\[0\]"):
        load_report(write_report(tmp_path / "bad.json", report))
