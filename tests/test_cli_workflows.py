"""The ruff-style workflows of `bnlint check`: adopting with --add-noqa, reviewing fixes,
showing files and settings, command-line configuration, colour and help."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_cli import CLEAN, KERAS_MOMENTUM, REDUNDANT_BIAS, check

from bnlint.cli import main

MULTILINE = '''\
import torch.nn as nn

stem = nn.Sequential(
    nn.Conv2d(
        3, 64, kernel_size=3
    ),
    nn.BatchNorm2d(64),
    nn.BatchNorm2d(32),  # noqa: E501
)
'''


# --- --add-noqa ---------------------------------------------------------------------------


def test_add_noqa_suppresses_every_finding_keeps_other_codes_and_is_idempotent(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "src" / "multi.py").write_text(MULTILINE)
    assert check("src") == 1
    capsys.readouterr()
    assert check("--add-noqa", "src") == 0
    assert capsys.readouterr().err.endswith("Added 3 noqa directives.\n")
    text = (project / "src" / "multi.py").read_text()
    assert "    nn.Conv2d(  # noqa: BN304\n" in text  # the first line of a multi-line call
    assert "    nn.BatchNorm2d(32),  # noqa: E501, BN302\n" in text  # merged into another tool's codes
    assert check("src") == 0  # everything suppressed ...
    before = {path.name: path.read_text() for path in (project / "src").iterdir()}
    assert check("--add-noqa", "src") == 0  # ... and a second run changes nothing
    assert {path.name: path.read_text() for path in (project / "src").iterdir()} == before
    assert check("--report-unused-noqa", "src") == 0  # every directive it wrote is used


def test_add_noqa_in_a_notebook_cell(project: Path) -> None:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]},
             {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": REDUNDANT_BIAS.splitlines(keepends=True)}]
    notebook = project / "src" / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1))
    assert check("src/nb.ipynb") == 1
    assert check("--add-noqa", "src/nb.ipynb") == 0
    source = json.loads(notebook.read_text())["cells"][1]["source"]
    assert source[3] == "    nn.Conv2d(3, 64, kernel_size=3),  # noqa: BN304\n"
    assert check("src/nb.ipynb") == 0


def test_add_noqa_leaves_a_line_that_cannot_hold_a_comment(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inside_string = REDUNDANT_BIAS.replace("kernel_size=3)", 'kernel_size=3, padding_mode="""\nzeros""")')
    (project / "src" / "bias.py").write_text(inside_string)
    assert check("src/bias.py") == 1
    # the call's first line ends inside a string: a `#` there would be part of the string
    assert check("--add-noqa", "src/bias.py") == 0
    assert "src/bias.py:4:1: cannot hold a `# noqa` comment" in capsys.readouterr().err
    assert (project / "src" / "bias.py").read_text() == inside_string


# --- fixes --------------------------------------------------------------------------------


def test_show_fixes_lists_what_was_fixed_and_what_would_be(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "src" / "momentum.py").write_text(KERAS_MOMENTUM)
    assert check("--show-fixes", "src") == 1
    assert "Would fix 1 issue:\n- src/momentum.py:\n    1 × BN306 (momentum-convention)\n" in capsys.readouterr().err
    assert check("--fix", "--show-fixes", "src") == 1  # BN304's unsafe fix remains
    assert "Fixed 1 issue:\n- src/momentum.py:\n    1 × BN306 (momentum-convention)\n" in capsys.readouterr().err


def test_fix_only_reports_nothing_left_and_exit_non_zero_on_fix(project: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    (project / "src" / "momentum.py").write_text(KERAS_MOMENTUM)
    assert check("--fix-only", "src") == 0  # the BN304 left is not reported
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "Fixed 1 issue.\n"
    (project / "src" / "momentum.py").write_text(KERAS_MOMENTUM)
    assert check("--fix-only", "--exit-non-zero-on-fix", "src") == 1
    assert check("--fix-only", "--exit-non-zero-on-fix", "src") == 0  # nothing left to fix
    (project / "src" / "momentum.py").write_text(KERAS_MOMENTUM)
    assert check("--fix", "--exit-non-zero-on-fix", "src/momentum.py", "--ignore", "BN304") == 1
    assert check("--fix", "src/momentum.py", "--ignore", "BN304") == 0


# --- files and settings -------------------------------------------------------------------


def test_show_files_lists_what_would_be_checked(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--show-files", "src") == 0
    assert capsys.readouterr().out == "src/bias.py\nsrc/clean.py\n"
    assert check("--show-files", "--extend-exclude", "clean.py", "src") == 0
    assert capsys.readouterr().out == "src/bias.py\n"


def test_exclude_on_the_command_line_replaces_the_configured_one(project: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text('[tool.bnlint]\nexclude = ["bias.py"]\n')
    assert check("--show-files", "src") == 0
    assert capsys.readouterr().out == "src/clean.py\n"
    assert check("--show-files", "--exclude", "clean.py", "src") == 0
    assert capsys.readouterr().out == "src/bias.py\n"
    assert check("--show-files", "--extend-exclude", "clean.py", "src") == 0
    assert capsys.readouterr().out == ""


def test_show_settings_says_where_each_value_comes_from(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "base.toml").write_text('fail-on = "error"\nignore = ["BN305"]\n')
    (project / "pyproject.toml").write_text('[tool.bnlint]\nextend = "base.toml"\nignore = ["BN306"]\n')
    assert check("--show-settings", "--config", "rule-options.BN203.threshold=4", "--fail-on", "info", "src") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# configuration file: {project / 'pyproject.toml'}\n")
    assert 'ignore = ["BN306"]  # pyproject.toml\n' in out  # replaces the extended file's
    assert 'rule-options = {"BN203": {"threshold": 4}}  # --config rule-options.BN203.threshold=4\n' in out
    assert 'fail-on = "info"  # command line\n' in out
    assert 'respect-gitignore = true  # default\n' in out
    enabled = re.search(r"# enabled rules: (.*)", out).group(1).split(", ")
    assert "BN305" in enabled and "BN306" not in enabled
    check("--show-settings", "src")
    assert 'fail-on = "error"  # base.toml\n' in capsys.readouterr().out


def test_command_line_extend_select_turns_on_a_rule_the_configuration_ignores(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.bnlint]\nignore = ["BN3"]\n')
    assert check("src") == 0
    assert check("--extend-select", "BN304", "src") == 1
    assert check("--extend-select", "BN304", "--ignore", "BN304", "src") == 0


def test_config_overrides_and_files(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--config", 'fail-on="error"', "src") == 0
    assert check("--config", 'fail-on="error"', "--config", 'fail-on="info"', "src") == 1  # the last one wins
    (project / "other.toml").write_text('[tool.bnlint]\nignore = ["BN304"]\n')  # pyproject-shaped, other name
    assert check("--config", "other.toml", "src") == 0
    (project / "plain.toml").write_text('ignore = ["BN304"]\n')
    assert check("--config", "plain.toml", "--config", 'fail-on="info"', "src") == 0
    capsys.readouterr()
    assert check("--config", "fail-on=error", "src") == 2
    assert "strings need quotes" in capsys.readouterr().err
    assert check("--config", 'fail-on="fatal"', "src") == 2
    assert capsys.readouterr().err.startswith("bnlint: error: --config: fail-on must be one of")
    assert check("--config", 'extend="plain.toml"', "src") == 2
    assert "extend works in a file" in capsys.readouterr().err
    (project / "ruff.toml").write_text('[tool.ruff]\nline-length = 100\n')
    assert check("--config", "ruff.toml", "src") == 2
    assert "no [tool.bnlint]" in capsys.readouterr().err


def test_extend_inherits_a_shared_configuration(project: Path) -> None:
    (project / "shared.toml").write_text('[tool.bnlint]\nignore = ["BN304"]\nfail-on = "info"\n')
    (project / "src" / "pyproject.toml").write_text('[tool.bnlint]\nextend = "../shared.toml"\n')
    assert check("src") == 0
    (project / "src" / "pyproject.toml").write_text('[tool.bnlint]\nextend = "../shared.toml"\nignore = []\n')
    assert check("src") == 1  # the extending table's keys replace the shared ones
    (project / "src" / "pyproject.toml").write_text('[tool.bnlint]\nextend = "pyproject.toml"\n')
    assert check("src") == 2  # extends itself


# --- output -------------------------------------------------------------------------------


def test_color_always_and_never(project: Path, capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    check("--format", "full", "--color", "always", "src")
    assert "\x1b[" in capsys.readouterr().out
    check("--format", "full", "--color", "always", "--no-color", "src")
    assert "\x1b[" not in capsys.readouterr().out


def test_statistics_is_plain_text_when_piped(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--statistics", "src") == 1
    out = capsys.readouterr().out
    assert out == "Count  Code   Rule            Fixable\n    1  BN304  redundant-bias        0\n"


def test_rules_table_is_plain_text_when_piped(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Code", "Name", "Severity", "Frameworks", "Fix"]
    assert lines[2].split() == ["BN001", "unused-noqa", "warning", "any", "safe"]
    assert not any(char in "".join(lines) for char in "│┃━─")


def test_help_groups_options_like_ruff(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--help"]) == 0
    out = capsys.readouterr().out
    groups = re.findall(r"^(\w[\w ]*(?:\([^)]*\))?):$", out, re.M)
    assert groups == ["positional arguments", "Options", "Rule selection", "File selection", "Miscellaneous",
                      "Runtime checks (bnlint verify, --fix --verify)", "Global options"]
    for flag in ("--add-noqa", "--show-fixes", "--fix-only", "--exit-non-zero-on-fix", "--show-files",
                 "--show-settings", "--extend-exclude", "--no-color", "--report-unused-noqa"):
        assert flag in out


def test_verify_without_the_runtime_extras_names_them(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "numpy" else real(name, *a))
    assert main(["verify", "--no-cache", "src"]) == 2
    assert capsys.readouterr().err == (
        "bnlint: error: the runtime checker needs numpy, which is not installed: "
        "pip install 'bnlint[torch,runtime]' (or 'bnlint[tensorflow,runtime]' for Keras)\n")


def test_notebook_findings_point_at_the_notebook_file_line_in_file_viewer_formats(
        project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": REDUNDANT_BIAS.splitlines(keepends=True)}]
    raw = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)
    (project / "src" / "nb.ipynb").write_text(raw)
    conv_line = raw[: raw.index('"    nn.Conv2d')].count("\n") + 1
    assert check("--format", "gitlab", "src/nb.ipynb") == 1
    issue = json.loads(capsys.readouterr().out)[0]
    assert issue["location"] == {"path": "src/nb.ipynb", "lines": {"begin": conv_line}}
    assert issue["description"].startswith("BN304 cell 1, line 4, column 5: ")
    assert check("--format", "concise", "src/nb.ipynb") == 1
    assert capsys.readouterr().out.startswith("src/nb.ipynb:cell 1:4:5: warning: BN304 ")


def test_verify_shows_files_without_running_anything(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--show-files", "src"]) == 0
    assert capsys.readouterr().out == "src/bias.py\nsrc/clean.py\n"


def test_fix_removes_unused_noqa_directives_once_asked_for(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = CLEAN.replace("nn.BatchNorm2d(64))", "nn.BatchNorm2d(64))  # noqa: BN304, E501")
    (project / "src" / "clean.py").write_text(stale)
    assert check("--fix", "src/clean.py") == 0
    assert (project / "src" / "clean.py").read_text() == stale  # BN001 is off: nothing to fix
    assert check("--fix", "--report-unused-noqa", "--show-fixes", "src/clean.py") == 0
    assert (project / "src" / "clean.py").read_text() == stale.replace("BN304, E501", "E501")
    assert "1 × BN001 (unused-noqa)" in capsys.readouterr().err
    assert check("--fix", "--report-unused-noqa", "src/clean.py") == 0
    assert (project / "src" / "clean.py").read_text() == stale.replace("BN304, E501", "E501")


def test_add_noqa_never_suppresses_an_unused_noqa(project: Path) -> None:
    stale = CLEAN.replace("nn.BatchNorm2d(64))", "nn.BatchNorm2d(64))  # noqa: BN304")
    (project / "src" / "clean.py").write_text(stale)
    assert check("--add-noqa", "--report-unused-noqa", "src/clean.py") == 0
    assert (project / "src" / "clean.py").read_text() == stale  # BN001 is fixed by removing, not suppressing
