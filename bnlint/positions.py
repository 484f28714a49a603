"""The one position model of findings and fixes: LibCST's.

LibCST counts a line break as `\\r\\n`, `\\r` or `\\n` and nothing else (`str.splitlines()`
also breaks at form feeds, U+2028 and friends, which would shift every edit after them);
columns count code points. Lines and columns are 1-based here, end positions exclusive.
"""

from __future__ import annotations

import bisect
import re

LINE_BREAK = re.compile(r"\r\n?|\n")  # as libcst.metadata.position_provider.NEWLINE_RE


def split_lines(text: str) -> list[str]:
    """The text's lines without their breaks, as LibCST numbers them."""
    return LINE_BREAK.split(text)


class LineIndex:
    """Converts between (line, column) positions and offsets in one text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0, *(match.end() for match in LINE_BREAK.finditer(text))]

    def offset(self, line: int, column: int) -> int:
        """The offset of a position; ValueError when the position is not in the text."""
        if not 1 <= line <= len(self.starts) or column < 1:
            raise ValueError(f"no line {line}, column {column} in the text")
        offset = self.starts[line - 1] + column - 1
        if offset > self._line_end(line):
            raise ValueError(f"no column {column} on line {line}")
        return offset

    def position(self, offset: int) -> tuple[int, int]:
        """The (line, column) of an offset."""
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def line_text(self, line: int) -> str:
        return self.text[self.starts[line - 1]: self._line_end(line)]

    def _line_end(self, line: int) -> int:
        """Where the line's text ends (before its break)."""
        if line == len(self.starts):
            return len(self.text)
        end = self.starts[line] - 1
        if self.text[end] == "\n" and end > 0 and self.text[end - 1] == "\r":
            end -= 1
        return end


class CodeToText:
    """Positions in the code LibCST generates for a module, as positions in the text it
    parsed. They differ only where LibCST drops a character: a form feed before the
    indentation of a line inside a block, the last line break of a file of lone CRs."""

    def __init__(self, code: str, text: str) -> None:
        self.code = LineIndex(code)
        self.text = LineIndex(text)
        self.dropped = _dropped_characters(code, text)

    @property
    def exact(self) -> bool:
        """Whether every position can be carried over (else edits cannot be placed)."""
        return self.dropped is not None

    def position(self, line: int, column: int) -> tuple[int, int]:
        """The text position of a code position (the same when it cannot be carried over)."""
        if not self.dropped:
            return line, column
        offset = self.code.offset(line, column)
        for dropped in self.dropped:
            if dropped > offset:
                break
            offset += 1
        return self.text.position(offset)


def _dropped_characters(code: str, text: str) -> list[int] | None:
    """The offsets in `text` of the form feeds and carriage returns `code` lacks; None when
    the two differ otherwise."""
    if code == text:
        return []
    dropped = []
    position = 0
    for offset, character in enumerate(text):
        if position < len(code) and code[position] == character:
            position += 1
        elif character in "\x0c\r":
            dropped.append(offset)
        else:
            return None
    return dropped if position == len(code) else None
