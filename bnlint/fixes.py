"""Fixes: apply text edits, check the result still parses, write atomically."""

from __future__ import annotations

import ast
import difflib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import BinaryIO

import libcst as cst
from libcst.metadata import CodeRange

from bnlint.diagnostics import Applicability, Diagnostic, Edit
from bnlint.positions import LineIndex


# A CST node and what replaces it: a node, or several (statements inserted before it).
Replacement = tuple[cst.CSTNode, cst.CSTNode | cst.FlattenSentinel]


class FixRefused(Exception):
    """A file's fixes failed a check: nothing is written to it (the message says why)."""


class FixMode(str, Enum):
    NONE = "none"
    SAFE = "safe"
    UNSAFE = "unsafe"

    def allows(self, applicability: Applicability) -> bool:
        if self is FixMode.NONE:
            return False
        return applicability is Applicability.SAFE or self is FixMode.UNSAFE


def rendered_edit(module: cst.Module, original: str, lines: LineIndex, replacements: Sequence[Replacement],
                  positions: Mapping[cst.CSTNode, CodeRange]) -> Edit | None:
    """The text edit that CST replacements make, rendered in place.

    A node rendered on its own loses the indentation of the blocks around it, so a whole
    statement is rendered with the replacement and the edit is the span that differs: the
    innermost simple statement line holding every replaced node (its text from the first
    token on is the same at any indentation), else the top-level statement holding them
    (top-level statements render exactly as written), else the module. Rendering only the
    innermost statement keeps many fixes in one class linear, not quadratic."""
    spans = [positions.get(old) for old, _ in replacements]
    if not spans or any(span is None for span in spans):
        return _differing_span(original, lines, 0, original, _replaced(module, replacements).code)
    first = min((span.start.line, span.start.column) for span in spans if span is not None)
    last = max((span.end.line, span.end.column) for span in spans if span is not None)
    line, top_level = _enclosing_statements(module, positions, first, last)
    in_place = None if line is None else _statement_line_texts(module, original, lines, line, replacements, positions)
    if in_place is not None:
        return _differing_span(original, lines, *in_place)
    if top_level is None:
        return _differing_span(original, lines, 0, original, _replaced(module, replacements).code)
    before = module.code_for_node(top_level)
    line_start = lines.starts[positions[top_level].start.line - 1]
    # The statement's text begins at or before its first syntactic line (comments above it).
    offset = original.rfind(before, 0, line_start + len(before))
    if offset < 0:
        return _differing_span(original, lines, 0, original, _replaced(module, replacements).code)
    replaced = _replaced(top_level, replacements)
    # A statement inserted before a top-level one replaces it with both.
    nodes = replaced.nodes if isinstance(replaced, cst.FlattenSentinel) else [replaced]
    after = "".join(module.code_for_node(node) for node in nodes)
    return _differing_span(original, lines, offset, before, after)


def _statement_line_texts(module: cst.Module, original: str, lines: LineIndex, statement: cst.SimpleStatementLine,
                          replacements: Sequence[Replacement],
                          positions: Mapping[cst.CSTNode, CodeRange]) -> tuple[int, str, str] | None:
    """Where a simple statement line's text starts (its first token: the indentation and
    the comment lines above it are not rendered), that text, and the text replacing it;
    None when the line cannot be rendered on its own."""
    start = positions[statement].start
    offset = lines.offset(start.line, start.column + 1)
    indentation = original[lines.starts[start.line - 1]: offset]
    before = module.code_for_node(statement.with_changes(leading_lines=()))
    if indentation.strip(" \t") or not original.startswith(before, offset):
        return None
    replaced = _replaced(statement, replacements)
    nodes = replaced.nodes if isinstance(replaced, cst.FlattenSentinel) else [replaced]
    if not all(isinstance(node, cst.SimpleStatementLine) for node in nodes):
        return None  # a compound statement's body would need the blocks' indentation
    if len(nodes) > 1 and (statement.leading_lines or any(node.leading_lines for node in nodes[:-1])):
        return None  # an inserted statement goes above the comment lines over this one
    # Statements inserted before this one come at its indentation.
    after = indentation.join(module.code_for_node(node.with_changes(leading_lines=())) for node in nodes)
    return offset, before, after


def _enclosing_statements(module: cst.Module, positions: Mapping[cst.CSTNode, CodeRange], first: tuple[int, int],
                          last: tuple[int, int]) -> tuple[cst.SimpleStatementLine | None, cst.CSTNode | None]:
    """The innermost simple statement line and the top-level statement whose spans hold
    the positions `first` to `last` (None when there is none)."""
    innermost: cst.SimpleStatementLine | None = None
    top_level: cst.CSTNode | None = None
    node: cst.CSTNode = module
    while True:
        inside = None
        # A block's statements are its body; `children` would visit the whole block first.
        children = node.body if isinstance(node, (cst.Module, cst.IndentedBlock)) else node.children
        for child in children:
            where = positions.get(child)
            if where is not None and (where.start.line, where.start.column) <= first \
                    and last <= (where.end.line, where.end.column):
                inside = child
                break
        if inside is None:
            return innermost, top_level
        if node is module:
            top_level = inside
        if isinstance(inside, cst.SimpleStatementLine):
            innermost = inside
        node = inside


def _replaced(node: cst.CSTNode, replacements: Sequence[Replacement]) -> cst.CSTNode | cst.FlattenSentinel:
    for old, new in replacements:
        if old is node:
            node = new
        elif isinstance(node, cst.FlattenSentinel):
            node = cst.FlattenSentinel([item.deep_replace(old, new) for item in node.nodes])
        else:
            node = node.deep_replace(old, new)
    return node


_ANCHOR_CONTEXT = 24  # characters on each side of an edit that must still read as when it was made


def _differing_span(original: str, lines: LineIndex, offset: int, before: str, after: str) -> Edit | None:
    """The edit turning `before` (found at `offset` in `original`) into `after`."""
    if before == after:
        return None
    start = _common_prefix(before, after)
    suffix = min(_common_prefix(before[::-1], after[::-1]), min(len(before), len(after)) - start)
    begin, end = offset + start, offset + len(before) - suffix
    line, column = lines.position(begin)
    end_line, end_column = lines.position(end)
    anchor = (original[max(0, begin - _ANCHOR_CONTEXT): begin], original[begin:end],
              original[end: end + _ANCHOR_CONTEXT])
    return Edit(line, column, end_line, end_column, after[start: len(after) - suffix], anchor)


def _common_prefix(a: str, b: str, chunk: int = 4096) -> int:
    """Length of the common prefix, comparing whole chunks first (at C speed)."""
    position = 0
    limit = min(len(a), len(b))
    while position + chunk <= limit and a[position: position + chunk] == b[position: position + chunk]:
        position += chunk
    while position < limit and a[position] == b[position]:
        position += 1
    return position


def applicable(diagnostics: Iterable[Diagnostic], mode: FixMode) -> list[Diagnostic]:
    return [d for d in diagnostics if d.fix is not None and mode.allows(d.fix.applicability)]


def apply_edits(text: str, diagnostics: Iterable[Diagnostic]) -> tuple[str, int]:
    """Apply the fixes' edits (all edits of a fix or none of them); a fix overlapping one
    already taken waits for the next round, and a fix whose text is no longer where its
    edits say is dropped. Returns the new text and the fixes applied."""
    lines = LineIndex(text)
    taken: list[tuple[int, int, str]] = []
    applied = 0
    for diagnostic in sorted(diagnostics, key=lambda d: d.sort_key):
        assert diagnostic.fix is not None
        spans = _spans(text, lines, diagnostic.fix.edits)
        # Overlapping spans conflict, and so do two insertions at one place (a finding
        # reported twice would otherwise insert its text twice).
        if spans is None or any((start < end_ and start_ < end) or start == start_ for start, end, _ in spans
                                for start_, end_, _ in taken):
            continue
        taken.extend(spans)
        applied += 1
    parts: list[str] = []
    position = 0
    for start, end, content in sorted(taken):
        parts += [text[position:start], content]
        position = end
    parts.append(text[position:])
    fixed = "".join(parts)
    if not unchanged_outside(text, fixed, taken):
        raise FixRefused("an edit changed text outside its span")
    if applied and not still_valid(fixed):
        raise FixRefused("the fixed code would not parse")
    return fixed, applied


def _spans(text: str, lines: LineIndex, edits: Iterable[Edit]) -> list[tuple[int, int, str]] | None:
    """The edits as (start, end, content) offsets, or None when one does not fit the text."""
    spans = []
    for edit in edits:
        try:
            start, end = lines.offset(edit.line, edit.column), lines.offset(edit.end_line, edit.end_column)
        except ValueError:
            return None
        if end < start:
            return None
        if edit.anchor is not None:
            lead, replaced, trail = edit.anchor
            if text[max(0, start - len(lead)): start] != lead or text[start:end] != replaced \
                    or text[end: end + len(trail)] != trail:
                return None
        spans.append((start, end, edit.content))
    return spans


def unchanged_outside(before: str, after: str, spans: Sequence[tuple[int, int, str]]) -> bool:
    """Whether `after` is `before` with exactly these (start, end, content) replacements:
    every character outside the spans is where it was."""
    position = shift = 0
    for start, end, content in sorted(spans):
        if before[position:start] != after[position + shift: start + shift]:
            return False
        if after[start + shift: start + shift + len(content)] != content:
            return False
        shift += len(content) - (end - start)
        position = end
    return before[position:] == after[position + shift:]


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


def write_in_place(path: Path, data: bytes, expected: bytes) -> str | None:
    """Write the fixed content through to the file (a symlink's target), keeping its
    inode: hard links, owner, group and mode stay as they were. Nothing is written to a
    read-only file or to one that changed since it was read. None when written, else
    why not (one line)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            return "not a regular file"
        if not mode & 0o222:
            return "the file is read-only"
        with open(path, "r+b") as handle:
            if handle.read() != expected:
                return "the file changed while bnlint was fixing it"
            try:
                _overwrite(handle, data)
            except OSError:
                _overwrite(handle, expected)  # a full disk must not leave half a file
                raise
    except OSError as error:
        return f"cannot write: {error.strerror or error}"
    return None


def _overwrite(handle: BinaryIO, data: bytes) -> None:
    handle.seek(0)
    handle.write(data)
    handle.truncate()
    handle.flush()
