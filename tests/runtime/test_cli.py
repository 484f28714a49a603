"""`bnlint verify` and `bnlint check --fix --verify` from the command line: the JSON runtime
object, the HTML report, fixes written only when verified, and one clear message with exit
status 2 whenever the user's model cannot be loaded or run."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from bnlint.cli import main

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "verify_torch.py"

# A conv feeding a batch norm: every file below has a finding, so `verify` loads it.
_BLOCK = """
    import time

    import torch.nn as nn


    class Net(nn.Module):
        def __init__(self{parameters}) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)

        def forward(self, x):
            {forward}
            return self.bn(self.conv(x))
"""


def _write(folder: Path, name: str, *, parameters: str = "", forward: str = "pass", extra: str = "") -> Path:
    path = folder / name
    source = textwrap.dedent(_BLOCK).format(parameters=parameters, forward=forward) + textwrap.dedent(extra)
    path.write_text(source.lstrip("\n"), encoding="utf-8")
    return path


def _error(capsys: pytest.CaptureFixture[str], *arguments: str) -> str:
    assert main(["verify", "--no-cache", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.count("bnlint: error:") == 1, err
    return err


def test_json_has_a_runtime_object_and_the_html_report_a_card_per_finding(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "report.html"
    status = main(["verify", str(EXAMPLE), "--no-cache", "--format", "json", "--report", str(report)])
    captured = capsys.readouterr()
    findings = json.loads(captured.out)
    assert status == 1
    assert {(f["code"], f["runtime"]["verdict"], f["runtime"]["fix_verified"]) for f in findings} == {
        ("BN304", "confirmed", True), ("BN306", "confirmed", True), ("BN302", "confirmed", True),
        ("BN305", "confirmed", None)}
    for finding in findings:
        assert {"verdict", "evidence", "numbers", "fix_verified"} <= set(finding["runtime"])
        assert finding["runtime"]["input_source"] == "inferred from the first layer, Conv2d(3, …)"
    assert "checked SmallNet()" in captured.err and "(8, 3, 32, 32)" in captured.err
    page = report.read_text(encoding="utf-8")
    assert page.count("class='card'") == 4
    assert page.count("data:image/png;base64,") == 2  # BN306's drift, BN305's variances


def test_fix_verify_writes_verified_fixes_and_holds_back_the_rest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "model.py"
    path.write_text(textwrap.dedent("""
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(3, 4, 3)
                self.bn = nn.BatchNorm2d(4, momentum=0.9)
                self.bn.momentum = 0.1

            def forward(self, x):
                return self.bn(self.conv(x))
    """).lstrip("\n"), encoding="utf-8")
    status = main(["check", str(path), "--no-cache", "--fix", "--unsafe-fixes", "--verify", "--format", "concise"])
    captured = capsys.readouterr()
    text = path.read_text(encoding="utf-8")
    assert "nn.Conv2d(3, 4, 3, bias=False)" in text  # BN304: verified, written
    assert "momentum=0.9" in text  # BN306: not reproduced at runtime, held back
    assert "held back the fix for BN306" in captured.err and "not-reproduced" in captured.err
    assert "BN304" not in captured.out and "BN306" in captured.out
    assert status == 1


def test_verify_needs_fix() -> None:
    assert main(["check", str(EXAMPLE), "--verify"]) == 2


def test_import_error_names_the_module_and_the_users_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "broken.py", extra="\nimport not_a_module_bnlint_test\n")
    err = _error(capsys, str(path))
    assert "cannot import" in err and "No module named 'not_a_module_bnlint_test'" in err
    assert f"{path}:16: import not_a_module_bnlint_test" in err


def test_factory_that_raises(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "factory.py", parameters=", channels", extra="""

        def build_model():
            raise FileNotFoundError("weights.pt")
    """)
    err = _error(capsys, str(path))
    assert "build_model() raised FileNotFoundError: weights.pt" in err
    assert "factory.py:18:" in err


def test_model_that_needs_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "needs.py", parameters=", channels: int")
    err = _error(capsys, str(path), "--model", f"{path}:Net")
    assert "Net() needs arguments (channels)" in err


def test_input_shape_that_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "shape.py")
    err = _error(capsys, str(path), "--input-shape", "8,5,16,16")
    assert "the inputs (8, 5, 16, 16) (from --input-shape) do not fit Net()" in err
    assert "its signature is Net(x)" in err
    assert "Conv2d 'conv' (line 9)" in err


def test_forward_that_hangs_past_the_time_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "hang.py", forward="time.sleep(3600)")
    err = _error(capsys, str(path), "--timeout", "8")
    assert "timed out after 8 s while" in err


def test_processes_the_model_starts_end_with_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A model that starts a process (which keeps the worker's output open) neither makes
    bnlint wait out its time limit nor outlives it: the worker's process group is ended."""
    marker = tmp_path / "child.pid"
    path = _write(tmp_path, "spawns.py", extra=f"""

        import subprocess

        child = subprocess.Popen(["sleep", "300"])
        open({str(marker)!r}, "w").write(str(child.pid))
    """)
    started = time.monotonic()
    main(["verify", "--no-cache", "--timeout", "60", str(path)])
    assert time.monotonic() - started < 50
    child = int(marker.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except OSError:
        return False
    return state != "Z"


def test_model_named_in_one_file_checks_the_findings_of_another(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "models.py").write_text(textwrap.dedent("""
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = nn.Sequential(nn.Linear(10, 16, bias=False), nn.BatchNorm1d(16), nn.Linear(16, 2))

            def forward(self, x):
                return self.net(x)
    """).lstrip("\n"), encoding="utf-8")
    (tmp_path / "infer.py").write_text(textwrap.dedent("""
        import torch

        from models import Net


        def evaluate(x):
            model = Net()
            with torch.no_grad():
                return model(x)
    """).lstrip("\n"), encoding="utf-8")
    status = main(["verify", str(tmp_path), "--no-cache", "--format", "json", "--select", "BN101",
                   "--model", f"{tmp_path / 'models.py'}:Net"])
    findings = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [(Path(f["path"]).name, f["line"], f["runtime"]["verdict"], f["runtime"]["model"]) for f in findings] == [
        ("infer.py", 9, "confirmed", "Net()")]


def _notebook(path: Path, cells: list[str]) -> None:
    path.write_text(json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
                   "source": textwrap.dedent(cell).strip("\n")} for cell in cells],
        "metadata": {"kernelspec": {"language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5,
    }), encoding="utf-8")


def test_notebook_cells_run_up_to_the_model_only_when_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notebook = tmp_path / "experiment.ipynb"
    _notebook(notebook, ["import torch.nn as nn", """
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3),
            nn.BatchNorm2d(8),
        )
    """, "raise RuntimeError('the training cell must not run')"])
    main(["verify", str(notebook), "--no-cache", "--format", "json"])
    skipped = json.loads(capsys.readouterr().out)
    assert [(f["code"], f["cell"], f["runtime"]["verdict"]) for f in skipped] == [("BN304", 2, "not-checkable")]
    assert "--notebook-cells" in skipped[0]["runtime"]["evidence"]
    status = main(["verify", str(notebook), "--no-cache", "--format", "json", "--notebook-cells"])
    checked = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [(f["code"], f["cell"], f["line"], f["runtime"]["verdict"], f["runtime"]["fix_verified"])
            for f in checked] == [("BN304", 2, 2, "confirmed", True)]


def test_recurrent_cells_are_verified_with_no_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("keras")
    (tmp_path / "cells.py").write_text(textwrap.dedent("""
        import keras
        import torch
        import torch.nn as nn


        class NormedCell(nn.RNNCellBase):
            def __init__(self, input_size: int = 16, hidden_size: int = 32) -> None:
                super().__init__(input_size, hidden_size, bias=False, num_chunks=1)
                self.ih = nn.Linear(input_size, hidden_size, bias=False)
                self.bn = nn.BatchNorm1d(hidden_size)

            def forward(self, x, h):
                return torch.tanh(self.bn(self.ih(x)) + h)


        class NormedKerasCell(keras.layers.Layer):
            def __init__(self, units: int = 24, **kwargs) -> None:
                super().__init__(**kwargs)
                self.state_size = units
                self.dense = keras.layers.Dense(units, use_bias=False)
                self.norm = keras.layers.BatchNormalization()

            def call(self, inputs, states):
                h = keras.ops.tanh(self.norm(self.dense(keras.ops.concatenate([inputs, states[0]], axis=-1))))
                return h, [h]
    """).lstrip("\n"), encoding="utf-8")
    status = main(["verify", str(tmp_path / "cells.py"), "--no-cache", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    assert status == 1
    assert [(f["code"], f["line"], f["runtime"]["verdict"], f["runtime"]["model"]) for f in findings] == [
        ("BN301", 10, "confirmed", "NormedCell()"), ("BN301", 21, "confirmed", "NormedKerasCell()")]
