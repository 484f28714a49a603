"""`rdjson`: reviewdog's Diagnostic Format (`reviewdog -f=rdjson`), one DiagnosticResult.

Positions are 1-based; reviewdog counts columns in UTF-8 bytes, so code-point columns are
converted where the line's text is known. Safe and unsafe fixes become `suggestions`
(reviewdog proposes them as suggested changes); a notebook finding names the `.ipynb`
file's own line and carries no suggestion (its edits address the cell's code).
"""

from __future__ import annotations

import json
from typing import Any, TextIO

from bnlint.diagnostics import Diagnostic, Edit, FileResult, Severity
from bnlint.registry import rule_url
from bnlint.report.model import Report, ReportOptions, line_text, placement

SEVERITIES = {Severity.ERROR: "ERROR", Severity.WARNING: "WARNING", Severity.INFO: "INFO"}


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    document = {
        "source": {"name": "bnlint", "url": "https://pypi.org/project/bnlint/"},
        "diagnostics": [_diagnostic(result, diagnostic) for result in report.results for diagnostic in result.diagnostics],
    }
    json.dump(document, out, indent=2, ensure_ascii=False)
    out.write("\n")


def _diagnostic(result: FileResult, diagnostic: Diagnostic) -> dict[str, Any]:
    where = placement(result, diagnostic)
    location: dict[str, Any] = {"path": diagnostic.path}
    if where.line is not None:
        text = line_text(result, diagnostic) if diagnostic.cell is None else None
        start = {"line": where.line, "column": _byte_column(text, where.column)}
        location["range"] = {"start": start}
        if where.end_line is not None:
            same_line = text if where.end_line == where.line else None
            location["range"]["end"] = {"line": where.end_line, "column": _byte_column(same_line, where.end_column)}
    entry: dict[str, Any] = {
        "message": where.message,
        "location": location,
        "severity": SEVERITIES[diagnostic.severity],
        "code": {"value": diagnostic.code, "url": rule_url(diagnostic.code)},
    }
    if diagnostic.fix is not None and diagnostic.cell is None:
        entry["suggestions"] = [_suggestion(edit) for edit in diagnostic.fix.edits]
    return entry


def _suggestion(edit: Edit) -> dict[str, Any]:
    # Edit columns of other lines than the finding's are not converted: fixes touch ASCII code.
    return {
        "range": {"start": {"line": edit.line, "column": edit.column}, "end": {"line": edit.end_line, "column": edit.end_column}},
        "text": edit.content,
    }


def _byte_column(text: str | None, column: int | None) -> int | None:
    if text is None or column is None:
        return column
    return len(text[: column - 1].encode("utf-8")) + 1
