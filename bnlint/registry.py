"""The rule catalogue: metadata and documentation, read from `rules/*.md`.

Each rule's documentation exists once, as `rules/BNxxx.md` (installed as the package
`bnlint.ruledocs`). Its front matter holds the metadata the engine and reporters need;
its body is what `bnlint rule CODE` prints, and its ```python blocks under "Example" and
"Use instead" run as tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from bnlint.diagnostics import Applicability, Severity

# Where the rule documents are published: `rules/` of the source repository. SARIF's
# helpUri and the other formats' rule links point here; `bnlint rule CODE` prints the same text.
RULE_DOCS_URL = "https://github.com/bnlint/bnlint/blob/main/rules/{code}.md"
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.S)
_CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@dataclass(frozen=True)
class RuleInfo:
    code: str
    name: str
    severity: Severity
    frameworks: tuple[str, ...]
    fix: Applicability | None
    summary: str
    documentation: str  # markdown body, without front matter
    # On only when named by code or name (or by its own flag), never through ALL or a prefix:
    # findings about bnlint's own comments, not about the code (`opt-in: true`).
    opt_in: bool = False

    def section(self, title: str) -> str:
        """The text of one `## title` section of the documentation ('' if absent)."""
        match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", self.documentation, re.S | re.M)
        return match.group(1).strip() if match else ""

    def examples(self, title: str) -> list[str]:
        """The python code blocks of one section (used by the doc tests)."""
        return _CODE_BLOCK.findall(self.section(title))


def _parse(text: str) -> RuleInfo:
    match = _FRONT_MATTER.match(text)
    if not match:
        raise ValueError("rule document has no front matter")
    meta = dict(line.split(":", 1) for line in match.group(1).splitlines() if line.strip())
    meta = {key.strip(): value.strip() for key, value in meta.items()}
    fix = meta.get("fix", "none")
    return RuleInfo(
        code=meta["code"],
        name=meta["name"],
        severity=Severity(meta["severity"]),
        frameworks=tuple(part.strip() for part in meta["frameworks"].split(",")),
        fix=None if fix == "none" else Applicability(fix),
        summary=meta["summary"],
        documentation=text[match.end():].strip() + "\n",
        opt_in=meta.get("opt-in", "false") == "true",
    )


@cache
def all_rules() -> dict[str, RuleInfo]:
    """Every documented rule by code, in code order."""
    docs = resources.files("bnlint.ruledocs")
    rules = [_parse(entry.read_text(encoding="utf-8")) for entry in docs.iterdir() if entry.name.endswith(".md")]
    return {rule.code: rule for rule in sorted(rules, key=lambda rule: rule.code)}


def rule_info(code: str) -> RuleInfo:
    return all_rules()[code]


def rule_url(code: str) -> str:
    """The published documentation of a rule."""
    return RULE_DOCS_URL.format(code=code)


def find_rule(code_or_name: str) -> RuleInfo | None:
    """Look a rule up by code (`BN304`, any case) or name (`redundant-bias`)."""
    key = code_or_name.strip()
    for rule in all_rules().values():
        if key.upper() == rule.code or key == rule.name:
            return rule
    return None
