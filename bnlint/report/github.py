"""`github`: GitHub Actions workflow commands, which the runner turns into annotations.

    ::error file=model.py,line=12,col=9,endLine=12,endColumn=28,title=BN304 (redundant-bias)::message

A notebook finding has lines relative to its cell, which would point into the raw JSON:
it is annotated on the file, with the cell and position at the start of the message.
"""

from __future__ import annotations

from typing import TextIO

from bnlint.diagnostics import Diagnostic, Severity, UnusedSuppression
from bnlint.report.model import Report, ReportOptions
from bnlint.report.summary import summary_lines, write_lines

_COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a command's message (GitHub's `escapeData`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (GitHub's `escapeProperty`): also `:` and `,`."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_command(diagnostic: Diagnostic) -> str:
    message = diagnostic.message
    if diagnostic.cell is None:
        position = {
            "line": diagnostic.line,
            "col": diagnostic.column,
            "endLine": diagnostic.end_line,
            "endColumn": diagnostic.end_column,
        }
    else:
        position = {}
        message = f"cell {diagnostic.cell}, line {diagnostic.line}, column {diagnostic.column}: {message}"
    title = f"{diagnostic.code} ({diagnostic.rule})"
    return _command(_COMMANDS[diagnostic.severity], diagnostic.path, position, title, message)


def format_unused_noqa(unused: UnusedSuppression) -> str:
    codes = f" ({', '.join(unused.codes)})" if unused.codes else ""
    message = f"unused noqa directive{codes}"
    if unused.cell is not None:
        return _command("warning", unused.path, {}, "unused-noqa", f"cell {unused.cell}, line {unused.line}: {message}")
    return _command("warning", unused.path, {"line": unused.line, "col": unused.column}, "unused-noqa", message)


def _command(kind: str, path: str, position: dict[str, int], title: str, message: str) -> str:
    properties = {"file": path, **{key: str(value) for key, value in position.items()}, "title": title}
    rendered = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{kind} {rendered}::{escape_data(message)}"


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    write_lines([format_command(diagnostic) for diagnostic in report.diagnostics()], out)
    if options.unused_noqa:
        write_lines([format_unused_noqa(unused) for result in report.results for unused in result.unused_suppressions], out)
    write_lines(summary_lines(report, options), err)
