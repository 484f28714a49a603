"""`bnlint server` through a real LSP client over stdio (pytest-lsp's client on pygls): open
a document, receive diagnostics, request and apply a code action, see the diagnostic go
away; edit an imported helper and see a dependent open file's diagnostics change."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

pytest.importorskip("pygls")
from lsprotocol import types  # noqa: E402
from pytest_lsp import client_capabilities  # noqa: E402
from pytest_lsp.client import make_test_lsp_client  # noqa: E402

from test_project_scope import TRAINING, write_project  # noqa: E402

NET = """
import torch.nn as nn

net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8, momentum=0.9))
"""
TIMEOUT = 60


def _uri(path: Path) -> str:
    return path.as_uri()


async def _until(client, uri: str, satisfied: Callable[[Sequence[types.Diagnostic]], bool]
                 ) -> Sequence[types.Diagnostic]:
    """The document's diagnostics once they satisfy the test (the server publishes again after each edit)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while loop.time() < deadline:
        found = client.diagnostics.get(uri)
        if found is not None and satisfied(found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no such diagnostics for {uri}: {client.diagnostics.get(uri)}")


def _codes(diagnostics: Sequence[types.Diagnostic]) -> list[str]:
    return sorted(str(d.code) for d in diagnostics)


def _apply(text: str, edits: Sequence[types.TextEdit]) -> str:
    """Apply LSP text edits (0-based lines and characters), last first."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(position: types.Position) -> int:
        return offsets[min(position.line, len(lines))] + position.character

    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        text = text[:offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end):]
    return text


def _open(client, path: Path, text: str) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=_uri(path), language_id="python", version=1, text=text)))


def _change(client, path: Path, text: str, version: int) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        types.VersionedTextDocumentIdentifier(uri=_uri(path), version=version),
        [types.TextDocumentContentChangeWholeDocument(text=text)]))


async def _session(root: Path, scenario: Callable) -> None:
    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "bnlint", "server", cwd=str(root))
    try:
        await client.initialize_session(types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"), root_uri=_uri(root),
            initialization_options={"bnlint": {"select": ["ALL"]}}))
        await scenario(client)
        await client.shutdown_session()
    finally:
        await client.stop()


def test_diagnostics_code_actions_and_hover(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", {"pkg/__init__.py": "", "pkg/net.py": NET})
    net = root / "pkg/net.py"
    text = net.read_text()

    async def scenario(client) -> None:
        _open(client, net, text)
        found = await _until(client, _uri(net), lambda found: len(found) == 2)
        assert _codes(found) == ["BN304", "BN306"]
        bn306 = next(d for d in found if d.code == "BN306")
        assert bn306.severity == types.DiagnosticSeverity.Warning and bn306.source == "bnlint"
        assert bn306.code_description is not None and bn306.code_description.href.endswith("BN306.md")
        assert "momentum" in bn306.message

        hover = await client.text_document_hover_async(types.HoverParams(
            types.TextDocumentIdentifier(_uri(net)), bn306.range.start))
        assert hover is not None and "why" in hover.contents.value and "fix" in hover.contents.value

        actions = await client.text_document_code_action_async(types.CodeActionParams(
            types.TextDocumentIdentifier(_uri(net)), types.Range(types.Position(2, 0), types.Position(3, 0)),
            types.CodeActionContext(diagnostics=list(found))))
        titles = [action.title for action in actions]
        assert "Suppress BN304 with `# noqa: BN304`" in titles
        assert "Fix all safe bnlint fixes in this file" in titles
        assert not any(title.startswith("Fix BN304") for title in titles)  # unsafe: off by default
        fix = next(action for action in actions if action.title.startswith("Fix BN306"))
        assert "(safe)" in fix.title
        fixed = _apply(text, fix.edit.changes[_uri(net)])
        assert "momentum=0.1" in fixed
        _change(client, net, fixed, 2)
        found = await _until(client, _uri(net), lambda found: _codes(found) == ["BN304"])

        suppress = next(action for action in await client.text_document_code_action_async(types.CodeActionParams(
            types.TextDocumentIdentifier(_uri(net)), found[0].range, types.CodeActionContext(diagnostics=list(found))))
            if action.title.startswith("Suppress"))
        _change(client, net, _apply(fixed, suppress.edit.changes[_uri(net)]), 3)
        await _until(client, _uri(net), lambda found: not found)

    asyncio.run(_session(root, scenario))
    assert net.read_text() == text  # the server writes nothing


def test_an_edited_helper_changes_a_dependent_open_file(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", TRAINING)
    use, helpers, engine = root / "pkg/use.py", root / "pkg/helpers.py", root / "pkg/engine.py"

    async def scenario(client) -> None:
        _open(client, use, use.read_text())
        _open(client, helpers, helpers.read_text())
        _open(client, engine, engine.read_text())
        await _until(client, _uri(use), lambda found: not found)
        await _until(client, _uri(engine), lambda found: _codes(found) == ["BN103"])  # from train.py, not open
        _change(client, helpers, "def set_eval(module):\n    return module\n", 2)
        await _until(client, _uri(use), lambda found: _codes(found) == ["BN101"])
        _change(client, helpers, helpers.read_text(), 3)
        await _until(client, _uri(use), lambda found: not found)

    asyncio.run(_session(root, scenario))
