"""Fuzzing (issue 8), seeded and bounded: generated modules (hypothesmith) and real model
code mutated with odd bytes never make an internal error, and --fix changes nothing
outside its edits, leaves code that parses, and has nothing left to do the second time."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import hypothesmith
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bnlint.cli import main
from bnlint.engine import Linter, _default_config
from bnlint.errors import SourceError
from bnlint.files import SourceFile
from bnlint.fixes import FixMode, FixRefused, applicable
from bnlint.positions import LineIndex

# A real model's code with fixable findings (BN304 unsafe, BN306 safe) and places where
# odd characters may stand: in comments, in strings, as the whitespace a line starts with.
MODEL = (
    "{bom}import torch.nn as nn  # layers{c0}\n"
    "\n"
    "NOTE = 'stem{c1}block'\n"
    "{ff}\n"
    "class Stem(nn.Module):\n"
    "    '''Conv, BN{c2}, ReLU.'''\n"
    "\n"
    "    def __init__(self):\n"
    "        super().__init__()  # {c3}\n"
    "        self.conv = nn.Conv2d(3, 64, 3, bias=True)\n"
    "{ff}        self.bn = nn.BatchNorm2d(64, momentum=0.9)  # was {c4}\n"
    "\n"
    "    def forward(self, x):\n"
    "        return self.bn(self.conv(x))\n"
)
ODD = ["", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\t", "é"]
# 60 examples per property in CI (seeded: the same ones each run); BNLINT_FUZZ_EXAMPLES
# runs a longer campaign.
FUZZ = settings(max_examples=int(os.environ.get("BNLINT_FUZZ_EXAMPLES", "60")), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])


def _linter() -> Linter:
    return Linter(_default_config())


def _fixable_spans(linter: Linter, text: str) -> list[tuple[int, int]]:
    """The offsets of the first round's edits."""
    result, kept = linter.lint_file(SourceFile(Path("fuzzed.py"), "fuzzed.py", text))
    assert result.error is None
    index = LineIndex(text)
    return [(index.offset(edit.line, edit.column), index.offset(edit.end_line, edit.end_column))
            for diagnostic in applicable(kept, FixMode.UNSAFE) for edit in diagnostic.fix.edits]  # type: ignore[union-attr]


def _check_fix_properties(text: str) -> None:
    linter = _linter()
    try:
        spans = _fixable_spans(linter, text)
        fixed, _ = linter.fix_text(text, "fuzzed.py", FixMode.UNSAFE)
    except (SourceError, FixRefused):
        return  # one clear line for the user, no internal error
    if fixed == text:
        return
    # Nothing outside the edits changed: the text before the first and after the last
    # edit of the first round is kept (later rounds edit only what earlier rounds made).
    assert spans
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    assert fixed.startswith(text[:start])
    assert fixed.endswith(text[end:])
    ast.parse(fixed)
    again, count = linter.fix_text(fixed, "fuzzed.py", FixMode.UNSAFE)
    assert (again, count) == (fixed, 0)


@FUZZ
@given(module=hypothesmith.from_grammar())
def test_generated_modules(module: str) -> None:
    linter = _linter()
    try:
        linter.lint_file(SourceFile(Path("fuzzed.py"), "fuzzed.py", module))
    except SourceError:
        return
    # With a fixable model appended, the fix properties hold too.
    _check_fix_properties(module.rstrip("\\ \t\r\n") + "\n\n" + MODEL.format(bom="", ff="", c0="", c1="", c2="", c3="",
                                                                            c4=""))


@FUZZ
@given(odd=st.lists(st.sampled_from(ODD), min_size=5, max_size=5), form_feed=st.booleans(),
       newline=st.sampled_from(["\n", "\r\n", "\r"]), bom=st.booleans())
def test_mutated_model_code(tmp_path: Path, odd: list[str], form_feed: bool, newline: str, bom: bool) -> None:
    fields = {f"c{index}": character for index, character in enumerate(odd)}
    before = MODEL.format(bom="\ufeff" if bom else "", ff="\x0c" if form_feed else "", **fields)
    before = before.replace("\n", newline)
    after = before.replace("bias=True", "bias=False").replace("momentum=0.9", "momentum=0.1")
    path = tmp_path / "model.py"
    path.write_bytes(before.encode("utf-8"))
    status = main(["check", "--fix", "--unsafe-fixes", "--no-cache", "--jobs", "1", "--format", "concise", str(path)])
    assert status == 0
    assert path.read_bytes() == after.encode("utf-8")
    _check_fix_properties(before.removeprefix("\ufeff"))

