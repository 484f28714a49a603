"""`pylint`: `path:line: [CODE] message`, the parseable form that pylint-reading tools
(Jenkins' warnings plugin, SonarQube's pylint import, editors) understand. A notebook
finding names the `.ipynb` file's own line and starts its message with the cell position."""

from __future__ import annotations

from typing import TextIO

from bnlint.report.model import Report, ReportOptions
from bnlint.report.summary import summary_lines, write_lines


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    lines = []
    for diagnostic, where in report.placed():
        message = " ".join(where.message.splitlines())
        lines.append(f"{diagnostic.path}:{where.line or 1}: [{diagnostic.code}] {message}")
    write_lines(lines, out)
    write_lines(summary_lines(report, options), err)
