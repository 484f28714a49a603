"""The result cache: one JSON file per bnlint build and configuration, {path: entry}.

Plain JSON data, checked field by field when read, so that reading a cache can never run
code; a file that is unreadable or not shaped as written (damaged, edited, from another
version) is dropped silently and rebuilt. bnlint writes a `.gitignore` only into a cache
folder it created itself, and refuses a cache folder that holds files it lints.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bnlint.diagnostics import (
    Applicability,
    Diagnostic,
    Edit,
    FileResult,
    Fix,
    HelperEvidence,
    Severity,
)
from bnlint.errors import UsageError

_FORMAT = 2  # 2: notebook file positions instead of unused suppressions (now BN001 findings)


class ResultCache:
    """Results by file, valid while the file's digest and those of the project files its
    analysis read are unchanged."""

    def __init__(self, directory: Path, key: str, enabled: bool) -> None:
        self.directory = directory
        self.file = directory / f"results-{key}.json"
        self.enabled = enabled
        self.entries: dict[str, tuple[str, dict[str, str], FileResult]] = {}
        if enabled:
            self.entries = _read(self.file)

    def refuse_sources_inside(self, files: list[Path]) -> None:
        """UsageError when the cache folder holds a file to lint (`--cache-dir .`)."""
        if not self.enabled:
            return
        folder = os.path.abspath(self.directory).rstrip(os.sep) + os.sep
        inside = next((path for path in files if str(path).startswith(folder)), None)
        if inside is not None:
            raise UsageError(f"the cache directory {self.directory} holds files to lint ({inside.name}); "
                             "give --cache-dir a folder of its own")

    def get(self, path: Path, digest: str, digests: dict[str, str]) -> FileResult | None:
        entry = self.entries.get(str(path)) if self.enabled else None
        if entry is None or entry[0] != digest:
            return None
        if any(digests.get(dependency) != known for dependency, known in entry[1].items()):
            return None
        return entry[2]

    def put(self, path: Path, digest: str, result: FileResult, dependencies: dict[str, str]) -> None:
        if self.enabled and result.error is None:
            self.entries[str(path)] = (digest, dependencies, result)

    def save(self) -> None:
        if not self.enabled:
            return
        try:
            if not self.directory.exists():
                self.directory.mkdir(parents=True)
                (self.directory / ".gitignore").write_text("# created by bnlint\n*\n", encoding="utf-8")
            data = {"format": _FORMAT, "entries": {
                path: {"digest": digest, "dependencies": dependencies, "result": _result_to_json(result)}
                for path, (digest, dependencies, result) in self.entries.items()
            }}
            # Written aside, then renamed over: a run reading it at the same time sees the old
            # or the new file whole, and of two runs saving at once the last one's stands.
            temporary = self.file.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
            os.replace(temporary, self.file)
        except OSError as error:  # a read-only checkout still lints; it just is not faster next time
            _warn_once(f"bnlint: warning: cannot write the cache in {self.directory} "
                       f"({error.strerror or error}); running without it")
            self.enabled = False


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr)


def _read(file: Path) -> dict[str, tuple[str, dict[str, str], FileResult]]:
    try:
        data = json.loads(file.read_bytes())
        if _field(data, "format", int) != _FORMAT:
            return {}
        entries = {}
        for path, entry in _field(data, "entries", dict).items():
            dependencies = _field(entry, "dependencies", dict)
            for dependency, digest in dependencies.items():
                _checked(digest, str)
            entries[_checked(path, str)] = (_field(entry, "digest", str), dependencies,
                                            _result_from_json(_field(entry, "result", dict)))
        return entries
    except (OSError, ValueError, TypeError, KeyError, RecursionError):  # json.JSONDecodeError is a ValueError
        return {}


def _checked(value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise TypeError(f"expected {kind}, found {type(value).__name__}")
    return value


def _field(data: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    return _checked(_checked(data, dict)[key], kind)


def _result_to_json(result: FileResult) -> dict[str, Any]:
    return {
        "path": result.path,
        "diagnostics": [_diagnostic_to_json(diagnostic) for diagnostic in result.diagnostics],
        "helper_evidence": [[item.path, item.helper, item.index,
                             None if item.diagnostic is None else _diagnostic_to_json(item.diagnostic),
                             item.sufficient] for item in result.helper_evidence],
        "source_lines": [[cell, line, text] for (cell, line), text in result.source_lines.items()],
        "file_positions": [[*where, *position] for where, position in result.file_positions.items()],
    }


def _result_from_json(data: dict[str, Any]) -> FileResult:
    result = FileResult(_field(data, "path", str))
    result.diagnostics = [_diagnostic_from_json(item) for item in _field(data, "diagnostics", list)]
    for path, helper, index, diagnostic, sufficient in _field(data, "helper_evidence", list):
        result.helper_evidence.append(HelperEvidence(
            _checked(path, str), _checked(helper, str), _checked(index, int),
            None if diagnostic is None else _diagnostic_from_json(diagnostic), _checked(sufficient, bool)))
    for cell, line, text in _field(data, "source_lines", list):
        result.source_lines[(_checked(cell, int), _checked(line, int))] = _checked(text, str)
    for cell, line, column, file_line, file_column in _field(data, "file_positions", list):
        where = (_checked(cell, int), _checked(line, int), _checked(column, int))
        result.file_positions[where] = (_checked(file_line, int), _checked(file_column, int))
    return result


def _diagnostic_to_json(diagnostic: Diagnostic) -> dict[str, Any]:
    data = diagnostic.to_json()
    if diagnostic.fix is not None:  # the anchors are not part of the report format
        data["fix"]["anchors"] = [None if edit.anchor is None else list(edit.anchor) for edit in diagnostic.fix.edits]
    return data


def _diagnostic_from_json(data: Any) -> Diagnostic:
    fix = None
    if _field(data, "fix", (dict, type(None))) is not None:
        fix_data = data["fix"]
        edits = []
        for edit, anchor in zip(_field(fix_data, "edits", list), _field(fix_data, "anchors", list), strict=True):
            if anchor is not None and (len(_checked(anchor, list)) != 3 or not all(isinstance(p, str) for p in anchor)):
                raise TypeError("an edit's anchor is three strings")
            edits.append(Edit(_field(edit, "line", int), _field(edit, "column", int), _field(edit, "end_line", int),
                              _field(edit, "end_column", int), _field(edit, "content", str),
                              None if anchor is None else tuple(anchor)))
        fix = Fix(Applicability(_field(fix_data, "applicability", str)), _field(fix_data, "message", str),
                  tuple(edits))
    return Diagnostic(
        _field(data, "path", str), _field(data, "line", int), _field(data, "column", int),
        _field(data, "end_line", int), _field(data, "end_column", int), _field(data, "code", str),
        _field(data, "rule", str), Severity(_field(data, "severity", str)), _field(data, "message", str), fix,
        _field(data, "cell", (int, type(None))) if "cell" in data else None,
    )
