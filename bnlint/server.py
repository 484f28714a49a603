"""`bnlint server`: a language server over stdio (pygls / lsprotocol).

Diagnostics on open, change (debounced) and save; code actions (each fix, titled with its
safety; fix all safe fixes; suppress with `# noqa: CODE`); hover with the rule's why and
fix. The project (its files, digests, import graph and index) stays in memory: an edited
buffer replaces its file's text in it, and every open document is re-checked after each
edit, so editing a helper updates the files that import it. Results are reused through the
same result cache as the command line (read at start, kept in memory).

Settings (`initializationOptions` or `workspace/didChangeConfiguration` `settings`, plain
or under a `bnlint` key): `select`, `ignore`, `extend-select`, `fail-on` (the lowest
severity shown), `unsafe-fixes` (offer unsafe fixes; off by default).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from bnlint import __version__
from bnlint.cache import ResultCache
from bnlint.config import Config, load_config
from bnlint.diagnostics import Applicability, Diagnostic, Edit, Severity
from bnlint.engine import Linter, RunOptions, lint_in_project, project_cache, source_roots
from bnlint.errors import BnlintError
from bnlint.fixes import FixMode, FixRefused
from bnlint.registry import rule_info
from bnlint.semantics.project.scope import Project, ProjectFile, project_root

DEBOUNCE_SECONDS = 0.25
_SEVERITIES = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}
_SOURCE = "bnlint"


@dataclass
class Settings:
    select: list[str] | None = None
    ignore: list[str] | None = None
    extend_select: list[str] | None = None
    fail_on: str | None = None
    unsafe_fixes: bool = False

    @classmethod
    def read(cls, raw: Any) -> Settings:
        """Settings from a client's JSON; unknown keys are ignored (clients send their own)."""
        if isinstance(raw, Mapping) and isinstance(raw.get("bnlint"), Mapping):
            raw = raw["bnlint"]
        if not isinstance(raw, Mapping):
            return cls()

        def selectors(key: str) -> list[str] | None:
            value = raw.get(key)
            return [str(item) for item in value] if isinstance(value, list) else None

        fail_on = raw.get("fail-on", raw.get("failOn"))
        return cls(selectors("select"), selectors("ignore"), selectors("extend-select") or selectors("extendSelect"),
                   fail_on if isinstance(fail_on, str) else None,
                   bool(raw.get("unsafe-fixes", raw.get("unsafeFixes", False))))


@dataclass
class _Workspace:
    """One project held in memory, with its configuration and results cache."""

    project: Project
    config: Config
    cache: ResultCache
    results: dict[Path, list[Diagnostic]] = field(default_factory=dict)  # the latest, by open file


class BnlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("bnlint", __version__)
        self.settings = Settings()
        self.workspaces: dict[Path, _Workspace] = {}
        self._pending: asyncio.TimerHandle | None = None

    # ----- the project ---------------------------------------------------------------------

    def workspace_for(self, path: Path) -> _Workspace:
        root = project_root(path)
        held = self.workspaces.get(root)
        if held is None or path not in held.project.files:  # a new file can change how imports resolve
            held = self._load(root, path)
            self.workspaces[root] = held
        return held

    def _load(self, root: Path, path: Path) -> _Workspace:
        config = load_config(path).with_overrides(
            select=self.settings.select, ignore=self.settings.ignore, extend_select=self.settings.extend_select,
            fail_on=self.settings.fail_on)
        buffers = {file: self._buffer(file) for file in self._open_paths() if project_root(file) == root}
        project = Project.scan(root, source_roots(root, config), {path: data for path, data in buffers.items()
                                                                  if data is not None})
        for file, data in buffers.items():
            if data is not None:
                self._put(project, file, data)
        return _Workspace(project, config, project_cache(project, config, RunOptions().cache_dir, True))

    def _put(self, project: Project, path: Path, data: bytes) -> None:
        """An open buffer stands for its file in the project."""
        digest = hashlib.sha256(data).hexdigest()
        if path in project.files and project.files[path].digest == digest and path in project.index.overrides:
            return
        project.replace(path, ProjectFile(path, data, digest))

    def _open_paths(self) -> list[Path]:
        return [Path(to_fs_path(uri)) for uri in self.workspace.text_documents if to_fs_path(uri)]

    def _buffer(self, path: Path) -> bytes | None:
        uri = from_fs_path(str(path))
        document = self.workspace.text_documents.get(uri) if uri else None
        return document.source.encode() if document is not None else None

    def reload(self) -> None:
        """Settings or files on disk changed: read the projects again."""
        self.workspaces.clear()
        self.check_open_documents()

    # ----- diagnostics ---------------------------------------------------------------------

    def check_open_documents(self) -> None:
        """Every open document, from the current buffers: an edit in one file may change
        another's findings (a helper it imports, a caller that establishes one)."""
        for path in self._open_paths():
            if path.suffix != ".py":
                continue
            held = self.workspace_for(path)
            data = self._buffer(path)
            if data is not None:
                self._put(held.project, path, data)
        for path in self._open_paths():
            if path.suffix == ".py":
                self.publish(path)

    def publish(self, path: Path) -> None:
        held = self.workspace_for(path)
        try:
            results = lint_in_project(held.project, [path], held.cache, held.config, RunOptions(jobs=1))
        except BnlintError as error:
            self.window_log_message(types.LogMessageParams(types.MessageType.Error, f"bnlint: {error}"))
            return
        diagnostics = [d for result in results for d in result.diagnostics
                       if d.severity.rank >= held.config.fail_on.rank]
        held.results[path] = diagnostics
        uri = from_fs_path(str(path))
        if uri is not None:
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(
                uri=uri, diagnostics=[_lsp_diagnostic(d) for d in diagnostics]))

    def schedule_check(self) -> None:
        """Check after a pause in typing, not on every keystroke."""
        if self._pending is not None:
            self._pending.cancel()
        self._pending = asyncio.get_running_loop().call_later(DEBOUNCE_SECONDS, self.check_open_documents)

    # ----- code actions and hover ----------------------------------------------------------

    def findings_at(self, path: Path, range_: types.Range) -> list[Diagnostic]:
        held = self.workspaces.get(project_root(path))
        found = held.results.get(path, []) if held is not None else []
        return [d for d in found if _overlaps(_lsp_range(d), range_)]

    def code_actions(self, uri: str, range_: types.Range) -> list[types.CodeAction]:
        path = Path(to_fs_path(uri) or "")
        document = self.workspace.get_text_document(uri)
        actions = []
        for diagnostic in self.findings_at(path, range_):
            fix = diagnostic.fix
            if fix is not None and (fix.applicability is Applicability.SAFE or self.settings.unsafe_fixes):
                actions.append(types.CodeAction(
                    title=f"Fix {diagnostic.code}: {fix.message} ({fix.applicability.value})",
                    kind=types.CodeActionKind.QuickFix, diagnostics=[_lsp_diagnostic(diagnostic)],
                    is_preferred=fix.applicability is Applicability.SAFE,
                    edit=_workspace_edit(uri, [_text_edit(edit) for edit in fix.edits])))
            actions.append(types.CodeAction(
                title=f"Suppress {diagnostic.code} with `# noqa: {diagnostic.code}`",
                kind=types.CodeActionKind.QuickFix, diagnostics=[_lsp_diagnostic(diagnostic)],
                edit=_workspace_edit(uri, [_noqa_edit(document.lines, diagnostic)])))
        fixed = self._all_safe_fixes(path, document.source)
        if fixed is not None:
            end = types.Position(len(document.lines), 0)
            actions.append(types.CodeAction(
                title="Fix all safe bnlint fixes in this file", kind=types.CodeActionKind.SourceFixAll,
                edit=_workspace_edit(uri, [types.TextEdit(types.Range(types.Position(0, 0), end), fixed)])))
        return actions

    def _all_safe_fixes(self, path: Path, text: str) -> str | None:
        held = self.workspaces.get(project_root(path))
        reported = held.results.get(path, []) if held is not None else []
        if held is None or not any(d.fix is not None and d.fix.applicability is Applicability.SAFE for d in reported):
            return None
        try:
            fixed, count = Linter(held.config, held.project.index).fix_text(text, str(path), FixMode.SAFE, path,
                                                                              reported)
        except (FixRefused, BnlintError):
            return None
        return fixed if count else None

    def hover(self, uri: str, position: types.Position) -> types.Hover | None:
        path = Path(to_fs_path(uri) or "")
        found = self.findings_at(path, types.Range(position, position))
        if not found:
            return None
        parts = []
        for diagnostic in found:
            info = rule_info(diagnostic.code)
            fix = (f"{diagnostic.fix.message} ({diagnostic.fix.applicability.value})" if diagnostic.fix
                   else "none available")
            parts.append(f"**{diagnostic.code}** {info.name}: {diagnostic.message}\n\n"
                         f"*why*: {info.summary}\n\n*fix*: {fix}\n\n`bnlint rule {diagnostic.code}` for more")
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, "\n\n---\n\n".join(parts)))


def _lsp_range(diagnostic: Diagnostic) -> types.Range:
    """bnlint's 1-based lines and columns (code points) → LSP's 0-based positions."""
    return types.Range(types.Position(diagnostic.line - 1, diagnostic.column - 1),
                       types.Position(diagnostic.end_line - 1, diagnostic.end_column - 1))


def _lsp_diagnostic(diagnostic: Diagnostic) -> types.Diagnostic:
    documentation = resources.files("bnlint.ruledocs") / f"{diagnostic.code}.md"
    return types.Diagnostic(
        range=_lsp_range(diagnostic), message=diagnostic.message, severity=_SEVERITIES[diagnostic.severity],
        code=diagnostic.code, source=_SOURCE,
        code_description=types.CodeDescription(href=Path(str(documentation)).as_uri()))


def _text_edit(edit: Edit) -> types.TextEdit:
    return types.TextEdit(types.Range(types.Position(edit.line - 1, edit.column - 1),
                                      types.Position(edit.end_line - 1, edit.end_column - 1)), edit.content)


def _workspace_edit(uri: str, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    return types.WorkspaceEdit(changes={uri: edits})


def _noqa_edit(lines: list[str], diagnostic: Diagnostic) -> types.TextEdit:
    """`# noqa: CODE` at the end of the reported line (added to a noqa already there)."""
    line = lines[diagnostic.line - 1].rstrip("\r\n") if diagnostic.line <= len(lines) else ""
    marker = line.find("# noqa:")
    if marker >= 0:
        at = types.Position(diagnostic.line - 1, len(line))
        return types.TextEdit(types.Range(at, at), f", {diagnostic.code}")
    at = types.Position(diagnostic.line - 1, len(line))
    return types.TextEdit(types.Range(at, at), f"  # noqa: {diagnostic.code}")


def _overlaps(a: types.Range, b: types.Range) -> bool:
    def key(position: types.Position) -> tuple[int, int]:
        return position.line, position.character

    return key(a.start) <= key(b.end) and key(b.start) <= key(a.end)


def make_server() -> BnlintServer:
    server = BnlintServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: BnlintServer, params: types.InitializeParams) -> None:
        ls.settings = Settings.read(params.initialization_options)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: BnlintServer, params: types.DidChangeConfigurationParams) -> None:
        ls.settings = Settings.read(params.settings)
        ls.reload()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: BnlintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.check_open_documents()

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: BnlintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.schedule_check()

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: BnlintServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.check_open_documents()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: BnlintServer, params: types.DidCloseTextDocumentParams) -> None:
        path = Path(to_fs_path(params.text_document.uri) or "")
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(params.text_document.uri, []))
        held = ls.workspaces.get(project_root(path))
        if held is not None:
            held.results.pop(path, None)
            held.project.forget_buffer(path)
        ls.check_open_documents()

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.SourceFixAll]))
    def code_action(ls: BnlintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return ls.code_actions(params.text_document.uri, params.range)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: BnlintServer, params: types.HoverParams) -> types.Hover | None:
        return ls.hover(params.text_document.uri, params.position)

    return server


def serve() -> int:
    make_server().start_io()
    return 0
