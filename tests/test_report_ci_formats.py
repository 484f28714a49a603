"""The CI formats, each against its consumer's documented format: json-lines, junit,
gitlab (Code Quality), pylint, rdjson (reviewdog), azure (logging commands)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import xml.etree.ElementTree as ET

from test_report_fixtures import RULES, sample_report

from bnlint.diagnostics import FileResult
from bnlint.registry import rule_url
from bnlint.report import Report, ReportOptions, render
from bnlint.report.azure import escape_data, escape_property


def run(fmt: str, report: Report) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    render(fmt, report, ReportOptions(), out=out, err=err)
    return out.getvalue(), err.getvalue()


def test_json_lines_is_one_contract_object_per_line() -> None:
    out, err = run("json-lines", sample_report())
    array, _ = run("json", sample_report())
    assert [json.loads(line) for line in out.splitlines()] == json.loads(array)
    assert err == ""
    assert run("json-lines", Report([FileResult("ok.py")], RULES, 1))[0] == ""


def test_junit_has_a_suite_per_file_and_a_failing_case_per_finding() -> None:
    report = sample_report()
    report = Report([*report.results, FileResult("src/ok.py"), FileResult("bad.py", error="bad.py: not valid UTF-8")],
                    RULES, 14)
    out, err = run("junit", report)
    assert out.startswith("<?xml version='1.0' encoding='utf-8'?>\n<testsuites")
    root = ET.fromstring(out)
    assert root.tag == "testsuites" and root.get("name") == "bnlint"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "3", "1")
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert list(suites) == ["notebooks/train.ipynb", "src/model.py", "src/ok.py", "bad.py"]
    model = suites["src/model.py"]
    assert (model.get("tests"), model.get("failures"), model.get("errors")) == ("2", "2", "0")
    case = model.findall("testcase")[0]
    assert case.attrib == {"name": "BN304 (redundant-bias)", "classname": "src/model.py", "file": "src/model.py",
                           "line": "4"}
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "BN304"
    assert failure.get("message") == "`Conv2d` feeds `BatchNorm2d`: its bias is cancelled"
    assert failure.text == "src/model.py:4:9: warning: BN304 `Conv2d` feeds `BatchNorm2d`: its bias is cancelled"
    notebook = suites["notebooks/train.ipynb"].find("testcase")
    assert notebook.get("line") == "41"  # the .ipynb file's line; the failure text names the cell
    assert notebook.find("failure").text.startswith("notebooks/train.ipynb:cell 3:2:5: info: BN305 ")
    passing = suites["src/ok.py"].findall("testcase")
    assert len(passing) == 1 and list(passing[0]) == []
    assert suites["bad.py"].find("testcase/error").get("message") == "bad.py: not valid UTF-8"
    assert "bnlint: error: bad.py" in err


def test_gitlab_code_quality_issues_have_the_documented_fields() -> None:
    out, err = run("gitlab", sample_report())
    issues = json.loads(out)
    assert err == "" and len(issues) == 3
    for issue in issues:
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["severity"] in ("info", "minor", "major", "critical", "blocker")
        assert isinstance(issue["location"]["path"], str) and isinstance(issue["location"]["lines"]["begin"], int)
    notebook, bias, features = issues
    assert bias == {
        "description": "BN304 `Conv2d` feeds `BatchNorm2d`: its bias is cancelled",
        "check_name": "BN304",
        "fingerprint": bias["fingerprint"],
        "severity": "minor",
        "location": {"path": "src/model.py", "lines": {"begin": 4}},
    }
    assert features["severity"] == "major" and notebook["severity"] == "info"
    assert notebook["location"] == {"path": "notebooks/train.ipynb", "lines": {"begin": 41}}
    assert notebook["description"].startswith("BN305 cell 3, line 2, column 5: ")
    assert len({issue["fingerprint"] for issue in issues}) == 3  # GitLab needs them unique


def test_pylint_lines() -> None:
    out, err = run("pylint", sample_report())
    assert out.splitlines() == [
        "notebooks/train.ipynb:41: [BN305] cell 3, line 2, column 5: Dropout directly before BatchNorm1d",
        "src/model.py:4: [BN304] `Conv2d` feeds `BatchNorm2d`: its bias is cancelled",
        "src/model.py:5: [BN302] BatchNorm2d(32) follows a layer with 64 channels",
    ]
    assert all(re.match(r"^(.+?):(\d+): \[(BN\d{3})\] (.+)$", line) for line in out.splitlines())
    assert err.startswith("Found ")


def test_rdjson_is_a_reviewdog_diagnostic_result() -> None:
    out, err = run("rdjson", sample_report())
    document = json.loads(out)
    assert err == "" and document["source"]["name"] == "bnlint"
    notebook, bias, features = document["diagnostics"]
    assert bias["location"] == {
        "path": "src/model.py",
        "range": {"start": {"line": 4, "column": 9}, "end": {"line": 4, "column": 28}},
    }
    assert bias["severity"] == "WARNING" and features["severity"] == "ERROR" and notebook["severity"] == "INFO"
    assert bias["code"] == {"value": "BN304", "url": rule_url("BN304")}
    assert bias["suggestions"] == [
        {"range": {"start": {"line": 4, "column": 27}, "end": {"line": 4, "column": 27}}, "text": ", bias=False"}
    ]
    assert notebook["location"] == {"path": "notebooks/train.ipynb", "range": {"start": {"line": 41, "column": 10}}}
    assert "suggestions" not in notebook


def test_rdjson_columns_count_utf8_bytes() -> None:
    report = sample_report()
    model = report.results[1]
    accented = dataclasses.replace(model, source_lines={**model.source_lines, (0, 4): "    é = nn.Conv2d(3, 64, 3),"})
    bias = json.loads(run("rdjson", Report([accented], RULES, 1))[0])["diagnostics"][0]
    assert bias["location"]["range"]["start"]["column"] == 10  # `é` is two bytes before column 9


def test_azure_logging_commands() -> None:
    out, err = run("azure", sample_report())
    assert out.splitlines() == [
        "##vso[task.logissue type=warning;sourcepath=notebooks/train.ipynb;linenumber=41;columnnumber=10;code=BN305;]"
        "cell 3, line 2, column 5: Dropout directly before BatchNorm1d",
        "##vso[task.logissue type=warning;sourcepath=src/model.py;linenumber=4;columnnumber=9;code=BN304;]"
        "`Conv2d` feeds `BatchNorm2d`: its bias is cancelled",
        "##vso[task.logissue type=error;sourcepath=src/model.py;linenumber=5;columnnumber=9;code=BN302;]"
        "BatchNorm2d(32) follows a layer with 64 channels",
    ]
    command = re.compile(r"^##vso\[task\.logissue type=(error|warning);sourcepath=[^;]+;linenumber=\d+;"
                         r"columnnumber=\d+;code=BN\d{3};\].+$")
    assert all(command.match(line) for line in out.splitlines())
    assert err.startswith("Found ")


def test_azure_escaping() -> None:
    assert escape_data("100%\r\nnext") == "100%AZP25%0D%0Anext"
    assert escape_property("a;b]c") == "a%3Bb%5Dc"
