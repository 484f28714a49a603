"""What a run produces: findings with positions, severities and fixes.

Everything here is plain, picklable data: diagnostics cross process boundaries and are
stored in the result cache, so no CST nodes live in these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe; `--fail-on` compares ranks."""
        return {"info": 0, "warning": 1, "error": 2}[self.value]


class Applicability(str, Enum):
    SAFE = "safe"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class Edit:
    """Replace the text between two positions (1-based lines and columns, end exclusive)."""

    line: int
    column: int
    end_line: int
    end_column: int
    content: str
    # The text around and under the span when the edit was made (before, replaced, after):
    # a fix is applied only where the text still reads so (bnlint.fixes.apply_edits).
    anchor: tuple[str, str, str] | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "end_line": self.end_line,
                "end_column": self.end_column, "content": self.content}


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "applicability": self.applicability.value,
            "message": self.message,
            "edits": [edit.to_json() for edit in self.edits],
        }


@dataclass(frozen=True)
class Diagnostic:
    """One finding. `path` is as the user should see it (relative to the working directory
    when the file lies under it). `cell` is the 1-based notebook code cell, else None."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    code: str
    rule: str
    severity: Severity
    message: str
    fix: Fix | None = None
    cell: int | None = None
    # `bnlint verify`'s verdict: verdict, evidence, numbers, fix_verified (and the model checked).
    runtime: dict[str, Any] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "end_line": self.end_line,
            "end_column": self.end_column,
            "code": self.code,
            "rule": self.rule,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix.to_json() if self.fix else None,
        }
        if self.cell is not None:
            data["cell"] = self.cell
        if self.runtime is not None:
            data["runtime"] = self.runtime
        return data

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.column, self.code)


@dataclass(frozen=True)
class UnusedSuppression:
    """A `# noqa` comment that suppressed nothing (BN001, with --report-unused-noqa)."""

    path: str
    line: int
    column: int  # of the `#`
    end_column: int  # after the directive's last code (end exclusive)
    codes: tuple[str, ...] = field(default_factory=tuple)  # empty for a bare `# noqa`
    removal: Edit | None = None  # what drops the unused codes (or the directive), when that is clean


@dataclass(frozen=True)
class HelperEvidence:
    """What one file saw of a layer built in a module-level helper: the finding it would
    make at the helper, or None when a use it saw rules the finding out. `helper` and
    `index` (the layer's call among the helper's calls) identify the layer across files."""

    path: str
    helper: str
    index: int
    diagnostic: Diagnostic | None
    sufficient: bool = False  # the diagnostic stands on this file's evidence alone


@dataclass
class FileResult:
    """Everything the engine learned about one file."""

    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    helper_evidence: list[HelperEvidence] = field(default_factory=list)
    # The text of each reported line, keyed by (cell or 0, line), for the `full` format.
    source_lines: dict[tuple[int, int], str] = field(default_factory=dict)
    # Notebook findings: (cell, line, column) -> (line, column) in the .ipynb file itself,
    # for viewers of the raw file (code scanning, merge-request diffs).
    file_positions: dict[tuple[int, int, int], tuple[int, int]] = field(default_factory=dict)
    # A one-line message for files that could not be read at all (I/O, encoding).
    error: str | None = None
