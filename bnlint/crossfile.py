"""Facts about shared helpers, merged across the files of a run.

A module-level helper (`def conv3x3(...): return nn.Conv2d(...)`) is analysed in its own
file with its callers unknown; the files that call it see how its layers are used. Each
file reports what it saw (`HelperEvidence`); a finding at the helper stands when the files
that import it all saw the rule apply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import libcst as cst

from bnlint.config import Config
from bnlint.diagnostics import Diagnostic, FileResult
from bnlint.errors import SourceError
from bnlint.files import read_source
from bnlint.paths import display_path
from bnlint.positions import split_lines
from bnlint.semantics.names import imports_in_text, module_name_for
from bnlint.semantics.project.index import ProjectIndex
from bnlint.semantics.syntax import walk
from bnlint.suppression import UNUSED_NOQA, Suppressions


def call_index(helper: cst.FunctionDef | cst.ClassDef, node: cst.CSTNode) -> int | None:
    """The position of `node` among the calls in the helper, the same in every process."""
    calls = (child for child in walk(helper, into_scopes=True) if isinstance(child, cst.Call))
    for index, call in enumerate(calls):
        if call is node:
            return index
    return None


def merge(results: list[FileResult], config: Config, project: ProjectIndex,
          sources: Sequence[tuple[Path, bytes]]) -> list[FileResult]:
    """The results with the findings that only the evidence of several files establishes.

    A finding at a helper stands when every file that imports the helper saw how its layer
    is used and all of them saw the rule apply: a file that imports it but was not analysed
    (it names no batch norm) may use it in a way that needs the bias. A finding that one
    caller's evidence suffices for (a model used wrongly through the helper) stands alone."""
    seen: dict[tuple[str, str, int], list[tuple[str, Diagnostic | None]]] = {}
    established: dict[str, list[Diagnostic]] = {}
    for result in results:
        for evidence in result.helper_evidence:
            if evidence.sufficient and evidence.diagnostic is not None:
                established.setdefault(evidence.path, []).append(evidence.diagnostic)
                continue
            key = (evidence.path, evidence.helper, evidence.index)
            seen.setdefault(key, []).append((result.path, evidence.diagnostic))
    for (path, helper, _), verdicts in seen.items():
        witnesses = {witness for witness, _ in verdicts}
        if any(verdict is None for _, verdict in verdicts):
            continue
        if not _importers(path, helper, project, sources) <= witnesses:
            continue
        diagnostic = verdicts[0][1]
        assert diagnostic is not None
        established.setdefault(diagnostic.path, []).append(diagnostic)
    if not established:
        return results
    texts = {display_path(source): data for source, data in sources}  # an editor's buffer, not the file
    return [_with_established(result, established.get(result.path, []), config, texts.get(result.path))
            for result in results]


def _importers(path: str, helper: str, project: ProjectIndex, sources: Sequence[tuple[Path, bytes]]) -> set[str]:
    """The files that import `helper` from the module at `path` (found in their text)."""
    importers = set()
    for source, data in sources:
        if helper.encode() not in data:
            continue
        module_name, is_package = module_name_for(source)
        for module, imported in imports_in_text(data.decode("utf-8", "replace"), module_name, is_package):
            names = [name for name, _ in imported] if imported is not None else []
            candidates = [module] if helper in names or imported is None else []
            candidates += [f"{module}.{name}" for name in names]  # `from pkg import layers`
            if any(_shown(project.module_path(candidate)) == path for candidate in candidates):
                importers.add(display_path(source))
                break
    return importers


def _shown(path: Path | None) -> str | None:
    return display_path(path) if path is not None else None


def _with_established(result: FileResult, found: list[Diagnostic], config: Config, data: bytes | None
                      ) -> FileResult:
    known = {(d.code, d.line, d.column) for d in result.diagnostics}
    new = []
    for diagnostic in found:  # several callers may establish the same finding
        key = (diagnostic.code, diagnostic.line, diagnostic.column)
        if key not in known and config.is_enabled(diagnostic.code, Path(diagnostic.path)):
            known.add(key)
            new.append(diagnostic)
    if not new:
        return result
    try:
        source = read_source(Path(result.path), data)
    except SourceError:
        return result
    kept, _ = Suppressions.from_text(source.text).apply(new, result.path)
    # A directive that suppresses an established finding is used after all: no BN001 for it.
    used_lines = {diagnostic.line for diagnostic in new if diagnostic not in kept}
    previous = [d for d in result.diagnostics if not (d.code == UNUSED_NOQA and d.line in used_lines)]
    if not kept and len(previous) == len(result.diagnostics):
        return result
    lines = split_lines(source.text)
    source_lines = dict(result.source_lines)
    for diagnostic in kept:
        if diagnostic.line <= len(lines):
            source_lines[(0, diagnostic.line)] = lines[diagnostic.line - 1]
    diagnostics = sorted([*previous, *kept], key=lambda d: d.sort_key)
    return dataclasses.replace(result, diagnostics=diagnostics, source_lines=source_lines)
