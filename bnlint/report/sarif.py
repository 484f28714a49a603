"""`sarif`: a SARIF 2.1.0 log (GitHub code scanning, Azure DevOps, IDE viewers).

Paths are URIs relative to `%SRCROOT%` (the working directory, also given in
`originalUriBaseIds`); columns count Unicode code points, end exclusive, as bnlint's do.
A notebook finding points at the line of the `.ipynb` file that stores its cell's source
line (what code scanning shows when it opens the file), with the cell, line and column
in the result's `properties` and in front of the message; it carries no `fixes`, since its
edits address the cell's code, not the notebook's JSON. `partialFingerprints` avoid line
numbers (see `model.fingerprints`). Each rule's `helpUri` is its document (`rule_url`).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePath
from typing import Any, TextIO
from urllib.parse import quote

from bnlint import __version__
from bnlint.diagnostics import Diagnostic, Edit, FileResult, Severity
from bnlint.registry import RuleInfo, rule_url
from bnlint.report.model import Placement, Report, ReportOptions, fingerprints, placement

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://pypi.org/project/bnlint/"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = "bnlint/v1"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    json.dump(build_log(report), out, indent=2)
    out.write("\n")


def build_log(report: Report) -> dict[str, Any]:
    rules = list(report.rules.values())
    descriptors = [_rule_descriptor(rule) for rule in rules]
    rule_index = {rule.code: index for index, rule in enumerate(rules)}
    results = []
    for file_result in report.results:
        for diagnostic, fingerprint in zip(file_result.diagnostics, fingerprints(file_result), strict=True):
            if diagnostic.code not in rule_index:  # a code the catalogue lacks still gets a descriptor
                rule_index[diagnostic.code] = len(descriptors)
                descriptors.append({"id": diagnostic.code, "name": diagnostic.rule})
            where = placement(file_result, diagnostic)
            results.append(_result(diagnostic, where, rule_index[diagnostic.code], fingerprint))
    unreadable = [result for result in report.results if result.error]
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "bnlint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": Path.cwd().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "invocations": [
                    {
                        "executionSuccessful": not unreadable,
                        "toolExecutionNotifications": [_notification(result) for result in unreadable],
                    }
                ],
                "results": results,
            }
        ],
    }


def _rule_descriptor(rule: RuleInfo) -> dict[str, Any]:
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": rule.section("What it does") or rule.summary},
        "help": {"text": rule.summary, "markdown": rule.documentation},
        "helpUri": rule_url(rule.code),
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {
            "frameworks": list(rule.frameworks),
            "fix": rule.fix.value if rule.fix else "none",
            "tags": ["batch-norm", *rule.frameworks],
        },
    }


def _result(diagnostic: Diagnostic, where: Placement, rule_index: int, fingerprint: str) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": artifact_location(diagnostic.path)}
    if where.line is not None:
        region = {"startLine": where.line, "startColumn": where.column}
        if where.end_line is not None:
            region |= {"endLine": where.end_line, "endColumn": where.end_column}
        physical["region"] = region
    result: dict[str, Any] = {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": LEVELS[diagnostic.severity],
        "message": {"text": where.message},
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
    }
    if diagnostic.cell is not None:
        result["properties"] = {"notebookCell": diagnostic.cell, "cellLine": diagnostic.line,
                                "cellColumn": diagnostic.column}
    elif diagnostic.fix is not None and diagnostic.fix.edits:
        result["fixes"] = [
            {
                "description": {"text": diagnostic.fix.message},
                "artifactChanges": [
                    {
                        "artifactLocation": artifact_location(diagnostic.path),
                        "replacements": [_replacement(edit) for edit in diagnostic.fix.edits],
                    }
                ],
                "properties": {"applicability": diagnostic.fix.applicability.value},
            }
        ]
    return result


def _region(span: Diagnostic | Edit) -> dict[str, int]:
    return {
        "startLine": span.line,
        "startColumn": span.column,
        "endLine": span.end_line,
        "endColumn": span.end_column,
    }


def _replacement(edit: Edit) -> dict[str, Any]:
    return {"deletedRegion": _region(edit), "insertedContent": {"text": edit.content}}


def artifact_location(path: str) -> dict[str, str]:
    """A relative path becomes a URI under %SRCROOT%; an absolute one a file: URI."""
    pure = PurePath(path)
    if pure.is_absolute():
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(pure.as_posix(), safe="/"), "uriBaseId": SRCROOT}


def _notification(result: FileResult) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": result.error},
        "locations": [{"physicalLocation": {"artifactLocation": artifact_location(result.path)}}],
    }
