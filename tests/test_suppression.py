"""`# noqa`, `# bnlint: skip-file` and reporting directives that suppressed nothing."""

from __future__ import annotations

import pytest

from bnlint.diagnostics import Diagnostic, Edit, Severity, UnusedSuppression
from bnlint.fixes import apply_edits
from bnlint.suppression import Suppressions, unused_noqa_finding


def finding(line: int, code: str = "BN304") -> Diagnostic:
    return Diagnostic("model.py", line, 5, line, 20, code, "rule", Severity.WARNING, "message")


def kept_codes(text: str, findings: list[Diagnostic]) -> list[tuple[int, str]]:
    kept, _ = Suppressions.from_text(text).apply(findings, "model.py")
    return [(diagnostic.line, diagnostic.code) for diagnostic in kept]


@pytest.mark.parametrize(
    "comment",
    ["# noqa", "#noqa", "# NOQA", "# noqa: BN304", "# noqa:BN304", "# noqa: bn304", "# noqa: E501, BN304",
     "# noqa: BN305 BN304", "# type: ignore  # noqa: BN304 because the bias is folded",
     "# noqa BN305"],  # without a colon the codes are prose: a bare noqa
)  # fmt: skip
def test_noqa_forms_that_suppress_bn304(comment: str) -> None:
    text = f"conv = nn.Conv2d(3, 8, 3)  {comment}\nbn = nn.BatchNorm2d(8)\n"
    assert kept_codes(text, [finding(1), finding(2, "BN305")]) == [(2, "BN305")]


@pytest.mark.parametrize("comment", ["# noqa: BN305", "# noqa: E501", "# no qa", "# noqa-like"])
def test_noqa_forms_that_leave_bn304(comment: str) -> None:
    text = f"conv = nn.Conv2d(3, 8, 3)  {comment}\n"
    assert kept_codes(text, [finding(1)]) == [(1, "BN304")]


def test_noqa_inside_a_string_does_not_count() -> None:
    text = 'conv = nn.Conv2d(3, 8, 3, name="x  # noqa")\ndoc = """\n# noqa\n"""\n'
    assert kept_codes(text, [finding(1), finding(3)]) == [(1, "BN304"), (3, "BN304")]


def test_a_noqa_applies_to_findings_starting_on_its_line_only() -> None:
    text = "net = nn.Sequential(  # noqa\n    nn.Linear(4, 8),\n)\n"
    assert kept_codes(text, [finding(1), finding(2)]) == [(2, "BN304")]


def test_skip_file_must_be_a_comment_on_its_own_line() -> None:
    assert Suppressions.from_text("# bnlint: skip-file\nimport torch\n").skip_file
    assert Suppressions.from_text("import torch\n\n  #bnlint:skip-file\n").skip_file
    assert not Suppressions.from_text("import torch  # bnlint: skip-file\n").skip_file
    assert not Suppressions.from_text('HELP = """\n# bnlint: skip-file\n"""\n').skip_file


def test_text_without_directives_has_none() -> None:
    suppressions = Suppressions.from_text("import torch\n")
    assert not suppressions.skip_file and not suppressions.directives


def test_broken_source_keeps_the_directives_read_before_the_break() -> None:
    suppressions = Suppressions.from_text("# bnlint: skip-file\nx = (1,\n")
    assert suppressions.skip_file
    assert Suppressions.from_text("x = '''\n# noqa\n").directives == {}


def test_directives_that_suppressed_nothing_are_reported() -> None:
    text = (
        "a = 1  # noqa\n"  # bare, suppressed nothing
        "b = 2  # noqa: BN304, BN305\n"  # BN305 suppressed nothing
        "c = 3  # noqa: BN304\n"  # used
        "d = 4  # noqa: E501\n"  # another tool's: not ours to judge
        "e = 5  # noqa\n"  # bare, used
    )
    kept, unused = Suppressions.from_text(text).apply([finding(2), finding(3), finding(5, "BN302")], "model.py")
    assert kept == []
    assert unused == [
        UnusedSuppression("model.py", 1, 8, 14, (), Edit(1, 6, 1, 14, "")),  # the directive and the spaces before it
        UnusedSuppression("model.py", 2, 8, 28, ("BN305",), Edit(2, 16, 2, 28, "BN304")),  # the code list
    ]


@pytest.mark.parametrize(
    ("line", "fixed"),
    [
        ("x = 1  # noqa: BN304\n", "x = 1\n"),
        ("    # noqa: BN304\n", "\n"),  # a comment on a line of its own
        ("x = 1  # noqa: E501, BN304\n", "x = 1  # noqa: E501\n"),  # another tool's code stays
        ("x = 1  # NOQA:BN304,BN302\n", "x = 1  # NOQA:BN302\n"),  # BN302 was used
        ("x = 1  # noqa: BN304 - keep for now\n", None),  # more than the directive: no fix
        ("x = 1  # type: ignore  # noqa: BN304\n", None),
    ],
)
def test_the_bn001_fix_drops_unused_codes_or_the_directive(line: str, fixed: str | None) -> None:
    _, unused = Suppressions.from_text(line).apply([finding(1, "BN302")], "model.py")
    assert len(unused) == 1
    diagnostic = unused_noqa_finding(unused[0])
    if fixed is None:
        assert diagnostic.fix is None
        return
    assert diagnostic.fix is not None and diagnostic.fix.applicability.value == "safe"
    assert apply_edits(line, [diagnostic])[0] == fixed


def test_an_unused_directive_becomes_a_bn001_finding_spanning_it() -> None:
    bare = unused_noqa_finding(UnusedSuppression("model.py", 1, 8, 14, ()))
    listed = unused_noqa_finding(UnusedSuppression("model.py", 2, 8, 28, ("BN305",)))
    assert (bare.code, bare.rule, bare.severity, bare.column, bare.end_column) == (
        "BN001", "unused-noqa", Severity.WARNING, 8, 14)
    assert bare.message == "unused noqa directive (no finding on this line)"
    assert listed.message == "unused noqa directive (BN305)"


def test_codes_of_disabled_rules_are_not_reported_unused() -> None:
    text = "b = 2  # noqa: BN304, BN305\n"
    _, unused = Suppressions.from_text(text).apply([], "model.py", is_enabled=lambda code: code == "BN304")
    assert unused == [UnusedSuppression("model.py", 1, 8, 28, ("BN304",), Edit(1, 16, 1, 28, "BN305"))]
