"""The human and line-oriented formats: full, concise, json, github, and the shared summary."""

from __future__ import annotations

import dataclasses
import io
import json
import re

import pytest
from test_report_fixtures import RULES, UNSAFE_FIX, diagnostic, empty_report, sample_report

from bnlint.diagnostics import FileResult
from bnlint.errors import UsageError
from bnlint.report import FORMATS, Report, ReportOptions, check_options, render
from bnlint.report.github import escape_data, escape_property, format_command

CONCISE_LINE = re.compile(r"^(.+):(\d+):(\d+): (error|warning|info): (BN\d{3}) (.+)$")


def run(fmt: str, report: Report, **options: bool) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    render(fmt, report, ReportOptions(**options), out=out, err=err)
    return out.getvalue(), err.getvalue()


def test_concise_stdout_is_only_findings_matching_the_contract_regex() -> None:
    out, err = run("concise", sample_report())
    lines = out.splitlines()
    assert len(lines) == 3
    assert all(CONCISE_LINE.match(line) for line in lines)
    assert lines[0] == "notebooks/train.ipynb:cell 3:2:5: info: BN305 Dropout directly before BatchNorm1d"
    assert lines[2] == "src/model.py:5:9: error: BN302 BatchNorm2d(32) follows a layer with 64 channels"
    assert err.rstrip().endswith(
        "Found 1 error, 1 warning, 1 info in 12 files (1 fixable with --fix; 1 more with --unsafe-fixes)."
    )


def test_concise_keeps_a_multiline_message_on_one_line() -> None:
    finding = diagnostic("BN304", 1, 1, 5, "first line\nsecond line", path="a.py")
    out, _ = run("concise", Report([FileResult("a.py", [finding])], RULES, files_checked=1))
    assert out == "a.py:1:1: warning: BN304 first line second line\n"


def test_full_shows_source_with_carets_why_and_fix() -> None:
    out, err = run("full", sample_report())
    assert err == ""
    block = out.split("\n\n")[1]
    assert block.splitlines() == [
        "src/model.py:4:9: BN304 `Conv2d` feeds `BatchNorm2d`: its bias is cancelled",
        "  |",
        "4 |         nn.Conv2d(3, 64, 3),",
        "  |         ^^^^^^^^^^^^^^^^^^^",
        "  |",
        "  = why: batch norm cancels a bias added just before it",
        "  = fix: Set `bias=False` (unsafe)",
    ]
    assert "= fix: none available" in out
    assert out.rstrip().endswith("(1 fixable with --fix; 1 more with --unsafe-fixes).")


def test_full_without_the_source_line_still_reports_the_finding() -> None:
    finding = diagnostic("BN302", 7, 3, 9, "mismatch", path="a.py")
    out, _ = run("full", Report([FileResult("a.py", [finding])], RULES, files_checked=1))
    assert out.startswith("a.py:7:3: BN302 mismatch\n  = why: ")


def test_full_underlines_to_the_end_of_the_first_line_of_a_multiline_span_with_tabs() -> None:
    finding = dataclasses.replace(diagnostic("BN304", 2, 2, 4, "spans lines", path="a.py"), end_line=3)
    result = FileResult("a.py", [finding], source_lines={(0, 2): "\tnn.Conv2d(\n"})
    out, _ = run("full", Report([result], RULES, files_checked=1))
    assert "2 |     nn.Conv2d(\n  |     ^^^^^^^^^^\n" in out


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_full_is_coloured_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    out, _ = run("full", sample_report())
    assert "\x1b[" not in out
    terminal = FakeTerminal()
    render("full", sample_report(), ReportOptions(), out=terminal, err=io.StringIO())
    assert "\x1b[" in terminal.getvalue()
    assert colours(terminal.getvalue()) >= {"31", "33", "36"}  # red, yellow, cyan by severity
    monkeypatch.setenv("NO_COLOR", "1")  # no-color.org: no colour; bold stays
    terminal = FakeTerminal()
    render("full", sample_report(), ReportOptions(), out=terminal, err=io.StringIO())
    assert colours(terminal.getvalue()) == set()


def colours(text: str) -> set[str]:
    """The foreground colour parameters of the SGR escape sequences in `text`."""
    parameters = {part for codes in re.findall(r"\x1b\[([0-9;]*)m", text) for part in codes.split(";")}
    return {part for part in parameters if part.startswith(("3", "9")) and len(part) == 2}


def test_json_is_the_contract_array_and_nothing_else() -> None:
    out, err = run("json", sample_report())
    assert err == ""
    findings = json.loads(out)
    assert [finding["code"] for finding in findings] == ["BN305", "BN304", "BN302"]
    types = {"path": str, "line": int, "column": int, "end_line": int, "end_column": int, "code": str,
             "rule": str, "severity": str, "message": str}
    for finding in findings:
        for key, kind in types.items():
            assert isinstance(finding[key], kind), key
        assert finding["severity"] in ("error", "warning", "info")
        assert finding["fix"] is None or finding["fix"]["applicability"] in ("safe", "unsafe")
    assert findings[0]["cell"] == 3 and "cell" not in findings[1]
    assert findings[1]["fix"]["edits"] == [{"line": 4, "column": 27, "end_line": 4, "end_column": 27, "content": ", bias=False"}]


def test_json_of_a_clean_run_is_an_empty_array() -> None:
    out, _ = run("json", empty_report())
    assert json.loads(out) == []


def test_json_statistics() -> None:
    out, _ = run("json", sample_report(), statistics=True, unsafe_fixes=True)
    assert json.loads(out) == [
        {"count": 1, "code": "BN302", "rule": "num-features-mismatch", "fixable": 1},
        {"count": 1, "code": "BN304", "rule": "redundant-bias", "fixable": 1},
        {"count": 1, "code": "BN305", "rule": "dropout-before-bn", "fixable": 0},
    ]


def test_statistics_table_replaces_the_findings() -> None:
    report = sample_report()
    extra = diagnostic("BN304", 6, 9, 20, "another bias")
    report.results[1].diagnostics.append(extra)
    out, err = run("concise", report, statistics=True)
    rows = [line for line in out.splitlines() if "BN3" in line]
    assert [re.findall(r"\w[\w-]*", row) for row in rows] == [
        ["2", "BN304", "redundant-bias", "0"],
        ["1", "BN302", "num-features-mismatch", "1"],
        ["1", "BN305", "dropout-before-bn", "0"],
    ]
    assert not any(CONCISE_LINE.match(line) for line in out.splitlines())
    assert err.startswith("Found 1 error, 2 warnings, 1 info")


@pytest.mark.parametrize("fmt", ["sarif", "github"])
def test_statistics_is_rejected_by_machine_formats(fmt: str) -> None:
    with pytest.raises(UsageError, match="--statistics"):
        check_options(fmt, ReportOptions(statistics=True))


def test_github_commands_and_levels() -> None:
    out, err = run("github", sample_report())
    assert out.splitlines() == [
        "::notice file=notebooks/train.ipynb,line=41,col=10,title=BN305 (dropout-before-bn)::"
        "cell 3, line 2, column 5: Dropout directly before BatchNorm1d",
        "::warning file=src/model.py,line=4,col=9,endLine=4,endColumn=28,title=BN304 (redundant-bias)::"
        "`Conv2d` feeds `BatchNorm2d`: its bias is cancelled",
        "::error file=src/model.py,line=5,col=9,endLine=5,endColumn=27,title=BN302 (num-features-mismatch)::"
        "BatchNorm2d(32) follows a layer with 64 channels",
    ]
    assert err.startswith("Found ")


def test_github_escaping() -> None:
    assert escape_data("100%\r\nnext: a, b") == "100%25%0D%0Anext: a, b"
    assert escape_property("dir:a,b%\n") == "dir%3Aa%2Cb%25%0A"
    finding = diagnostic("BN304", 1, 1, 2, "50% off\nnow", path="we,ird:name.py")
    assert format_command(finding) == (
        "::warning file=we%2Cird%3Aname.py,line=1,col=1,endLine=1,endColumn=2,"
        "title=BN304 (redundant-bias)::50%25 off%0Anow"
    )


@pytest.mark.parametrize(
    ("options", "fixed", "expected"),
    [
        ({}, None, "Found 1 error, 1 warning, 1 info in 12 files (1 fixable with --fix; 1 more with --unsafe-fixes)."),
        ({"unsafe_fixes": True}, None, "Found 1 error, 1 warning, 1 info in 12 files (2 fixable with --fix)."),
        ({}, 3, "Fixed 3 issues.\nFound 1 error, 1 warning, 1 info in 12 files (1 fixable with --fix; 1 more with --unsafe-fixes)."),
    ],
)
def test_summary_counts_fixes_by_applicability(options: dict[str, bool], fixed: int | None, expected: str) -> None:
    _, err = run("concise", sample_report(fixed_count=fixed), **options)
    assert err == expected + "\n"


def test_summary_of_unsafe_only_fixes_and_of_a_clean_run() -> None:
    finding = diagnostic("BN304", 1, 1, 2, "bias", path="a.py", fix=UNSAFE_FIX)
    _, err = run("concise", Report([FileResult("a.py", [finding])], RULES, files_checked=1))
    assert err == "Found 0 errors, 1 warning, 0 info in 1 file (1 fixable with --fix --unsafe-fixes).\n"
    _, err = run("concise", empty_report())
    assert err == "All checks passed (1 file).\n"


def test_unreadable_files_are_reported_on_stderr_in_every_format() -> None:
    report = Report([FileResult("bad.py", error="bad.py: not valid UTF-8")], RULES, files_checked=1)
    for fmt in FORMATS:
        out, err = run(fmt, report)
        assert "bnlint: error: bad.py: not valid UTF-8" in err
        assert "bad.py" not in out or fmt in ("sarif", "junit")  # their documents have a place for it


def test_problem_matcher_reads_concise_lines_including_info_and_notebooks() -> None:
    from importlib import resources

    matchers = json.loads(resources.files("bnlint.report").joinpath("bnlint-problem-matcher.json").read_text())
    assert [matcher["owner"] for matcher in matchers] == ["bnlint", "bnlint"]
    out, _ = run("concise", sample_report())
    notebook, bias, features = out.splitlines()

    def parse(line: str) -> dict[str, str]:
        """What VS Code reads from the line: the fields of the one matcher whose regexp matches it."""
        found = [(m["pattern"], re.match(m["pattern"]["regexp"], line)) for m in matchers]
        matched = [(pattern, match) for pattern, match in found if match]
        assert len(matched) == 1, line
        pattern, match = matched[0]
        fields = ("file", "line", "column", "severity", "code", "message")
        return {field: match.group(pattern[field]) for field in fields if field in pattern} | (
            {"kind": pattern["kind"]} if "kind" in pattern else {})

    assert parse(bias) == {"file": "src/model.py", "line": "4", "column": "9", "severity": "warning",
                           "code": "BN304", "message": "`Conv2d` feeds `BatchNorm2d`: its bias is cancelled"}
    # A notebook line names the notebook file (not `train.ipynb:cell 3`), keeps the cell in the
    # message and marks the whole file: its lines are the cell's, not the file's.
    assert parse(notebook) == {"file": "notebooks/train.ipynb", "severity": "info", "code": "BN305", "kind": "file",
                               "message": "cell 3:2:5: info: BN305 Dropout directly before BatchNorm1d"}
    assert parse(features)["severity"] == "error"


def test_summary_does_not_claim_success_when_a_file_could_not_be_read() -> None:
    unreadable = FileResult("latin.py", error="latin.py: not valid UTF-8 (byte 0xff at offset 5)")
    report = Report([unreadable, FileResult("ok.py")], RULES, files_checked=2)
    _, err = run("concise", report)
    assert "No findings in 2 files, but 1 file could not be checked." in err
    assert "All checks passed" not in err
