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


def test_several_inputs_and_a_per_model_table_in_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.bnlint.verify]\ninput-shape = [\"8,16\", \"h=8,32\"]\n\n"
        "[tool.bnlint.verify.models]\nTagger = [\"4,20:int\"]\n")
    assert configured_inputs(tmp_path) == {"default": ["8,16", "h=8,32"], "models": {"Tagger": ["4,20:int"]}}


def test_bad_input_spec_in_the_per_model_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.bnlint.verify.models]\nNet = [\"8,x\"]\n")
    with pytest.raises(ConfigError, match=r"models\.Net: expected N,C,H,W"):
        configured_inputs(tmp_path)


def test_input_specs_positional_keyword_and_token_ids() -> None:
    from bnlint.runtime.inputs import InputSpec, inputs_from_specs, inputs_from_value, parse_spec

    assert parse_spec("8,3,32,32") == (None, InputSpec((8, 3, 32, 32)))
    assert parse_spec("mask=8,20") == ("mask", InputSpec((8, 20)))
    assert parse_spec("8,20:int")[1].tokens > 0
    for bad in ("8,0", "8,3:float", "1x=8", ""):
        with pytest.raises(ValueError, match="expected N,C,H,W"):
            parse_spec(bad)
    inputs = inputs_from_specs(["8,16", "h=8,32"], "from --input-shape")
    batch = inputs.batch(size=2, seed=0)
    assert inputs.describe() == "(8, 16), h=(8, 32)"
    assert batch.args[0].shape == (2, 16) and batch.kwargs["h"].shape == (2, 32) and batch.size == 2
    import numpy as np

    hooked = inputs_from_value((np.zeros((4, 6), np.float32), (np.zeros((4, 8)), np.zeros((4, 8)))), "from hook")
    assert hooked.describe() == "(4, 6), [(4, 8), (4, 8)]"
    assert inputs_from_value({"ids": np.array([[1, 5]])}, "from hook").describe() == "ids=(1, 2) int"


def test_batches_join_and_split_as_devices_scatter_them() -> None:
    import numpy as np

    from bnlint.runtime.inputs import Batch

    batch = Batch((np.arange(8.0).reshape(8, 1),), {"mask": np.ones((8, 2))})
    shards = batch.shards(4)
    assert [shard.size for shard in shards] == [2, 2, 2, 2]
    assert shards[0].joined(shards[1]).args[0].ravel().tolist() == [0.0, 1.0, 2.0, 3.0]
