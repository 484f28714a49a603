"""Output formats: one module per format, one entry point (`render`).

Stream policy: a format's payload goes to `out` (stdout or --output-file); text meant for a
person goes to `err` wherever it would corrupt a machine-read payload:
- `full`: findings, unused-noqa list and summary, all on `out`;
- `concise`: only finding lines on `out` (each matches the contract regex); the
  unused-noqa list and the summary on `err`;
- `github`: workflow commands on `out` (unused noqa directives as `::warning`), summary on `err`;
- `json`, `sarif`: the document alone; unused noqa directives are not part of either.
Files that could not be read are reported on `err` in every format (and in SARIF's
`toolExecutionNotifications`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from bnlint.errors import UsageError
from bnlint.report import concise, full, github, json_format, sarif
from bnlint.report.model import Report, ReportOptions

__all__ = ["FORMATS", "Report", "ReportOptions", "check_options", "render"]

Writer = Callable[[Report, ReportOptions, TextIO, TextIO], None]

FORMATS: dict[str, Writer] = {
    "full": full.write,
    "concise": concise.write,
    "json": json_format.write,
    "sarif": sarif.write,
    "github": github.write,
}

# A statistics table replaces the findings; SARIF and workflow commands have no place for it.
_STATISTICS_FORMATS = ("full", "concise", "json")


def check_options(fmt: str, options: ReportOptions) -> None:
    """Reject format/option combinations before any work is done."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
    if options.statistics and fmt not in _STATISTICS_FORMATS:
        raise UsageError(f"--statistics works with --format {', '.join(_STATISTICS_FORMATS)}, not {fmt}")


def render(fmt: str, report: Report, options: ReportOptions, *, out: TextIO, err: TextIO) -> None:
    check_options(fmt, options)
    for result in report.results:
        if result.error:
            err.write(f"bnlint: error: {result.error}\n")  # the message names the file
    FORMATS[fmt](report, options, out, err)
