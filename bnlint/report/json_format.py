"""`json`: the array of findings from the contract in rules.md (`Diagnostic.to_json()`),
and nothing else on the stream. With --statistics, the array of per-code counts instead."""

from __future__ import annotations

import json
from typing import Any, TextIO

from bnlint.report.model import Report, ReportOptions
from bnlint.report.summary import statistics


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    payload: list[dict[str, Any]]
    if options.statistics:
        payload = statistics(report, options)
    else:
        payload = [diagnostic.to_json() for diagnostic in report.diagnostics()]
    json.dump(payload, out, indent=2)
    out.write("\n")
