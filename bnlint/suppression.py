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
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bnlint.diagnostics import Diagnostic, UnusedSuppression

_CANDIDATE = re.compile(r"noqa|bnlint:", re.I)  # cheap test before tokenizing
_NOQA = re.compile(r"#\s*noqa(?![\w-])(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.I)
_SKIP_FILE = re.compile(r"#\s*bnlint:\s*skip-file\s*$", re.I)
_OWN_CODE = "BN"


@dataclass(frozen=True)
class NoqaDirective:
    line: int
    column: int  # 1-based column of the `#`
    codes: tuple[str, ...]  # upper-case bnlint codes; empty for a bare `# noqa`

    def suppresses(self, code: str) -> bool:
        return not self.codes or code in self.codes


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
                directive = _parse_noqa(token.string, line, column + 1)
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
                    unused.append(UnusedSuppression(path, directive.line, directive.column))
                continue
            idle = tuple(
                code for code in directive.codes
                if code not in (matched or ()) and (is_enabled is None or is_enabled(code))
            )  # fmt: skip
            if idle:
                unused.append(UnusedSuppression(path, directive.line, directive.column, idle))
        return kept, unused


def _parse_noqa(comment: str, line: int, column: int) -> NoqaDirective | None:
    match = _NOQA.search(comment)
    if match is None:
        return None
    if match.group("codes") is None:
        return NoqaDirective(line, column, ())
    codes = tuple(code.upper() for code in re.split(r"[\s,]+", match.group("codes")))
    own = tuple(dict.fromkeys(code for code in codes if code.startswith(_OWN_CODE)))
    return NoqaDirective(line, column, own) if own else None
