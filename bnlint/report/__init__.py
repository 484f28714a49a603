"""Output formats: one module per format, registered once in `FORMATS`; one entry point (`render`).

Stream policy: a format's payload goes to `out` (stdout or --output-file); text meant for a
person goes to `err` wherever it would corrupt a machine-read payload:
- `full`: findings and summary, both on `out`;
- `concise`, `pylint`, `github`, `azure`: only finding lines (or commands) on `out`; the
  summary on `err`;
- `json`, `json-lines`, `sarif`, `gitlab`, `rdjson`, `junit`: the document alone.
Unused `# noqa` directives are BN001 findings (`--report-unused-noqa`) like any other.
Files that could not be read are reported on `err` in every format (and in SARIF's
`toolExecutionNotifications` and JUnit's `<error>`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from bnlint.errors import UsageError
from bnlint.report import azure, concise, full, github, gitlab, json_format, json_lines, junit, pylint, rdjson, sarif
from bnlint.report.model import Report, ReportOptions

__all__ = ["FORMATS", "Report", "ReportOptions", "check_options", "render"]

Writer = Callable[[Report, ReportOptions, TextIO, TextIO], None]

FORMATS: dict[str, Writer] = {
    "full": full.write,
    "concise": concise.write,
    "json": json_format.write,
    "json-lines": json_lines.write,
    "sarif": sarif.write,
    "github": github.write,
    "gitlab": gitlab.write,
    "azure": azure.write,
    "junit": junit.write,
    "pylint": pylint.write,
    "rdjson": rdjson.write,
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
