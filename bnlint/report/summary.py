"""Text for people, shared by the formats: the closing summary and the tables (statistics,
`bnlint rules`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bnlint.diagnostics import Severity
from bnlint.report.model import Report, ReportOptions

# Wide enough that rich never wraps a line when the output is not a terminal (a file, a pipe).
_PIPE_WIDTH = 10_000


def make_console(stream: TextIO, color: str = "auto") -> Console:
    """A rich console for `stream`: with "auto", colour only on a terminal (rich honours
    NO_COLOR and FORCE_COLOR); "always" and "never" (`--color`) decide regardless."""
    terminal = stream.isatty() if color == "auto" else color == "always"
    return Console(
        file=stream,
        soft_wrap=True,
        highlight=False,
        emoji=False,
        width=None if terminal else _PIPE_WIDTH,
        force_terminal=terminal,
        no_color=color == "never" or None,
        color_system="auto" if color != "never" else None,
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 or noun == "info" else f"{count} {noun}s"


def summary_lines(report: Report, options: ReportOptions) -> list[str]:
    """`Fixed N issues.` (after --fix), then `Found ...` or `All checks passed (...)`."""
    lines = []
    if report.fixed_count is not None:
        lines.append(f"Fixed {plural(report.fixed_count, 'issue')}.")
    diagnostics = list(report.diagnostics())
    files = plural(report.files_checked, "file")
    unreadable = sum(result.error is not None for result in report.results)
    if not diagnostics and unreadable:
        lines.append(f"No findings in {files}, but {plural(unreadable, 'file')} could not be checked.")
        return lines
    if not diagnostics:
        lines.append(f"All checks passed ({files}).")
        return lines
    severities = Counter(diagnostic.severity for diagnostic in diagnostics)
    counts = ", ".join(plural(severities[severity], severity.value) for severity in Severity)
    fixable = sum(options.would_fix(diagnostic) for diagnostic in diagnostics)
    hidden = sum(diagnostic.fix is not None for diagnostic in diagnostics) - fixable
    hints = []
    if fixable:
        hints.append(f"{fixable} fixable with --fix")
    if hidden:
        hints.append(f"{hidden} more with --unsafe-fixes" if fixable else f"{hidden} fixable with --fix --unsafe-fixes")
    suffix = f" ({'; '.join(hints)})" if hints else ""
    lines.append(f"Found {counts} in {files}{suffix}.")
    return lines


def statistics(report: Report, options: ReportOptions) -> list[dict[str, Any]]:
    """Findings per code, most frequent first: count, code, rule name, how many --fix fixes."""
    counts = Counter(diagnostic.code for diagnostic in report.diagnostics())
    fixable = Counter(diagnostic.code for diagnostic in report.diagnostics() if options.would_fix(diagnostic))
    names = {diagnostic.code: diagnostic.rule for diagnostic in report.diagnostics()}
    ordered = sorted(counts, key=lambda code: (-counts[code], code))
    return [{"count": counts[code], "code": code, "rule": names[code], "fixable": fixable[code]} for code in ordered]


def print_statistics(report: Report, options: ReportOptions, console: Console) -> None:
    rows = statistics(report, options)
    if rows:
        cells = [(str(row["count"]), row["code"], row["rule"], str(row["fixable"])) for row in rows]
        print_table(console, ("Count", "Code", "Rule", "Fixable"), cells, right_aligned=(0, 3))


def print_table(console: Console, headers: Sequence[str], rows: Sequence[Sequence[str | Text]],
                right_aligned: Sequence[int] = ()) -> None:
    """A box-drawn table on a terminal; plain aligned columns otherwise (files, pipes, grep)."""
    if console.is_terminal:
        table = Table(*headers)
        for index in right_aligned:
            table.columns[index].justify = "right"
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(line[column]) for line in cells) for column in range(len(headers))]
    for line in cells:
        padded = [cell.rjust(width) if index in right_aligned else cell.ljust(width)
                  for index, (cell, width) in enumerate(zip(line, widths, strict=True))]
        console.file.write("  ".join(padded).rstrip() + "\n")


def write_lines(lines: list[str], stream: TextIO) -> None:
    for line in lines:
        stream.write(line + "\n")
