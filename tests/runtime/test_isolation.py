"""The static command never imports torch or TensorFlow, nor runs the user's code; the
runtime checker's settings are validated. No framework needed: these run everywhere."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bnlint.errors import ConfigError
from bnlint.runtime import configured_inputs

REPO = Path(__file__).resolve().parents[2]


def test_static_command_imports_no_framework(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    model = tmp_path / "model.py"
    model.write_text(f"open({str(marker)!r}, 'w')\nimport torch.nn as nn\nnet = nn.Sequential(nn.Conv2d(3, 8, 3), "
                     "nn.BatchNorm2d(8))\n", encoding="utf-8")
    script = (
        "import sys\n"
        "import bnlint, bnlint.runtime, bnlint.runtime.report_html\n"
        "from bnlint.cli import main\n"
        f"status = main(['check', {str(model)!r}, '--no-cache', '--format', 'json'])\n"
        "assert status == 1, status\n"
        "loaded = {'torch', 'tensorflow', 'keras'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False)
    assert completed.returncode == 0, completed.stderr
    assert not marker.exists()


def test_input_shape_from_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.bnlint.verify]\ninput-shape = [4, 3, 16, 16]\n")
    assert configured_inputs(tmp_path) == {"default": ["4,3,16,16"], "models": {}}


def test_bad_input_shape_in_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.bnlint.verify]\ninput-shape = '4,3'\n")
    with pytest.raises(ConfigError, match="input-shape"):
        configured_inputs(tmp_path)


def test_the_verify_table_does_not_upset_the_static_configuration(tmp_path: Path) -> None:
    from bnlint.config import load_config

    (tmp_path / "pyproject.toml").write_text("[tool.bnlint]\nselect = ['ALL']\n\n[tool.bnlint.verify]\ninput-shape = [2, 8]\n")
    assert load_config(tmp_path).is_enabled("BN304", tmp_path / "x.py")
    assert configured_inputs(tmp_path) == {"default": ["2,8"], "models": {}}
