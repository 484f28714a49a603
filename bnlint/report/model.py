"""What every reporter receives, and the small views of it they share."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from bnlint.diagnostics import Applicability, Diagnostic, FileResult
from bnlint.registry import RuleInfo


@dataclass(frozen=True)
class ReportOptions:
    unsafe_fixes: bool = False  # unsafe fixes count as fixable (as with ruff's --unsafe-fixes)
    statistics: bool = False  # a per-code table instead of the findings
    unused_noqa: bool = False  # list `# noqa` comments that suppressed nothing

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
