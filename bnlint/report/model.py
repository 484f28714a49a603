"""What every reporter receives, and the small views of it they share."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from bnlint.diagnostics import Applicability, Diagnostic, FileResult
from bnlint.registry import RuleInfo


@dataclass(frozen=True)
class ReportOptions:
    unsafe_fixes: bool = False  # unsafe fixes count as fixable (as with ruff's --unsafe-fixes)
    statistics: bool = False  # a per-code table instead of the findings
    color: str = "auto"  # "auto" (on a terminal, unless NO_COLOR), "always" or "never"

    def would_fix(self, diagnostic: Diagnostic) -> bool:
        """Whether `--fix` with these flags applies the diagnostic's fix."""
        if diagnostic.fix is None:
            return False
        return diagnostic.fix.applicability is Applicability.SAFE or self.unsafe_fixes


@dataclass(frozen=True)
class Report:
    results: Sequence[FileResult]  # sorted by path, each file's diagnostics sorted
    rules: Mapping[str, RuleInfo]  # the catalogue, by code
    files_checked: int
    fixed_count: int | None = None  # fixes applied by --fix; None when --fix was not given

    def diagnostics(self) -> Iterator[Diagnostic]:
        for result in self.results:
            yield from result.diagnostics

    def placed(self) -> Iterator[tuple[Diagnostic, Placement]]:
        """Each finding with where it lies in the file a viewer opens (see `placement`)."""
        for result in self.results:
            for diagnostic in result.diagnostics:
                yield diagnostic, placement(result, diagnostic)


@dataclass(frozen=True)
class Placement:
    """A finding placed in the file itself, for formats whose consumers open the raw file
    (code scanning, merge-request diffs, CI logs). For a notebook finding that is a line of
    the `.ipynb` JSON (None where it could not be found; then the whole file), and the cell
    position goes in front of the message."""

    line: int | None
    column: int | None
    end_line: int | None
    end_column: int | None
    message: str


def placement(result: FileResult, diagnostic: Diagnostic) -> Placement:
    if diagnostic.cell is None:
        return Placement(diagnostic.line, diagnostic.column, diagnostic.end_line, diagnostic.end_column,
                         diagnostic.message)
    message = f"cell {diagnostic.cell}, line {diagnostic.line}, column {diagnostic.column}: {diagnostic.message}"
    line, column = result.file_positions.get((diagnostic.cell, diagnostic.line, diagnostic.column), (None, None))
    return Placement(line, column, None, None, message)


def fingerprints(result: FileResult) -> list[str]:
    """A stable identity for each finding of a file, in order, that survives code moving
    above it: code + path + the whitespace-normalised source line + the occurrence index
    of that triple in the file (SARIF partialFingerprints, GitLab fingerprints)."""
    occurrences: Counter[str] = Counter()
    found = []
    for diagnostic in result.diagnostics:
        text = line_text(result, diagnostic)
        anchor = " ".join(text.split()) if text is not None else diagnostic.message
        key = "\0".join((diagnostic.code, PurePath(diagnostic.path).as_posix(), anchor))
        occurrences[key] += 1
        found.append(hashlib.sha256(f"{key}\0{occurrences[key]}".encode()).hexdigest()[:32])
    return found


def line_text(result: FileResult, diagnostic: Diagnostic) -> str | None:
    """The source text of the diagnostic's first line, when the engine kept it."""
    text = result.source_lines.get((diagnostic.cell or 0, diagnostic.line))
    return text.rstrip("\r\n") if text is not None else None


def location(path: str, line: int, column: int, cell: int | None = None) -> str:
    """`path:line:col`, or `nb.ipynb:cell 3:line:col` for a notebook cell (as ruff writes it).

    Lines in a notebook are relative to the cell; the `path` group of the concise regex
    `^(.+):(\\d+):(\\d+): ...` still matches, since it is greedy.
    """
    where = f"{path}:cell {cell}" if cell is not None else path
    return f"{where}:{line}:{column}"
