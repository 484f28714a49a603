"""`azure`: Azure Pipelines logging commands, which the run's summary shows as issues.

    ##vso[task.logissue type=warning;sourcepath=model.py;linenumber=12;columnnumber=9;code=BN304;]message

Azure knows only errors and warnings: info findings are warnings. Property values and the
message are escaped as the agent expects (azure-pipelines-task-lib's escaping).
"""

from __future__ import annotations

from typing import TextIO

from bnlint.diagnostics import Severity
from bnlint.report.model import Report, ReportOptions
from bnlint.report.summary import summary_lines, write_lines

_TYPES = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "warning"}


def escape_data(text: str) -> str:
    return text.replace("%", "%AZP25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace("]", "%5D").replace(";", "%3B")


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    lines = []
    for diagnostic, where in report.placed():
        properties = {
            "type": _TYPES[diagnostic.severity],
            "sourcepath": diagnostic.path,
            "linenumber": where.line,
            "columnnumber": where.column,
            "code": diagnostic.code,
        }
        rendered = "".join(f"{key}={escape_property(str(value))};" for key, value in properties.items()
                           if value is not None)
        lines.append(f"##vso[task.logissue {rendered}]{escape_data(where.message)}")
    write_lines(lines, out)
    write_lines(summary_lines(report, options), err)
