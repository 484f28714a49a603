"""What reaches LibCST: CPython compiles a text first, and its nesting is bounded.

CPython's compiler rejects in milliseconds what LibCST's parser takes seconds, gigabytes
or a native abort over (a 20,000-term sum, 1,000 nested calls), and rejects code that
parses but cannot run (a repeated keyword argument, `return` outside a function, a NUL
byte): that is a syntax error (BN000). Code CPython accepts can still nest deeper than
LibCST parses in reasonable time (its parser is quadratic in the depth of a chain such as
`a + a + ...`), and big files cost it gigabytes: such a file is not analysed, and the run
says so.
"""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MAX_NESTING = 1000  # syntax-tree depth; LibCST parses a 1,000-deep chain in a fifth of a second
# LibCST needs about 2 KB of memory per token and holds the GIL while it parses (not even
# SIGTERM is handled meanwhile): a 400 kB list literal took 8 s and 785 MB.
MAX_CHARACTERS = 1_000_000


@dataclass(frozen=True)
class CompileError:
    message: str
    line: int
    column: int
    end_line: int
    end_column: int


def compile_error(text: str, path: str) -> CompileError | None:
    """Why CPython refuses to compile the text, or None when it compiles."""
    try:
        with _quietly():
            compile(text, path, "exec", dont_inherit=True)  # bytecode: cheaper than building AST objects
    except SyntaxError as error:
        line = error.lineno or 1
        column = error.offset or 1
        return CompileError(f"cannot parse: {error.msg}", line, column, error.end_lineno or line,
                            error.end_offset or column + 1)
    except ValueError as error:  # null bytes
        return CompileError(f"cannot parse: {error}", 1, 1, 1, 1)
    except (RecursionError, MemoryError):
        return CompileError("cannot parse: nested too deeply for Python's compiler", 1, 1, 1, 1)
    return None


@functools.lru_cache(maxsize=8)  # the linted file is checked before parsing and when parsed
def too_complex(text: str) -> str | None:
    """Why LibCST should not be given this text, or None."""
    if len(text) > MAX_CHARACTERS:
        return f"over {MAX_CHARACTERS:,} characters"
    try:
        with _quietly():
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "Python's compiler cannot read it"
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"code nested more than {MAX_NESTING} deep"
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return None


@contextmanager
def _quietly() -> Iterator[None]:
    """Invalid escape sequences and the like are not ours to report."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
