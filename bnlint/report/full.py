"""`full`: each finding with its source line underlined, why it matters and its fix (ruff-style).

    model.py:12:9: BN304 `Conv2d` feeds `BatchNorm2d`: its bias is cancelled
       |
    12 |         nn.Conv2d(3, 64, 3),
       |         ^^^^^^^^^^^^^^^^^^^
       |
       = why: batch norm subtracts the per-channel mean, which cancels a bias ...
       = fix: Set `bias=False` (unsafe)
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.text import Text

from bnlint.diagnostics import Diagnostic, Severity
from bnlint.registry import RuleInfo
from bnlint.report.model import Report, ReportOptions, line_text, location
from bnlint.report.summary import make_console, print_statistics, summary_lines

SEVERITY_STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "bold cyan"}
_GUTTER_STYLE = "bold blue"
_TAB_SIZE = 4


def write(report: Report, options: ReportOptions, out: TextIO, err: TextIO) -> None:
    console = make_console(out, options.color)
    if options.statistics:
        print_statistics(report, options, console)
    else:
        for result in report.results:
            for diagnostic in result.diagnostics:
                _print_diagnostic(console, diagnostic, line_text(result, diagnostic), report.rules.get(diagnostic.code))
    for line in summary_lines(report, options):
        console.print(Text(line, style="bold"))


def _print_diagnostic(console: Console, diagnostic: Diagnostic, source: str | None, rule: RuleInfo | None) -> None:
    style = SEVERITY_STYLES[diagnostic.severity]
    where = location(diagnostic.path, diagnostic.line, diagnostic.column, diagnostic.cell)
    console.print(Text.assemble((where, "bold"), ": ", (diagnostic.code, style), " ", diagnostic.message))
    number = str(diagnostic.line)
    bar = Text(" " * len(number) + " |", style=_GUTTER_STYLE)
    if source is not None:
        start, width = _underline(diagnostic, source)
        console.print(bar)
        console.print(Text.assemble((f"{number} |", _GUTTER_STYLE), " ", source.expandtabs(_TAB_SIZE)))
        console.print(Text.assemble(bar, " " * (start + 1), ("^" * width, style)))
        console.print(bar)
    notes = []
    if rule is not None:
        notes.append(f"why: {rule.summary}")
    if diagnostic.fix is not None:
        notes.append(f"fix: {diagnostic.fix.message} ({diagnostic.fix.applicability.value})")
    else:
        notes.append("fix: none available")
    for note in notes:
        console.print(Text.assemble(" " * len(number), (" = ", _GUTTER_STYLE), note))
    console.print()


def _underline(diagnostic: Diagnostic, source: str) -> tuple[int, int]:
    """Start and width of the caret run under `source`, in display columns (tabs expanded).

    A span that continues on later lines is underlined to the end of its first line."""
    start = diagnostic.column - 1
    end = diagnostic.end_column - 1 if diagnostic.end_line == diagnostic.line else len(source.rstrip())
    display_start = len(source[:start].expandtabs(_TAB_SIZE))
    display_end = len(source[:end].expandtabs(_TAB_SIZE))
    return display_start, max(display_end - display_start, 1)
