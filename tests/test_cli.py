"""The command line end to end: subcommands, formats, fixes and exit statuses.

Most tests call `main([...])` in-process (fast); one runs `python -m bnlint` for real.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bnlint.cli import main
from bnlint.registry import all_rules

REDUNDANT_BIAS = """\
import torch.nn as nn

stem = nn.Sequential(
    nn.Conv2d(3, 64, kernel_size=3),
    nn.BatchNorm2d(64),
)
"""
KERAS_MOMENTUM = """\
import torch.nn as nn

stem = nn.Sequential(
    nn.Conv2d(3, 64, kernel_size=3, bias=False),
    nn.BatchNorm2d(64, momentum=0.9),
)
"""
CLEAN = """\
import torch.nn as nn

stem = nn.Sequential(nn.Conv2d(3, 64, kernel_size=3, bias=False), nn.BatchNorm2d(64))
"""
CONCISE_LINE = re.compile(r"^(.+):(\d+):(\d+): (error|warning|info): (BN\d{3}) (.+)$")


def check(*args: str) -> int:
    return main(["check", "--no-cache", "--jobs", "1", *args])


# --- rules and rule ---------------------------------------------------------------------


def test_rules_table_lists_the_whole_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for rule in all_rules().values():
        assert rule.code in out and rule.name in out


def test_rules_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--format", "json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [entry["code"] for entry in entries] == list(all_rules())
    bias = next(entry for entry in entries if entry["code"] == "BN304")
    assert bias == {
        "code": "BN304",
        "name": "redundant-bias",
        "severity": "warning",
        "frameworks": ["torch", "keras"],
        "fix": "unsafe",
        "summary": all_rules()["BN304"].summary,
    }


@pytest.mark.parametrize("key", ["BN304", "bn304", "redundant-bias"])
def test_rule_prints_markdown_with_a_metadata_header(key: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rule", key]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# redundant-bias (BN304)\n\n- Code: BN304\n- Severity: warning\n")
    assert "- Frameworks: torch, keras\n- Fix: unsafe" in out
    assert "## What it does" in out


def test_unknown_rule_is_a_usage_error_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rule", "redundant-bais"]) == 2
    err = capsys.readouterr().err
    assert err == "bnlint: error: unknown rule 'redundant-bais' (did you mean 'redundant-bias'?); `bnlint rules` lists them\n"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert re.fullmatch(r"bnlint \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


# --- usage errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--select", "BN9", "src"], "unknown rule selector 'BN9'"),
        (["--ignore", "redundant-bais", "src"], "unknown rule selector 'redundant-bais'"),
        (["--format", "xml", "src"], "invalid choice: 'xml'"),
        (["--jobs", "0", "src"], "expected a positive integer"),
        (["--statistics", "--format", "sarif", "src"], "--statistics works with"),
        (["missing/"], "path not found: missing/"),
        (["--config", "nope.toml", "src"], "config file not found"),
        (["--output-file", "no/such/dir/report.txt", "src"], "cannot write no/such/dir/report.txt"),
    ],
)
def test_usage_errors_exit_2_with_one_line(project: Path, args: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert check(*args) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("bnlint: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and captured.out == ""


def test_an_unexpected_exception_asks_for_a_bug_report(project: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import bnlint.engine

    def explode(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(bnlint.engine, "lint_paths", explode)
    assert check("src") == 2
    err = capsys.readouterr().err
    assert err.startswith("bnlint: internal error: RuntimeError: boom. This is a bug in bnlint")
    assert "Traceback" not in err
    monkeypatch.setenv("BNLINT_DEBUG", "1")
    assert check("src") == 2
    assert "Traceback" in capsys.readouterr().err


# --- check ------------------------------------------------------------------------------


def test_findings_fail_at_the_default_level_in_concise_format(project: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert check("src") == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines and all(CONCISE_LINE.match(line) for line in lines)
    assert lines[0].startswith("src/bias.py:4:5: warning: BN304 ")
    assert captured.err.startswith("Found 0 errors, 1 warning, 0 info in 2 files")


def test_check_is_the_default_command(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-cache", "src/bias.py"]) == 1
    assert capsys.readouterr().out.startswith("src/bias.py:4:5: warning: BN304 ")


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["--fail-on", "error"], 0),
        (["--fail-on", "info"], 1),
        (["--exit-zero"], 0),
        (["--ignore", "BN3"], 0),
        (["--select", "num-features-mismatch"], 0),
        (["--select", "BN302", "--extend-select", "BN304"], 1),
    ],
)
def test_exit_status_follows_fail_on_and_selection(project: Path, args: list[str], status: int) -> None:
    assert check(*args, "src") == status


def test_fail_on_from_the_configuration(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.bnlint]\nfail-on = "error"\n')
    assert check("src") == 0
    assert check("--fail-on", "warning", "src") == 1


def test_clean_run(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("src/clean.py") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "All checks passed (1 file).\n"


def test_json_output_file(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--format", "json", "--output-file", "report.json", "src") == 1
    assert capsys.readouterr().out == ""
    findings = json.loads((project / "report.json").read_text())
    assert [(finding["path"], finding["line"], finding["code"]) for finding in findings] == [("src/bias.py", 4, "BN304")]


def test_sarif_and_github_formats(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--format", "sarif", "src") == 1
    log = json.loads(capsys.readouterr().out)
    assert [result["ruleId"] for result in log["runs"][0]["results"]] == ["BN304"]
    assert check("--format", "github", "src") == 1
    assert capsys.readouterr().out.startswith("::warning file=src/bias.py,line=4,col=5,")


def test_full_format_shows_the_source_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--format", "full", "src/bias.py") == 1
    out = capsys.readouterr().out
    assert "4 |     nn.Conv2d(3, 64, kernel_size=3),\n  |     ^^^^" in out
    assert "= why: " in out and "= fix: " in out and "(unsafe)" in out


def test_statistics(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--statistics", "src") == 1
    out = capsys.readouterr().out
    assert re.search(r"1 .*BN304 .*redundant-bias .*0", out)


def test_fix_applies_safe_fixes_and_reports_what_remains(project: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    target = project / "src" / "momentum.py"
    target.write_text(KERAS_MOMENTUM)
    assert check("--fix", "src") == 1  # BN304's fix is unsafe: it remains
    assert "momentum=0.1" in target.read_text()
    captured = capsys.readouterr()
    assert "BN304" in captured.out and "BN306" not in captured.out
    assert "Fixed 1 issue." in captured.err
    assert "(1 fixable with --fix --unsafe-fixes)" in captured.err

    assert check("--fix", "--unsafe-fixes", "src") == 0
    assert "bias=False" in (project / "src" / "bias.py").read_text()


def test_diff_prints_changes_writes_nothing_and_fails(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--diff", "--unsafe-fixes", "src") == 1
    captured = capsys.readouterr()
    assert "+    nn.Conv2d(3, 64, kernel_size=3, bias=False)," in captured.out
    assert (project / "src" / "bias.py").read_text() == REDUNDANT_BIAS
    assert check("--diff", "src/clean.py") == 0


def test_unsafe_fixes_alone_only_changes_the_fixable_counts(project: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert check("--unsafe-fixes", "src") == 1
    assert "(1 fixable with --fix)" in capsys.readouterr().err
    assert (project / "src" / "bias.py").read_text() == REDUNDANT_BIAS


STALE_NOQA = CLEAN.replace("nn.BatchNorm2d(64))", "nn.BatchNorm2d(64))  # noqa: BN304")


@pytest.mark.parametrize("fmt", ["concise", "full", "json", "json-lines", "sarif", "github", "gitlab", "junit",
                                 "pylint", "rdjson", "azure"])
def test_report_unused_noqa_is_a_bn001_finding_in_every_format(project: Path, fmt: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (project / "src" / "clean.py").write_text(STALE_NOQA)
    assert check("--format", fmt, "src/clean.py") == 0
    off = capsys.readouterr().out.count("BN001")  # SARIF describes every rule, used or not
    assert off == 0 or fmt == "sarif"  # off unless asked for
    assert check("--format", fmt, "--report-unused-noqa", "src/clean.py") == 1  # a warning, like any finding
    captured = capsys.readouterr()
    assert captured.out.count("BN001") > off and "BN001" not in captured.err


def test_unused_noqa_concise_line_matches_the_contract_and_is_selectable(project: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (project / "src" / "clean.py").write_text(STALE_NOQA)
    assert check("--report-unused-noqa", "src/clean.py") == 1
    assert CONCISE_LINE.match(capsys.readouterr().out.strip()).groups()[1:] == (
        "3", "88", "warning", "BN001", "unused noqa directive (BN304)")
    assert check("--select", "ALL", "src/clean.py") == 0  # ALL leaves the opt-in rule off ...
    assert check("--extend-select", "unused-noqa", "src/clean.py") == 1  # ... naming it turns it on
    assert check("--report-unused-noqa", "--ignore", "BN304", "src/clean.py") == 0  # the rule is off: kept


def test_python_dash_m_runs_the_cli(project: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bnlint", "--no-cache", "--format", "json", "src"],
        capture_output=True, text=True, check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert [finding["code"] for finding in json.loads(completed.stdout)] == ["BN304"]
    assert completed.stderr == ""
