"""`concise`: one line per finding, `path:line:col: SEVERITY: CODE message`.

Every stdout line matches `^(.+):(\\d+):(\\d+): (error|warning|info): (BN\\d{3}) (.+)$`
(a notebook cell shows as `nb.ipynb:cell 3:line:col`); the summary goes to stderr so that
editors, CI problem matchers and grep see only findings.
"""

from __future__ import annotations

from typing import TextIO

from bnlint.diagnostics import Diagnostic
from bnlint.report.model import Report, ReportOptions, location
from bnlint.report.summary import make_console, print_statistics, summary_lines, write_lines


def format_line(diagnostic: Diagnostic) -> str:
    where = location(diagnostic.path, diagnostic.line, diagnostic.column, diagnostic.cell)
    message = " ".join(diagnostic.message.splitlines())
    return f"{where}: {diagnostic.severity.value}: {diagnostic.code} {message}"


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    if options.statistics:
        print_statistics(report, options, make_console(out, options.color))
    else:
        write_lines([format_line(diagnostic) for diagnostic in report.diagnostics()], out)
    write_lines(summary_lines(report, options), err)
