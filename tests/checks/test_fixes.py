"""Autofixes: what each fix writes (fix_source), that fixing is stable and leaves valid,
clean code, and how lint_paths writes fixes back to files (notebooks, CRLF, diff mode)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bnlint.config import load_config
from bnlint.diagnostics import Applicability
from bnlint.engine import RunOptions, RunResult, fix_source, lint_paths, lint_source
from bnlint.fixes import FixMode, apply_edits

from .conftest import dedent

# Known engine bug: an edit's span is the argument without its comma, but its content is the
# argument's code with the comma (`momentum=0.9, `), so the fix breaks the code unless the
# argument is the last one; fix_source then drops every fix of that round.

# (before, after, code fixed, needs unsafe mode) for each fix the rules offer.
FIXES = [
    pytest.param(
        """
        import torch.nn as nn

        stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        """,
        """
        import torch.nn as nn

        stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        """,
        "BN302",
        False,
        id="BN302-literal-num-features",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(2048, 256, bias=False), nn.BatchNorm1d(num_features=128))
        """,
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(2048, 256, bias=False), nn.BatchNorm1d(num_features=256))
        """,
        "BN302",
        False,
        id="BN302-keyword-num-features",
    ),
    pytest.param(
        """
        import torch.nn as nn

        stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(24, eps=1e-3), nn.ReLU6())
        """,
        """
        import torch.nn as nn

        stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32, eps=1e-3), nn.ReLU6())
        """,
        "BN302",
        False,
        id="BN302-num-features-before-other-arguments",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(2048, 256, bias=False), nn.BatchNorm2d(256), nn.ReLU())
        """,
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(2048, 256, bias=False), nn.BatchNorm1d(256), nn.ReLU())
        """,
        "BN303",
        False,
        id="BN303-linear-gets-batchnorm1d",
    ),
    pytest.param(
        """
        from torch import nn


        class Stem3d(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv3d(3, 64, kernel_size=(3, 7, 7), bias=False)
                self.bn = nn.BatchNorm2d(64)

            def forward(self, x):
                return self.bn(self.conv(x))
        """,
        """
        from torch import nn


        class Stem3d(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv3d(3, 64, kernel_size=(3, 7, 7), bias=False)
                self.bn = nn.BatchNorm3d(64)

            def forward(self, x):
                return self.bn(self.conv(x))
        """,
        "BN303",
        False,
        id="BN303-conv3d-gets-batchnorm3d",
    ),
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128))
        """,
        """
        import torch.nn as nn

        block = nn.Sequential(nn.Conv2d(64, 128, 3, padding=1, bias=False), nn.BatchNorm2d(128))
        """,
        "BN304",
        True,
        id="BN304-default-bias",
    ),
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(nn.Conv2d(64, 64, 3, 1, 1, 1, 1, True), nn.BatchNorm2d(64))
        """,
        """
        import torch.nn as nn

        block = nn.Sequential(nn.Conv2d(64, 64, 3, 1, 1, 1, 1, False), nn.BatchNorm2d(64))
        """,
        "BN304",
        True,
        id="BN304-positional-bias",
    ),
    pytest.param(
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(512, 256, bias=True), nn.BatchNorm1d(256))
        """,
        """
        import torch.nn as nn

        head = nn.Sequential(nn.Linear(512, 256, bias=False), nn.BatchNorm1d(256))
        """,
        "BN304",
        True,
        id="BN304-keyword-bias-true",
    ),
    pytest.param(
        """
        from tensorflow.keras import layers

        inputs = layers.Input(shape=(32, 32, 3))
        x = layers.Conv2D(32, 3, padding="same")(inputs)
        x = layers.BatchNormalization()(x)
        """,
        """
        from tensorflow.keras import layers

        inputs = layers.Input(shape=(32, 32, 3))
        x = layers.Conv2D(32, 3, padding="same", use_bias=False)(inputs)
        x = layers.BatchNormalization()(x)
        """,
        "BN304",
        True,
        id="BN304-keras-use-bias",
    ),
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(
            nn.Conv2d(64, 128, 3,
                      padding=1),  # same padding
            nn.BatchNorm2d(128),
        )
        """,
        """
        import torch.nn as nn

        block = nn.Sequential(
            nn.Conv2d(64, 128, 3,
                      padding=1, bias=False),  # same padding
            nn.BatchNorm2d(128),
        )
        """,
        "BN304",
        True,
        id="BN304-multiline-no-trailing-comma",
    ),
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(
            nn.Conv2d(
                64,
                128,
                3,
                # the stride is set by the caller
            ),
            nn.BatchNorm2d(128),
        )
        """,
        """
        import torch.nn as nn

        block = nn.Sequential(
            nn.Conv2d(
                64,
                128,
                3,
                bias=False,
                # the stride is set by the caller
            ),
            nn.BatchNorm2d(128),
        )
        """,
        "BN304",
        True,
        id="BN304-multiline-trailing-comma-comment-before-paren",
    ),
    pytest.param(
        """
        import torch.nn as nn

        block = nn.Sequential(
            nn.Conv2d(
                64,
                128,
                kernel_size=3,  # a 3x3 kernel
                padding=1,
            ),
            nn.BatchNorm2d(128),
        )
        """,
        """
        import torch.nn as nn

        block = nn.Sequential(
            nn.Conv2d(
                64,
                128,
                kernel_size=3,  # a 3x3 kernel
                padding=1,
                bias=False,
            ),
            nn.BatchNorm2d(128),
        )
        """,
        "BN304",
        True,
        id="BN304-multiline-trailing-comma-comment-on-previous-argument",
    ),
    pytest.param(
        """
        import torch.nn as nn

        bn = nn.BatchNorm2d(64, momentum=0.9)
        """,
        """
        import torch.nn as nn

        bn = nn.BatchNorm2d(64, momentum=0.1)
        """,
        "BN306",
        False,
        id="BN306-torch",
    ),
    pytest.param(
        """
        import torch.nn as nn

        bn = nn.BatchNorm2d(64, 1e-3, 0.99)
        """,
        """
        import torch.nn as nn

        bn = nn.BatchNorm2d(64, 1e-3, 0.01)
        """,
        "BN306",
        False,
        id="BN306-torch-positional",
    ),
    pytest.param(
        """
        from functools import partial

        import torch.nn as nn

        norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.99)
        """,
        """
        from functools import partial

        import torch.nn as nn

        norm_layer = partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
        """,
        "BN306",
        False,
        id="BN306-partial",
    ),
    pytest.param(
        """
        from tensorflow import keras

        bn = keras.layers.BatchNormalization(momentum=0.1, epsilon=1e-5)
        """,
        """
        from tensorflow import keras

        bn = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)
        """,
        "BN306",
        False,
        id="BN306-keras-argument-before-others",
    ),
    pytest.param(
        """
        import tensorflow as tf

        bn = tf.keras.layers.BatchNormalization(axis=-1, momentum=0.01)
        """,
        """
        import tensorflow as tf

        bn = tf.keras.layers.BatchNormalization(axis=-1, momentum=0.99)
        """,
        "BN306",
        False,
        id="BN306-keras-last-argument",
    ),
]


@pytest.mark.parametrize(("before", "after", "code", "unsafe"), FIXES)
def test_fix(before: str, after: str, code: str, unsafe: bool) -> None:
    """The rewrite; each fix's edits valid on their own; idempotent; compiles; clean for `code`."""
    before, after = dedent(before), dedent(after)
    fixable = [d for d in lint_source(before) if d.code == code and d.fix is not None]
    assert fixable, f"no {code} fix offered"
    for diagnostic in fixable:  # editors and --format json consumers apply one fix's edits alone
        alone, _ = apply_edits(before, [diagnostic])
        compile(alone, "fixed.py", "exec")
    fixed = fix_source(before, unsafe=unsafe)
    assert fixed == after
    assert fix_source(fixed, unsafe=unsafe) == fixed, "not idempotent"
    compile(fixed, "fixed.py", "exec")
    assert code not in {d.code for d in lint_source(fixed)}


_UNSAFE_CASES = [case for case in FIXES if case.values[3] and not case.marks]


@pytest.mark.parametrize(("before", "after", "code", "unsafe"), _UNSAFE_CASES)
def test_unsafe_fix_needs_unsafe_mode(before: str, after: str, code: str, unsafe: bool) -> None:
    (finding,) = [d for d in lint_source(dedent(before)) if d.code == code]
    assert finding.fix is not None and finding.fix.applicability is Applicability.UNSAFE
    assert fix_source(dedent(before)) == dedent(before)


@pytest.mark.parametrize(
    ("source", "code"),
    [
        pytest.param(
            """
            import torch.nn as nn

            STEM = 64
            stem = nn.Sequential(nn.Conv2d(3, STEM, 3, bias=False), nn.BatchNorm2d(32))
            """,
            "BN302",
            id="BN302-producer-count-not-a-literal",
        ),
        pytest.param(
            """
            import torch.nn as nn
            from torch.nn import BatchNorm2d as BN

            head = nn.Sequential(nn.Linear(512, 256, bias=False), BN(256))
            """,
            "BN303",
            id="BN303-class-through-alias",
        ),
        pytest.param(
            """
            import torch.nn as nn

            BN_MOMENTUM = 0.9
            bn = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
            """,
            "BN306",
            id="BN306-momentum-not-a-literal",
        ),
    ],
)
def test_no_fix_offered_when_not_a_plain_literal_edit(source: str, code: str) -> None:
    (finding,) = [d for d in lint_source(dedent(source)) if d.code == code]
    assert finding.fix is None
    assert fix_source(dedent(source), unsafe=True) == dedent(source)


def test_two_fixes_on_one_call_both_apply() -> None:
    before = "import torch.nn as nn\nstem = nn.Sequential(nn.Conv2d(3, 64, 3, bias=False), nn.BatchNorm2d(32, momentum=0.9))\n"
    after = "import torch.nn as nn\nstem = nn.Sequential(nn.Conv2d(3, 64, 3, bias=False), nn.BatchNorm2d(64, momentum=0.1))\n"
    assert fix_source(before) == after


def test_comments_and_formatting_elsewhere_are_preserved() -> None:
    before = dedent(
        '''
        """A ResNet stem."""
        import torch.nn as nn  # noqa: F401 -- re-exported


        class Stem(nn.Module):
            # channels of the first stage
            width   = 64

            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)
                self.bn = nn.BatchNorm2d(64,  momentum = 0.9)   # odd spacing kept

            def forward(self, x):
                return self.bn(self.conv(x)).relu()  # fused in deployment
        '''
    )
    after = fix_source(before, unsafe=True)
    changed = [(old, new) for old, new in zip(before.splitlines(), after.splitlines()) if old != new]
    assert len(before.splitlines()) == len(after.splitlines())
    assert changed == [
        (
            "        self.conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3)",
            "        self.conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)",
        ),
        (
            "        self.bn = nn.BatchNorm2d(64,  momentum = 0.9)   # odd spacing kept",
            "        self.bn = nn.BatchNorm2d(64,  momentum = 0.1)   # odd spacing kept",
        ),
    ]


# ----- through lint_paths: files on disk -----------------------------------------------------

MOMENTUM_BUG = "import torch.nn as nn\n\nbn = nn.BatchNorm2d(64, momentum=0.9)  # a comment\n"
BIAS_BUG = "import torch.nn as nn\n\nblock = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))\n"
BOTH_BUGS = MOMENTUM_BUG + "block = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))\n"


def _run(tmp_path: Path, mode: FixMode, diff: bool = False) -> RunResult:
    options = RunOptions(jobs=1, use_cache=False, fix=mode, diff=diff)
    return lint_paths([str(tmp_path)], load_config(tmp_path), options)


def test_safe_run_fixes_file_and_reports_what_remains(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text(BOTH_BUGS)
    run = _run(tmp_path, FixMode.SAFE)
    assert run.fixed_count == 1
    assert "momentum=0.1)  # a comment" in target.read_text()
    assert [d.code for result in run.results for d in result.diagnostics] == ["BN304"]


def test_unsafe_run_applies_unsafe_fixes(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text(BIAS_BUG)
    run = _run(tmp_path, FixMode.UNSAFE)
    assert run.fixed_count == 1
    assert "nn.Conv2d(3, 8, 3, bias=False)" in target.read_text()
    assert all(not result.diagnostics for result in run.results)


def test_file_with_syntax_error_is_left_byte_identical(tmp_path: Path) -> None:
    target = tmp_path / "broken.py"
    data = b"import torch.nn as nn\nbn = nn.BatchNorm2d(64, momentum=0.9\nblock = nn.Sequential(\n"
    target.write_bytes(data)
    run = _run(tmp_path, FixMode.UNSAFE)
    assert target.read_bytes() == data
    assert run.fixed_count == 0
    assert [d.code for result in run.results for d in result.diagnostics] == ["BN000"]


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_bytes(MOMENTUM_BUG.replace("\n", "\r\n").encode())
    _run(tmp_path, FixMode.SAFE)
    assert target.read_bytes() == MOMENTUM_BUG.replace("0.9", "0.1").replace("\n", "\r\n").encode()


def test_file_mode_bits_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text(MOMENTUM_BUG)
    target.chmod(0o754)
    _run(tmp_path, FixMode.SAFE)
    assert "momentum=0.1" in target.read_text()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o754


def test_diff_mode_writes_nothing_and_returns_a_diff(tmp_path: Path) -> None:
    target = tmp_path / "model.py"
    target.write_text(MOMENTUM_BUG)
    run = _run(tmp_path, FixMode.SAFE, diff=True)
    assert target.read_text() == MOMENTUM_BUG
    assert run.fixed_count == 1
    (diff,) = run.diffs
    assert "-bn = nn.BatchNorm2d(64, momentum=0.9)  # a comment" in diff.splitlines()
    assert "+bn = nn.BatchNorm2d(64, momentum=0.1)  # a comment" in diff.splitlines()


def _notebook(cells: list[dict]) -> dict:
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                     "language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _code_cell(cell_id: str, lines: list[str]) -> dict:
    return {"cell_type": "code", "execution_count": 1, "id": cell_id, "metadata": {}, "outputs": [], "source": lines}


def test_notebook_fix_changes_only_the_cell(tmp_path: Path) -> None:
    original = _notebook([
        {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": ["# Batch norm\n", "momentum=0.9 here is prose"]},
        _code_cell("imports", ["import torch.nn as nn"]),
        _code_cell("model", ["bn = nn.BatchNorm2d(64, momentum=0.9)\n", "print(bn)"]),
    ])
    target = tmp_path / "experiment.ipynb"
    target.write_text(json.dumps(original, indent=1) + "\n")
    run = _run(tmp_path, FixMode.SAFE)
    assert run.fixed_count == 1
    expected = json.loads(json.dumps(original))
    expected["cells"][2]["source"] = ["bn = nn.BatchNorm2d(64, momentum=0.1)\n", "print(bn)"]
    assert json.loads(target.read_text()) == expected
    assert target.read_text() == json.dumps(expected, indent=1) + "\n"  # nbformat's layout kept


@pytest.mark.parametrize("indent", ["    ", "  "], ids=["four-spaces", "two-spaces"])
def test_a_multiline_call_in_an_indented_block_keeps_its_indentation(indent: str) -> None:
    def lines(*rows: str) -> str:
        return "\n".join(row.replace("\t", indent) for row in rows) + "\n"

    before = lines(
        "import torch.nn as nn",
        "",
        "",
        "class Stem(nn.Module):",
        "\tdef __init__(self):",
        "\t\tsuper().__init__()",
        "\t\tself.layers = nn.Sequential(",
        "\t\t\tnn.Conv2d(",
        "\t\t\t\t3,",
        "\t\t\t\t64,",
        "\t\t\t\tkernel_size=3),",
        "\t\t\tnn.BatchNorm2d(64),",
        "\t\t)",
    )
    after = before.replace("kernel_size=3)", "kernel_size=3, bias=False)")
    assert fix_source(before, unsafe=True) == after
    assert fix_source(after, unsafe=True) == after


def test_a_keyword_added_to_a_call_hugging_its_closing_paren_stays_on_the_argument_line() -> None:
    before = dedent(
        """
        from keras import layers


        def block(x, filters):
            x = layers.Conv2D(
                filters, 3, padding="same", name="conv"
            )(x)
            return layers.BatchNormalization()(x)
        """
    )
    after = before.replace('name="conv"\n', 'name="conv", use_bias=False\n')
    assert fix_source(before, unsafe=True) == after
