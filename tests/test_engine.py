"""The engine's own behaviour: the cheap text test, per-file failures, parallel parity."""

from __future__ import annotations

from pathlib import Path

import pytest

from bnlint import engine
from bnlint.checks.bn304_redundant_bias import RedundantBias
from bnlint.config import load_config
from bnlint.engine import RunOptions, lint_paths, lint_source

BIASED_CONV_BN = """\
import torch.nn as nn

block = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
"""


def _run(root: Path, **options: object) -> engine.RunResult:
    return lint_paths([str(root)], load_config(root), RunOptions(use_cache=False, **options))  # type: ignore[arg-type]


def test_a_file_that_never_mentions_batch_norm_still_gets_a_syntax_check() -> None:
    diagnostics = lint_source("def broken(:\n    pass\n")
    assert [(d.code, d.line) for d in diagnostics] == [("BN000", 1)]


def test_valid_code_without_batch_norm_has_no_findings() -> None:
    assert lint_source("import torch.nn as nn\nhead = nn.Sequential(nn.Linear(4, 4), nn.ReLU())\n") == []


def test_an_internal_error_in_one_file_is_reported_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.py").write_text(BIASED_CONV_BN)
    (tmp_path / "b.py").write_text("x = 1\n")

    def explode(self: RedundantBias, context: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(RedundantBias, "check", explode)
    results = {Path(result.path).name: result for result in _run(tmp_path, jobs=1).results}
    assert results["a.py"].error is not None and "internal error" in results["a.py"].error
    assert "boom" in results["a.py"].error
    assert results["b.py"].error is None


def test_parallel_and_serial_runs_agree(tmp_path: Path) -> None:
    for index in range(engine._PARALLEL_THRESHOLD + 4):
        (tmp_path / f"m{index}.py").write_text(BIASED_CONV_BN if index % 2 else "x = 1\n")

    def found(jobs: int) -> list[tuple[str, int, str]]:
        return [(Path(r.path).name, d.line, d.code) for r in _run(tmp_path, jobs=jobs).results for d in r.diagnostics]

    serial = found(1)
    assert len(serial) == (engine._PARALLEL_THRESHOLD + 4) // 2
    assert found(2) == serial


def test_the_cache_is_keyed_by_bnlint_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.py").write_text(BIASED_CONV_BN)
    options = {"jobs": 1, "use_cache": True, "cache_dir": tmp_path / ".cache"}
    config = load_config(tmp_path)
    lint_paths([str(tmp_path)], config, RunOptions(**options))  # type: ignore[arg-type]
    monkeypatch.setattr(engine, "_code_fingerprint", lambda: "another bnlint")
    linted: list[str] = []
    original = engine._lint_one
    monkeypatch.setattr(engine, "_lint_one", lambda linter, job: linted.append(job.path.name) or original(linter, job))
    lint_paths([str(tmp_path)], config, RunOptions(**options))  # type: ignore[arg-type]
    assert linted == ["a.py"]
