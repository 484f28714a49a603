"""Which files a run lints, how they are read, and how notebooks map to lintable text.

Discovery skips the usual tool and environment directories, what `.gitignore` files say
and what `exclude` says. A path named on the command line is linted even when a default
skip or a `.gitignore` would leave it out (you asked for it), but `exclude` still applies,
so hooks that pass every changed file (pre-commit) keep honouring the project's excludes.

A notebook is linted as one text: its Python code cells joined, separated by a boundary
comment line, with IPython magics turned into placeholder lines of the same count.
`SourceFile.locate` maps positions back to cells, `NotebookMap.file_position` to the line of
the `.ipynb` file that stores them (what a viewer of the raw file shows), and
`SourceFile.render` writes an edited text back into the notebook JSON.
"""

from __future__ import annotations

import bisect
import codecs
import io
import json
import os
import re
import stat
import tokenize
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pathspec

from bnlint.errors import SourceError, UsageError
from bnlint.paths import display_path

if TYPE_CHECKING:
    from bnlint.config import Config

PYTHON_SUFFIXES = (".py", ".ipynb")
SKIPPED_DIRECTORIES = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "build", "dist", "node_modules", ".tox", ".nox",
        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".bnlint_cache", "site-packages",
        ".ipynb_checkpoints",  # Jupyter's autosaved copies would repeat every notebook finding
    }
)  # fmt: skip
VIRTUALENV_MARKER = "pyvenv.cfg"  # any directory holding one is a virtualenv (`env/`, `.env3/`, ...)


def discover(paths: Sequence[str], config: Config, problems: list[tuple[str, str]] | None = None) -> list[Path]:
    """The .py and .ipynb files under `paths` (default "."), absolute, sorted, without duplicates.
    Directories that cannot be listed are added to `problems` as (path, why)."""
    walker = _Walker(config, problems if problems is not None else [])
    found: dict[str, None] = {}
    for given in paths or ["."]:
        if not os.path.lexists(given):
            raise UsageError(f"path not found: {given}")
        for path in walker.files_under(os.path.abspath(given)):
            found.setdefault(path)
    return [Path(path) for path in sorted(found)]


class _Walker:
    """Walks directories, pruning skipped ones before descending into them."""

    def __init__(self, config: Config, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        self.root = os.path.abspath(config.root)
        self.exclude = pathspec.GitIgnoreSpec.from_lines(config.exclude) if config.exclude else None
        self.respect_gitignore = config.respect_gitignore

    def files_under(self, given: str) -> Iterator[str]:
        is_dir = os.path.isdir(given)
        if self._excluded_by_config(given, is_dir):
            return
        if not is_dir:
            yield given  # an explicit file is linted whatever its suffix
            return
        ignores = self._ancestor_gitignores(given) if self.respect_gitignore else ()
        if _git_ignored(given, True, ignores):
            ignores = ()  # a directory named explicitly is linted; its own ignore files still count
        stack: list[tuple[str, tuple[_IgnoreFile, ...]]] = [(given, ignores)]
        while stack:
            directory, ignores = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except OSError as error:
                self.problems.append((directory, f"cannot read the directory: {error.strerror or error}"))
                continue
            names = {entry.name for entry in entries}
            if directory != given and VIRTUALENV_MARKER in names:
                continue
            if self.respect_gitignore and ".gitignore" in names:
                nested = _IgnoreFile.read(directory, ".gitignore")
                ignores = (*ignores, nested) if nested else ignores
            for entry in entries:
                is_dir = entry.is_dir(follow_symlinks=False)
                if is_dir and _skipped_by_default(entry.name):
                    continue
                if not is_dir and not entry.name.endswith(PYTHON_SUFFIXES):
                    continue
                if self._excluded_by_config(entry.path, is_dir) or _git_ignored(entry.path, is_dir, ignores):
                    continue
                if is_dir:
                    stack.append((entry.path, ignores))
                elif _is_file(entry):
                    yield entry.path

    def _excluded_by_config(self, path: str, is_dir: bool) -> bool:
        if self.exclude is None or not _is_below(path, self.root):
            return False
        return self.exclude.match_file(_relative(path, self.root, is_dir))

    def _ancestor_gitignores(self, directory: str) -> tuple[_IgnoreFile, ...]:
        """The ignore files above `directory` that apply inside it, outermost first.

        They reach up to the enclosing git work tree (whose `.git/info/exclude` counts too);
        outside any repository, up to the configuration root when `directory` is under it.
        """
        top = _enclosing_work_tree(directory)
        if top is None:
            if not (directory == self.root or _is_below(directory, self.root)):
                return ()
            top = self.root
        ancestors = []
        current = directory
        while current != top:
            current = os.path.dirname(current)
            ancestors.append(current)
        files = [_IgnoreFile.read(top, os.path.join(".git", "info", "exclude"))]
        files += [_IgnoreFile.read(ancestor, ".gitignore") for ancestor in reversed(ancestors)]
        return tuple(ignore for ignore in files if ignore is not None)


def _enclosing_work_tree(directory: str) -> str | None:
    current = directory
    while not os.path.exists(os.path.join(current, ".git")):
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    return current


@dataclass(frozen=True)
class _IgnoreFile:
    base: str
    spec: pathspec.GitIgnoreSpec
    # All patterns in one regex: most paths match none, and one search is much cheaper
    # than asking each pattern; only paths that match something go through pathspec.
    any_pattern: re.Pattern[str]

    @classmethod
    def read(cls, base: str, name: str) -> _IgnoreFile | None:
        """The ignore file `base/name`, or None when it is absent, unreadable or empty."""
        try:
            with open(os.path.join(base, name), encoding="utf-8", errors="replace") as handle:
                spec = pathspec.GitIgnoreSpec.from_lines(handle)
        except (OSError, ValueError):
            return None  # git does not stop on an ignore file it cannot use either
        regexes = [pattern.regex.pattern for pattern in spec.patterns if getattr(pattern, "regex", None) is not None]
        if not regexes:
            return None
        return cls(base, spec, _any_of(regexes))

    def decides(self, relative: str) -> bool | None:
        """True: ignored, False: re-included by a `!pattern`, None: no pattern matches."""
        if not self.any_pattern.search(relative):
            return None
        return self.spec.check_file(relative).include


def _any_of(regexes: list[str]) -> re.Pattern[str]:
    """One regex matching what any of pathspec's pattern regexes matches."""
    # Patterns without a slash all start "match in any directory"; sharing that prefix
    # keeps the alternation from re-scanning the path once per pattern.
    anywhere = "^(?:.+/)?"
    floating = [regex[len(anywhere) :] for regex in regexes if regex.startswith(anywhere)]
    anchored = [regex for regex in regexes if not regex.startswith(anywhere)]
    branches = [f"{anywhere}(?:{'|'.join(floating)})"] if floating else []
    branches += [f"(?:{regex})" for regex in anchored]
    return re.compile("|".join(branches).replace("(?P<ps_d>", "(?:"))


def _git_ignored(path: str, is_dir: bool, ignores: tuple[_IgnoreFile, ...]) -> bool:
    # The deepest ignore file with a matching pattern decides, as in git.
    for ignore in reversed(ignores):
        if _is_below(path, ignore.base):
            decision = ignore.decides(_relative(path, ignore.base, is_dir))
            if decision is not None:
                return decision
    return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    """A file to lint: a regular file, or a link that cannot be followed (a loop), which
    reading then reports. FIFOs, devices and dangling links in a tree are passed over."""
    try:
        return entry.is_file()
    except OSError:
        return True


def _skipped_by_default(name: str) -> bool:
    return name in SKIPPED_DIRECTORIES or name.endswith(".egg-info")


def _is_below(path: str, base: str) -> bool:
    return path.startswith(base.rstrip(os.sep) + os.sep)


def _relative(path: str, base: str, is_dir: bool) -> str:
    """`path` (an absolute path below `base`) relative to it, as pathspec expects."""
    relative = path[len(base.rstrip(os.sep)) + 1 :].replace(os.sep, "/")
    return relative + "/" if is_dir else relative


# --- reading ---------------------------------------------------------------------------


@dataclass
class SourceFile:
    path: Path
    display_path: str
    text: str  # what is linted: the file's text, or a notebook's code cells joined
    notebook: NotebookMap | None = None
    encoding: str = "utf-8"  # the codec to write `render()`'s result back with (keeps a BOM)

    def locate(self, line: int, column: int) -> tuple[int, int, int | None]:
        """A position in `text` as the user sees it: (line, column, code cell or None)."""
        if self.notebook is None:
            return line, column, None
        return self.notebook.locate(line, column)

    def render(self, new_text: str) -> str:
        """What to write back to disk for an edited `text`."""
        if self.notebook is None:
            return new_text
        return self.notebook.render(new_text)

    def to_bytes(self, new_text: str) -> bytes:
        """`render(new_text)` encoded like the original file (encoding, BOM, line endings)."""
        return self.render(new_text).encode(self.encoding)


MAX_FILE_BYTES = 8 * 1024 * 1024  # bigger "source files" are generated data, not code to lint


def read_bytes(path: Path) -> bytes:
    """The content of a regular file of at most MAX_FILE_BYTES; SourceError otherwise (a
    FIFO would block for ever, a link to /dev/zero never ends)."""
    shown = display_path(path)
    try:
        with open(path, "rb", opener=_open_without_blocking) as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise SourceError(f"{shown}: not a regular file")
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise SourceError(f"{shown}: cannot read: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SourceError(f"{shown}: too large to lint (over {MAX_FILE_BYTES // (1024 * 1024)} MiB)")
    return data


def _open_without_blocking(path: str, flags: int) -> int:
    # Opening a FIFO blocks until a writer comes; O_NONBLOCK returns at once (and does
    # not change how regular files read).
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def read_source(path: Path, data: bytes | None = None) -> SourceFile:
    """Decode a file (read it unless `data` is given); SourceError with one line when that
    is impossible."""
    shown = display_path(path)
    if data is None:
        data = read_bytes(path)
    if path.suffix == ".ipynb":
        encoding = "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
        notebook = NotebookMap.parse(_decode(data, encoding, shown), shown)
        return SourceFile(path, shown, notebook.text, notebook, encoding)
    try:
        encoding = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
    except SyntaxError as error:  # undecodable first lines, an unknown codec, a cookie contradicting a BOM
        _decode(data, "utf-8", shown)  # names the offending byte when the text is not UTF-8
        raise SourceError(f"{shown}: {error.msg}") from None
    return SourceFile(path, shown, _decode(data, encoding, shown), encoding=encoding)


def _decode(data: bytes, encoding: str, shown: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        name = "UTF-8" if codecs.lookup(encoding).name in ("utf-8", "utf-8-sig") else encoding
        byte = error.object[error.start]
        raise SourceError(f"{shown}: not valid {name} (byte 0x{byte:02x} at offset {error.start})") from None


# --- notebooks -------------------------------------------------------------------------

# Jupytext's cell marker, so the joined text reads naturally; it never counts as a directive.
_CELL_BOUNDARY = "# %% bnlint cell {}"
_CELL_BOUNDARY_LINE = re.compile(r"^# %% bnlint cell \d+\n", re.M)
_MAGIC_PLACEHOLDER = "# bnlint-magic"
# `%time x`, `%%time`, `!ls`, `?obj`, `x = !ls`, `x = %env`, `obj?`, `obj??`. An escape must
# touch its name, so black's continuation lines (`    % args`, `    != b`) are not magics.
_LINE_MAGIC = re.compile(r"\s*(?:%%?\w|![^\s=]|\?|[\w.]+\s*=\s*(?:%\w|![^\s=])|[\w.]+\?\??\s*$)")


@dataclass(frozen=True)
class _Cell:
    index: int  # position in the notebook's `cells` array
    ordinal: int  # 1-based among code cells, as reported
    first_line: int  # where the cell starts in the linted text
    source: str  # the original source, joined
    magics: tuple[str, ...]  # original lines replaced by placeholders, in order
    # Where each source line starts in the notebook file (line, column), when it was found.
    file_starts: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class NotebookMap:
    """How a notebook's code cells were joined into the linted text, and how to undo it."""

    raw: str  # the notebook file as read
    text: str  # the linted text
    cells: tuple[_Cell, ...] = ()

    @classmethod
    def parse(cls, raw: str, shown: str) -> NotebookMap:
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as error:
            position = f"line {error.lineno}, column {error.colno}"
            raise SourceError(f"{shown}: invalid notebook JSON: {error.msg} ({position})") from None
        except RecursionError:
            raise SourceError(f"{shown}: invalid notebook JSON: nested too deeply") from None
        if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
            raise SourceError(f"{shown}: not a Jupyter notebook (no 'cells' array)")
        for index, cell in enumerate(document["cells"]):
            if not isinstance(cell, dict) or not isinstance(cell.get("cell_type"), str):
                raise SourceError(f"{shown}: not a valid notebook (cell {index + 1} is not a cell object)")
        if not _is_python(document.get("metadata")):
            return cls(raw, "")
        parts: list[str] = []
        cells: list[_Cell] = []
        line = 1
        ordinal = 0
        finder = _SourceFinder(raw)
        for index, cell in enumerate(document["cells"]):
            key_found = finder.next_source_key()
            if cell["cell_type"] != "code":
                continue
            ordinal += 1
            if not _is_python(cell.get("metadata"), cell_level=True):
                continue
            source = _joined_source(cell.get("source", ""), shown, index)
            lines, magics = _mask_magics(source)
            if cells:
                parts.append(_CELL_BOUNDARY.format(ordinal) + "\n")
                line += 1
            starts = finder.line_starts(cell.get("source", "")) if key_found else ()
            cells.append(_Cell(index, ordinal, line, source, tuple(magics), starts))
            parts.extend(text + "\n" for text in lines)
            line += len(lines)
        return cls(raw, "".join(parts), tuple(cells))

    def locate(self, line: int, column: int) -> tuple[int, int, int | None]:
        if not self.cells:
            return line, column, None
        position = max(bisect.bisect_right([cell.first_line for cell in self.cells], line) - 1, 0)
        cell = self.cells[position]
        return line - cell.first_line + 1, column, cell.ordinal

    def text_line(self, cell: int, line: int) -> int:
        """Line `line` of code cell `cell` (as reported) → its line in `text`; `locate`'s inverse."""
        return next(c.first_line for c in self.cells if c.ordinal == cell) + line - 1

    def file_position(self, line: int, column: int) -> tuple[int, int] | None:
        """Where a position of the linted text lies in the notebook file, or None."""
        if not self.cells:
            return None
        position = max(bisect.bisect_right([cell.first_line for cell in self.cells], line) - 1, 0)
        cell = self.cells[position]
        index = line - cell.first_line
        if not 0 <= index < len(cell.file_starts):
            return None
        file_line, file_column = cell.file_starts[index]
        prefix = cell.source.split("\n")[index][: column - 1]
        return file_line, file_column + len(_json_string(prefix, _ascii_only(self.raw)))

    def render(self, new_text: str) -> str:
        if new_text == self.text:
            return self.raw
        parts = _CELL_BOUNDARY_LINE.split(new_text) if self.cells else []
        if len(parts) != len(self.cells):
            raise SourceError("the edited notebook text no longer matches its cells")
        document = json.loads(self.raw)
        for cell, part in zip(self.cells, parts):
            source = _unmask_magics(part, cell.magics)
            if not cell.source.endswith("\n") and source.endswith("\n"):
                source = source[:-1]  # Jupyter stores most cells without a final newline
            if source != cell.source:
                stored = document["cells"][cell.index]
                stored["source"] = source.splitlines(keepends=True) if isinstance(stored["source"], list) else source
        layout = _json_layout(self.raw)
        rendered = json.dumps(document, **layout)
        return rendered + "\n" if self.raw.endswith("\n") else rendered


def notebook_cells(text: str) -> list[tuple[int, str]]:
    """A notebook's linted text split back into its code cells: (first line in `text`, source)."""
    cells: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if not cells or _CELL_BOUNDARY_LINE.match(line):
            cells.append((number, ""))
        cells[-1] = (cells[-1][0], cells[-1][1] + line)
    return cells


class _SourceFinder:
    """Finds the cells' `source` values in the raw notebook text, in order. JSON offers no
    positions, so each cell's `"source":` key is searched after the previous one, and its
    lines (array elements, or one string) after the key."""

    _KEY = re.compile(r'(?<!\\)"source"\s*:\s*')

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.offset = 0
        self.ascii_only = _ascii_only(raw)

    def next_source_key(self) -> bool:
        match = self._KEY.search(self.raw, self.offset)
        if match is None:
            self.offset = len(self.raw)
            return False
        self.offset = match.end()
        return True

    def line_starts(self, source: Any) -> tuple[tuple[int, int], ...]:
        """(line, column) in the file of the first character of each source line."""
        elements = source if isinstance(source, list) else [source]
        if not all(isinstance(element, str) for element in elements):
            return ()
        starts: list[tuple[int, int]] = []
        for element in elements:
            quoted = '"' + _json_string(element, self.ascii_only) + '"'
            found = self.raw.find(quoted, self.offset)
            if found < 0:
                return ()
            line = self.raw.count("\n", 0, found) + 1
            column = found - (self.raw.rfind("\n", 0, found) + 1) + 2  # 1-based, after the quote
            # One string holds several lines: each starts after the escaped text before it.
            offset = 0
            for text in element.split("\n")[: element.count("\n") + (not element.endswith("\n"))]:
                starts.append((line, column + offset))
                offset += len(_json_string(text + "\n", self.ascii_only))
            self.offset = found + len(quoted)
        return tuple(starts)


def _json_string(text: str, ascii_only: bool) -> str:
    """`text` as it is written inside a JSON string, without the quotes."""
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def _is_python(metadata: Any, cell_level: bool = False) -> bool:
    """False only when metadata names a language other than Python."""
    if not isinstance(metadata, dict):
        return True
    if cell_level:
        language = (metadata.get("vscode") or {}).get("languageId")
    else:
        kernel_language = (metadata.get("kernelspec") or {}).get("language")
        language = kernel_language or (metadata.get("language_info") or {}).get("name")
    return not isinstance(language, str) or language.lower() == "python"


def _joined_source(source: Any, shown: str, index: int) -> str:
    if isinstance(source, str):
        return source
    if isinstance(source, list) and all(isinstance(line, str) for line in source):
        return "".join(source)
    raise SourceError(f"{shown}: not a valid notebook (cell {index + 1} has a malformed 'source')")


def _mask_magics(source: str) -> tuple[list[str], list[str]]:
    """The cell's lines with IPython syntax replaced by placeholders, and the replaced lines.

    A placeholder keeps the line's indentation and is a `pass` inside a block, so the rest
    of the cell still parses. A `%%cell magic` replaces the whole cell; a magic line ending
    in a backslash continues on the next line.
    """
    lines = source.split("\n")
    if lines[-1] == "":
        lines.pop()
    whole_cell = bool(lines) and lines[0].lstrip().startswith("%%")
    masked: list[str] = []
    magics: list[str] = []
    continued = False
    for line in lines:
        if whole_cell or continued or _LINE_MAGIC.match(line):
            indent = line[: len(line) - len(line.lstrip())] if not whole_cell else ""
            masked.append(f"{indent}pass  {_MAGIC_PLACEHOLDER}" if indent else _MAGIC_PLACEHOLDER)
            magics.append(line)
            continued = line.endswith("\\")
        else:
            masked.append(line)
    return masked, magics


def _unmask_magics(text: str, magics: tuple[str, ...]) -> str:
    if not magics:
        return text
    originals = iter(magics)
    lines = text.split("\n")
    for number, line in enumerate(lines):
        if line.strip() in (_MAGIC_PLACEHOLDER, f"pass  {_MAGIC_PLACEHOLDER}"):
            lines[number] = next(originals, line)
    return "\n".join(lines)


def _json_layout(raw: str) -> dict[str, Any]:
    """The `json.dumps` arguments the notebook was written with: the first candidate that
    writes the file back byte for byte, else the indentation and separators seen in it."""
    indent = _json_indent(raw)
    ascii_only = _ascii_only(raw)
    document = json.loads(raw)
    written = raw.rstrip("\n")
    item_separators = (",", ", ") if indent is None else (",",)
    layouts = [{"indent": indent, "separators": (item, key), "ensure_ascii": ascii_only}
               for item in item_separators for key in (": ", ":")]
    for layout in layouts:  # keys keep the file's order: json.loads reads them in order
        if json.dumps(document, **layout) == written:
            return layout
    return layouts[0] if '": ' in raw else layouts[1]


def _json_indent(raw: str) -> str | int | None:
    """The indentation the notebook was written with (nbformat uses one space)."""
    match = re.match(r"\s*[\[{]\r?\n([ \t]+)", raw)
    if match is None:
        return None
    indent = match.group(1)
    return len(indent) if set(indent) == {" "} else indent


def _ascii_only(raw: str) -> bool:
    """Whether the file escaped non-ASCII characters (`\\u00e9`) rather than writing them."""
    return raw.isascii() and "\\u" in raw
