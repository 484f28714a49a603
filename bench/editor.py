"""Where users feel speed (issue 10): a single-file run with a warm cache, and the language
server's diagnostics after an edit (median), over a corpus folder.

    python bench/editor.py --corpus DIR --file DIR/some/model.py [--edits 10]

Fills the cache with a whole run first (its wall time is printed too: the cold run)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


async def _server_latency(file: Path, edits: int) -> list[float]:
    from lsprotocol import types
    from pytest_lsp import client_capabilities
    from pytest_lsp.client import make_test_lsp_client

    client = make_test_lsp_client()
    await client.start_io(sys.executable, "-m", "bnlint", "server")
    await client.initialize_session(types.InitializeParams(capabilities=client_capabilities("visual-studio-code")))
    uri, text = file.as_uri(), file.read_text()
    client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)))
    while uri not in client.diagnostics:
        await asyncio.sleep(0.01)
    latencies = []
    for version in range(2, edits + 2):
        client.diagnostics.pop(uri)
        text += f"\nx{version} = {version}\n"  # a typical edit: a new line at the end
        start = time.perf_counter()
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(version=version, uri=uri), [types.TextDocumentContentChangeWholeDocument(text=text)]))
        while uri not in client.diagnostics:
            await asyncio.sleep(0.005)
        latencies.append(time.perf_counter() - start)
    await client.shutdown_session()
    await client.stop()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--jobs", default="2")
    args = parser.parse_args()
    bnlint = [sys.executable, "-m", "bnlint", "check", "--select", "ALL", "--exit-zero", "--jobs", args.jobs]
    with tempfile.TemporaryDirectory() as cache:
        print(f"cold whole run: {_timed([*bnlint, '--cache-dir', cache, str(args.corpus)]):.2f} s wall")
        warm = [_timed([*bnlint, "--cache-dir", cache, str(args.file)]) for _ in range(5)]
        print(f"single file, warm cache: median {statistics.median(warm):.2f} s over 5 runs")
    latencies = asyncio.run(_server_latency(args.file.absolute(), args.edits))
    print(f"server, diagnostics after an edit: median {statistics.median(latencies) * 1000:.0f} ms "
          f"(includes the {250} ms debounce) over {len(latencies)} edits")


if __name__ == "__main__":
    main()
