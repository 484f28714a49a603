"""Fixes: apply text edits, check the result still parses, write atomically."""

from __future__ import annotations

import ast
import difflib
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path

import libcst as cst
from libcst.metadata import CodeRange

from bnlint.diagnostics import Applicability, Diagnostic, Edit


# A CST node and what replaces it: a node, or several (statements inserted before it).
Replacement = tuple[cst.CSTNode, cst.CSTNode | cst.FlattenSentinel]


class FixMode(str, Enum):
    NONE = "none"
    SAFE = "safe"
    UNSAFE = "unsafe"

    def allows(self, applicability: Applicability) -> bool:
        if self is FixMode.NONE:
            return False
        return applicability is Applicability.SAFE or self is FixMode.UNSAFE


def rendered_edit(module: cst.Module, original: str, replacements: Sequence[Replacement],
                  positions: Mapping[cst.CSTNode, CodeRange]) -> Edit | None:
    """The text edit that CST replacements make, rendered in place: a node rendered on its
    own loses the indentation of the blocks around it, so the top-level statement holding
    it is rendered with the replacement (top-level statements render exactly as written,
    at no indentation) and the edit is the span that differs."""
    statement = _top_level_statement(module, replacements, positions)
    if statement is None:
        return _differing_span(original, 0, original, _replaced(module, replacements).code)
    before = module.code_for_node(statement)
    start_line = positions[statement].start.line
    line_start = _offset_of_line(original, start_line)
    # The statement's text begins at or before its first syntactic line (comments above it).
    offset = original.rfind(before, 0, line_start + len(before))
    if offset < 0:
        return _differing_span(original, 0, original, _replaced(module, replacements).code)
    replaced = _replaced(statement, replacements)
    # A statement inserted before a top-level one replaces it with both.
    nodes = replaced.nodes if isinstance(replaced, cst.FlattenSentinel) else [replaced]
    after = "".join(module.code_for_node(node) for node in nodes)
    return _differing_span(original, offset, before, after)


def _replaced(node: cst.CSTNode, replacements: Sequence[Replacement]) -> cst.CSTNode | cst.FlattenSentinel:
    for old, new in replacements:
        if old is node:
            node = new
        elif isinstance(node, cst.FlattenSentinel):
            node = cst.FlattenSentinel([item.deep_replace(old, new) for item in node.nodes])
        else:
            node = node.deep_replace(old, new)
    return node


def _top_level_statement(module: cst.Module, replacements: Sequence[Replacement],
                         positions: Mapping[cst.CSTNode, CodeRange]) -> cst.CSTNode | None:
    """The one top-level statement whose lines hold every replaced node, if any."""
    spans = [positions.get(old) for old, _ in replacements]
    if any(span is None for span in spans):
        return None
    first = min(span.start.line for span in spans if span is not None)
    last = max(span.end.line for span in spans if span is not None)
    for statement in module.body:
        where = positions.get(statement)
        if where is not None and where.start.line <= first and last <= where.end.line:
            return statement
    return None


def _differing_span(original: str, offset: int, before: str, after: str) -> Edit | None:
    """The edit turning `before` (found at `offset` in `original`) into `after`."""
    if before == after:
        return None
    start = _common_prefix(before, after)
    suffix = min(_common_prefix(before[::-1], after[::-1]), min(len(before), len(after)) - start)
    line, column = _line_column(original, offset + start)
    end_line, end_column = _line_column(original, offset + len(before) - suffix)
    return Edit(line, column, end_line, end_column, after[start: len(after) - suffix])


def _offset_of_line(text: str, line: int) -> int:
    offset = 0
    for _ in range(line - 1):
        offset = text.index("\n", offset) + 1
    return offset


def _common_prefix(a: str, b: str, chunk: int = 4096) -> int:
    """Length of the common prefix, comparing whole chunks first (at C speed)."""
    position = 0
    limit = min(len(a), len(b))
    while position + chunk <= limit and a[position: position + chunk] == b[position: position + chunk]:
        position += chunk
    while position < limit and a[position] == b[position]:
        position += 1
    return position


def _line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of an offset."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def applicable(diagnostics: Iterable[Diagnostic], mode: FixMode) -> list[Diagnostic]:
    return [d for d in diagnostics if d.fix is not None and mode.allows(d.fix.applicability)]


def apply_edits(text: str, diagnostics: Iterable[Diagnostic]) -> tuple[str, int]:
    """Apply the fixes' edits (all edits of a fix or none of them); a fix overlapping one
    already taken waits for the next round. Returns the new text and the fixes applied."""
    line_starts = [0]
    for line in text.splitlines(keepends=True):
        line_starts.append(line_starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        return line_starts[line - 1] + column - 1

    taken: list[tuple[int, int, str]] = []
    applied = 0
    for diagnostic in sorted(diagnostics, key=lambda d: d.sort_key):
        assert diagnostic.fix is not None
        spans = [(offset(e.line, e.column), offset(e.end_line, e.end_column), e.content) for e in diagnostic.fix.edits]
        # Overlapping spans conflict, and so do two insertions at one place (a finding
        # reported twice would otherwise insert its text twice).
        if any((start < end_ and start_ < end) or start == start_ for start, end, _ in spans
               for start_, end_, _ in taken):
            continue
        taken.extend(spans)
        applied += 1
    for start, end, content in sorted(taken, reverse=True):
        text = text[:start] + content + text[end:]
    return text, applied


def still_valid(text: str) -> bool:
    """A fixed source must still be Python (and LibCST must still read it)."""
    try:
        ast.parse(text)
        cst.parse_module(text)
    except (SyntaxError, ValueError, cst.ParserSyntaxError):
        return False
    return True


def unified_diff(path: str, before: str, after: str) -> str:
    old, new = (path, path) if path.startswith("/") else (f"a/{path}", f"b/{path}")
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), old, new))


def write_atomically(path: Path, data: bytes, expected: bytes) -> bool:
    """Replace the file's content unless it changed since we read it (then leave it alone).
    A temporary file in the same folder is renamed over it, keeping the original mode."""
    try:
        if path.read_bytes() != expected:
            return False
        mode = path.stat().st_mode
    except OSError:
        return False
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".bnlint", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, mode & 0o7777)
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)
        return False
    return True
