"""`json-lines`: one finding per line, each the object of the JSON contract
(`Diagnostic.to_json()`, see docs/json-contract.md), for tools that stream."""

from __future__ import annotations

import json
from typing import TextIO

from bnlint.report.model import Report, ReportOptions


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    for diagnostic in report.diagnostics():
        out.write(json.dumps(diagnostic.to_json(), ensure_ascii=False) + "\n")
