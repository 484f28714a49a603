"""The project the command-line tests run in (test_cli.py, test_cli_workflows.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import CLEAN, REDUNDANT_BIAS


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with src/bias.py (one BN304) and src/clean.py (nothing)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BNLINT_DEBUG", raising=False)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "bias.py").write_text(REDUNDANT_BIAS)
    (tmp_path / "src" / "clean.py").write_text(CLEAN)
    return tmp_path
