"""`github`: GitHub Actions workflow commands, which the runner turns into annotations.

    ::error file=model.py,line=12,col=9,endLine=12,endColumn=28,title=BN304 (redundant-bias)::message

A notebook finding is annotated on the line of the `.ipynb` file that stores its cell's
line (on the whole file where that is unknown), with the cell and position at the start of
the message (see `model.placement`).
"""

from __future__ import annotations

from typing import TextIO

from bnlint.diagnostics import Diagnostic, Severity
from bnlint.report.model import Placement, Report, ReportOptions
from bnlint.report.summary import summary_lines, write_lines

_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a command's message (GitHub's `escapeData`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (GitHub's `escapeProperty`): also `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_command(diagnostic: Diagnostic, where: Placement | None = None) -> str:
    where = where or Placement(diagnostic.line, diagnostic.column, diagnostic.end_line, diagnostic.end_column,
                               diagnostic.message)
    position = {"line": where.line, "col": where.column, "endLine": where.end_line, "endColumn": where.end_column}
    properties = {
        "file": diagnostic.path,
        **{key: str(value) for key, value in position.items() if value is not None},
        "title": f"{diagnostic.code} ({diagnostic.rule})",
    }
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{_COMMANDS[diagnostic.severity]} {rendered}::{escape_data(where.message)}"


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    write_lines([format_command(diagnostic, where) for diagnostic, where in report.placed()], out)
    write_lines(summary_lines(report, options), err)
