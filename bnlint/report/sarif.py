"""`sarif`: a SARIF 2.1.0 log (GitHub code scanning, Azure DevOps, IDE viewers).

Paths are URIs relative to `%SRCROOT%` (the working directory, also given in
`originalUriBaseIds`); columns count Unicode code points, end exclusive, as bnlint's do.
Notebook findings keep lines relative to their cell (named in the result's `properties`)
and carry no `fixes`: their edits address the cell's code, not the notebook's JSON.
`partialFingerprints` avoid line numbers so that a finding keeps its identity when code
above it moves: code + path + the whitespace-normalised source line + the occurrence index
of that triple in the file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path, PurePath
from typing import Any, TextIO
from urllib.parse import quote

from bnlint import __version__
from bnlint.diagnostics import Diagnostic, Edit, FileResult, Severity
from bnlint.registry import RuleInfo
from bnlint.report.model import Report, ReportOptions, line_text

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
        occurrences: Counter[str] = Counter()
        for diagnostic in file_result.diagnostics:
            if diagnostic.code not in rule_index:  # a code the catalogue lacks still gets a descriptor
                rule_index[diagnostic.code] = len(descriptors)
                descriptors.append({"id": diagnostic.code, "name": diagnostic.rule})
            results.append(_result(diagnostic, rule_index[diagnostic.code], _fingerprint(file_result, diagnostic, occurrences)))
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
        "defaultConfiguration": {"level": LEVELS[rule.severity]},
        "properties": {
            "frameworks": list(rule.frameworks),
            "fix": rule.fix.value if rule.fix else "none",
            "tags": ["batch-norm", *rule.frameworks],
        },
    }


def _result(diagnostic: Diagnostic, rule_index: int, fingerprint: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": LEVELS[diagnostic.severity],
        "message": {"text": diagnostic.message},
        "locations": [
            {"physicalLocation": {"artifactLocation": artifact_location(diagnostic.path), "region": _region(diagnostic)}}
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint},
    }
    if diagnostic.cell is not None:
        result["properties"] = {"notebookCell": diagnostic.cell}
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


def _fingerprint(result: FileResult, diagnostic: Diagnostic, occurrences: Counter[str]) -> str:
    text = line_text(result, diagnostic)
    anchor = " ".join(text.split()) if text is not None else diagnostic.message
    key = "\0".join((diagnostic.code, PurePath(diagnostic.path).as_posix(), anchor))
    occurrences[key] += 1
    return hashlib.sha256(f"{key}\0{occurrences[key]}".encode()).hexdigest()[:32]


def _notification(result: FileResult) -> dict[str, Any]:
    return {
        "level": "error",
        "message": {"text": result.error},
        "locations": [{"physicalLocation": {"artifactLocation": artifact_location(result.path)}}],
    }
