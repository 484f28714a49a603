"""`# noqa` comments and `# bnlint: skip-file`, found with the tokenizer so that text
inside string literals never counts.

- `# noqa` suppresses every finding that starts on its line; `# noqa: BN304, BN305`
  (commas or spaces, any case) only those codes. Codes of other tools (`E501`) are left
  to them: a directive listing only such codes is not bnlint's.
- `# bnlint: skip-file` on a line of its own skips the whole file.
- `apply` also reports directives that suppressed nothing. Listed codes for which the
  optional `is_enabled` says no are not reported: with the rule off, the comment may
  still be needed when it is turned back on.
- Positions are lines of the linted text; the engine maps notebook lines to cells later.
- Unused directives become BN001 findings (`unused_noqa_finding`) when that rule is on.
- `add_noqa` writes directives (`--add-noqa`), merging codes into one already there.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from bnlint.diagnostics import Applicability, Diagnostic, Edit, Fix, UnusedSuppression
from bnlint.positions import LINE_BREAK
from bnlint.registry import rule_info

_CANDIDATE = re.compile(r"noqa|bnlint:", re.I)  # cheap test before tokenizing
_NOQA = re.compile(r"#\s*noqa(?![\w-])(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.I)
_SKIP_FILE = re.compile(r"#\s*bnlint:\s*skip-file\s*$", re.I)
_OWN_CODE = "BN"
UNUSED_NOQA = "BN001"


@dataclass(frozen=True)
class NoqaDirective:
    line: int
    column: int  # 1-based column of the `#`
    end_column: int  # after the directive (end exclusive)
    codes: tuple[str, ...]  # upper-case bnlint codes; empty for a bare `# noqa`
    listed: tuple[str, ...] = ()  # every code as listed, other tools' too
    codes_span: tuple[int, int] | None = None  # columns of the code list, end exclusive
    # Columns that remove the whole directive with the spaces before it; None when the
    # comment holds more than the directive (removing it would uncomment the rest).
    removal_span: tuple[int, int] | None = None

    def suppresses(self, code: str) -> bool:
        return not self.codes or code in self.codes

    def removal(self, idle: tuple[str, ...]) -> Edit | None:
        """The edit dropping the `idle` codes (a bare directive: all of it), if it can be clean."""
        remaining = [code for code in self.listed if code not in idle]
        if remaining and self.codes_span is not None:
            return Edit(self.line, self.codes_span[0], self.line, self.codes_span[1], ", ".join(remaining))
        if not remaining and self.removal_span is not None:
            return Edit(self.line, self.removal_span[0], self.line, self.removal_span[1], "")
        return None


@dataclass(frozen=True)
class Suppressions:
    skip_file: bool = False
    directives: Mapping[int, NoqaDirective] = field(default_factory=dict)  # by line

    @classmethod
    def from_text(cls, text: str) -> Suppressions:
        if not _CANDIDATE.search(text):
            return cls()
        skip_file = False
        directives: dict[int, NoqaDirective] = {}
        try:
            # Universal newlines: a lone CR ends a line here as it does for LibCST.
            for token in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
                if token.type != tokenize.COMMENT:
                    continue
                line, column = token.start
                own_line = not token.line[:column].strip()
                if own_line and _SKIP_FILE.match(token.string):
                    skip_file = True
                directive = _parse_noqa(token, line, column + 1)
                if directive is not None:
                    directives[line] = directive
        except (tokenize.TokenError, SyntaxError):
            pass  # a broken file: keep the directives read before the break; it gets BN000 anyway
        return cls(skip_file, directives)

    def apply(
        self,
        diagnostics: list[Diagnostic],
        path: str,
        is_enabled: Callable[[str], bool] | None = None,
    ) -> tuple[list[Diagnostic], list[UnusedSuppression]]:
        """The findings no directive suppresses, and the directives that suppressed nothing."""
        kept: list[Diagnostic] = []
        used: dict[int, set[str]] = {}
        for diagnostic in diagnostics:
            directive = self.directives.get(diagnostic.line)
            if directive is not None and directive.suppresses(diagnostic.code):
                used.setdefault(directive.line, set()).add(diagnostic.code)
            else:
                kept.append(diagnostic)
        unused: list[UnusedSuppression] = []
        for directive in self.directives.values():
            matched = used.get(directive.line)
            if not directive.codes:
                if matched is None:
                    unused.append(UnusedSuppression(path, directive.line, directive.column, directive.end_column,
                                                    (), directive.removal(())))
                continue
            idle = tuple(
                code for code in directive.codes
                if code not in (matched or ()) and (is_enabled is None or is_enabled(code))
            )  # fmt: skip
            if idle:
                unused.append(UnusedSuppression(path, directive.line, directive.column, directive.end_column, idle,
                                                directive.removal(idle)))
        return kept, unused


def unused_noqa_finding(unused: UnusedSuppression) -> Diagnostic:
    """The BN001 finding for a directive that suppressed nothing, spanning the directive."""
    info = rule_info(UNUSED_NOQA)
    what = f"({', '.join(unused.codes)})" if unused.codes else "(no finding on this line)"
    fix = None
    if unused.removal is not None:
        action = f"Remove {', '.join(unused.codes)} from the directive" if unused.removal.content else \
            "Remove the directive"
        fix = Fix(Applicability.SAFE, action, (unused.removal,))
    return Diagnostic(unused.path, unused.line, unused.column, unused.line, unused.end_column, UNUSED_NOQA,
                      info.name, info.severity, f"unused noqa directive {what}", fix)


def _parse_noqa(comment: tokenize.TokenInfo, line: int, column: int) -> NoqaDirective | None:
    match = _NOQA.search(comment.string)
    if match is None:
        return None
    end_column = column + match.end()
    removal_span = None
    if match.start() == 0 and not comment.string[match.end():].strip():
        code_before = comment.line[: column - 1].rstrip()
        removal_span = (len(code_before) + 1, column + len(comment.string))
    if match.group("codes") is None:
        return NoqaDirective(line, column, end_column, (), (), None, removal_span)
    listed = tuple(code.upper() for code in re.split(r"[\s,]+", match.group("codes")))
    own = tuple(dict.fromkeys(code for code in listed if code.startswith(_OWN_CODE)))
    codes_span = (column + match.start("codes"), column + match.end("codes"))
    return NoqaDirective(line, column, end_column, own, listed, codes_span, removal_span) if own else None


def add_noqa(text: str, codes_by_line: Mapping[int, Iterable[str]]) -> tuple[str, int, list[int]]:
    """`text` with `# noqa: CODE` added to each line (1-based) for its codes: merged into a
    `# noqa: ...` already there (other tools' codes kept), else appended as a comment. Lines
    that end inside a string or with a backslash cannot hold a comment and are returned
    as skipped. Returns the new text, the directives added or extended, and the skipped lines."""
    comments: dict[int, tokenize.TokenInfo] = {}
    open_lines: set[int] = set()  # lines whose end is inside a multi-line token
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token
            elif token.start[0] != token.end[0] and token.type not in (tokenize.NL, tokenize.NEWLINE):
                open_lines.update(range(token.start[0], token.end[0]))
    except (tokenize.TokenError, SyntaxError):
        return text, 0, sorted(codes_by_line)
    pieces = re.split(f"({LINE_BREAK.pattern})", text)  # lines as findings number them
    contents, breaks = pieces[0::2], [*pieces[1::2], ""]
    added, skipped = 0, []
    for number, codes in sorted(codes_by_line.items()):
        wanted = list(dict.fromkeys(code.upper() for code in codes))
        content = contents[number - 1]
        comment = comments.get(number)
        match = _NOQA.search(comment.string) if comment is not None else None
        if match is not None and match.group("codes") is None:
            continue  # a bare directive already suppresses everything
        if match is not None:
            listed = re.split(r"[\s,]+", match.group("codes"))
            missing = [code for code in wanted if code not in (item.upper() for item in listed)]
            if not missing:
                continue
            start = comment.start[1] + match.end()
            content = f"{content[:start]}, {', '.join(missing)}{content[start:]}"
        elif number in open_lines or content.endswith("\\"):
            skipped.append(number)
            continue
        else:
            content = f"{content}  # noqa: {', '.join(wanted)}"
        contents[number - 1] = content
        added += 1
    return "".join(content + line_break for content, line_break in zip(contents, breaks, strict=True)), added, skipped
