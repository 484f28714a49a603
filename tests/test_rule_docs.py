"""The rule documents in rules/*.md: complete, consistent with the catalogue, and their
examples do what they say (every "Example" block is flagged, every "Use instead" block is
not)."""

from __future__ import annotations

import io
import re
import tokenize
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bnlint import registry
from bnlint.diagnostics import Diagnostic

SECTIONS = ("What it does", "Why is this bad?", "Example", "Use instead", "Fix safety", "Options", "References")
FRAMEWORKS = {"torch", "keras"}
# In CI the shared contract sits next to the repository checkout.
CATALOGUE = Path(__file__).resolve().parents[2] / "shared" / "rules.md"

RULES = registry.all_rules()


def _blocks(title: str) -> list[Any]:
    return [
        pytest.param(code, block, id=f"{code}-{index}")
        for code, rule in RULES.items()
        for index, block in enumerate(rule.examples(title), start=1)
    ]


def _lint(source: str, code: str) -> list[Diagnostic]:
    # Imported here so the metadata tests run even while the engine is being built.
    from bnlint.config import load_config
    from bnlint.engine import lint_source

    # An opt-in rule (BN001) is on only when named, so its own examples name it.
    config = load_config(Path.cwd()).with_overrides(select=["ALL", code])
    return lint_source(source, config=config)


def _framework_of(block: str) -> set[str]:
    imports = re.findall(r"^\s*(?:import|from)\s+(\w+)", block, re.M)
    return {"keras" if name in ("keras", "tensorflow") else name for name in imports} & FRAMEWORKS


def test_release_rules_are_documented() -> None:
    assert {"BN000", "BN302", "BN303", "BN304", "BN305", "BN306"} <= set(RULES)


@pytest.mark.parametrize("code", RULES)
def test_front_matter(code: str) -> None:
    rule = RULES[code]
    assert re.fullmatch(r"BN\d{3}", rule.code)
    assert resources.files("bnlint.ruledocs").joinpath(f"{code}.md").is_file(), "file name must be the code"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name)
    assert rule.frameworks == ("any",) or set(rule.frameworks) <= FRAMEWORKS
    assert rule.summary and "\n" not in rule.summary


@pytest.mark.parametrize("code", RULES)
def test_sections(code: str) -> None:
    rule = RULES[code]
    assert rule.documentation.startswith(f"# {rule.name} ({rule.code})\n")
    headings = re.findall(r"^## (.+)$", rule.documentation, re.M)
    assert tuple(headings) == SECTIONS
    for title in SECTIONS:
        assert rule.section(title), f"{code}: section '{title}' is empty"
    assert rule.examples("Example"), f"{code}: no ```python block under 'Example'"
    assert rule.examples("Use instead"), f"{code}: no ```python block under 'Use instead'"


@pytest.mark.parametrize("code", [code for code, rule in RULES.items() if rule.frameworks != ("any",)])
def test_examples_cover_each_framework(code: str) -> None:
    rule = RULES[code]
    shown = set().union(*(_framework_of(block) for block in rule.examples("Example")))
    assert shown == set(rule.frameworks)


@pytest.mark.parametrize("code", RULES)
def test_options_section_lists_the_rule_options(code: str) -> None:
    from bnlint.checks import option_defaults

    options = option_defaults().get(code, {})
    text = RULES[code].section("Options")
    if not options:
        assert text == "None."
    for name in options:
        assert f"`{name}`" in text, f"{code}: option '{name}' is not documented"


@pytest.mark.parametrize(("code", "block"), _blocks("Example"))
def test_example_is_flagged(code: str, block: str) -> None:
    found = [diagnostic.code for diagnostic in _lint(block, code)]
    assert code in found, f"expected {code}, got {found or 'nothing'}"


@pytest.mark.parametrize(("code", "block"), _blocks("Use instead"))
def test_use_instead_is_clean(code: str, block: str) -> None:
    flagged = [f"{d.line}:{d.column} {d.message}" for d in _lint(block, code) if d.code == code]
    assert not flagged


def _catalogue_rows() -> dict[str, dict[str, str]]:
    """The rule table of shared/rules.md, by code."""
    rows = {}
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 6 and re.fullmatch(r"BN\d{3}", cells[0]):
            code, name, frameworks, severity, _anchor, autofix = cells
            rows[code] = {
                "name": name,
                "frameworks": frameworks,
                "severity": severity,
                "fix": re.match(r"\w+", autofix).group(),  # "safe: ...", "unsafe: ...", "none"
            }
    return rows


# Opt-in findings about bnlint's own comments (BN001, unused-noqa) are not in the contract,
# which scores findings about models; every rule the contract lists must agree with it.
@pytest.mark.skipif(not CATALOGUE.is_file(), reason="shared/rules.md is not checked out next to the repository")
@pytest.mark.parametrize("code", [code for code, rule in RULES.items() if not rule.opt_in])
def test_agrees_with_catalogue(code: str) -> None:
    rows = _catalogue_rows()
    assert code in rows, f"{code} is not in {CATALOGUE}"
    rule = RULES[code]
    documented = {
        "name": rule.name,
        "frameworks": ", ".join(rule.frameworks),
        "severity": rule.severity.value,
        "fix": rule.fix.value if rule.fix else "none",
    }
    assert documented == rows[code]


def _fixes_offered(code: str, block: str) -> set[str]:
    return {d.fix.applicability.value for d in _lint(block, code) if d.code == code and d.fix is not None}


@pytest.mark.parametrize("code", RULES)
def test_fix_front_matter_matches_the_code(code: str) -> None:
    """`fix:` says what the rule's code offers: its examples get fixes of that safety
    (at least one), or none at all when the document says none."""
    offered = set().union(*(_fixes_offered(code, block) for block in RULES[code].examples("Example")))
    documented = RULES[code].fix
    assert offered == ({documented.value} if documented is not None else set())


def _code_only(source: str) -> list[str]:
    """The source's lines without comments, trailing spaces and blank lines."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    comments = {(token.start[0], token.start[1]) for token in tokens if token.type == tokenize.COMMENT}
    lines = source.splitlines()
    for line, column in comments:
        lines[line - 1] = lines[line - 1][:column]
    return [line.rstrip() for line in lines if line.strip()]


def _fixable_examples() -> list[Any]:
    return [
        pytest.param(code, block, id=f"{code}-{index}")
        for code, rule in RULES.items()
        if rule.fix is not None
        for index, block in enumerate(rule.examples("Example"), start=1)
    ]


@pytest.mark.parametrize(("code", "block"), _fixable_examples())
def test_fixing_an_example_gives_its_use_instead(code: str, block: str) -> None:
    """Applying the rule's own fixes to an example gives one of the document's "Use
    instead" blocks, comments aside (Fixit's `expected_replacement`)."""
    from bnlint.config import load_config
    from bnlint.engine import fix_source

    config = load_config(Path.cwd()).with_overrides(select=[code])
    fixed = fix_source(block, unsafe=True, config=config)
    if fixed == block:
        pytest.skip("the rule offers no fix for this example")
    assert _code_only(fixed) in [_code_only(use) for use in RULES[code].examples("Use instead")]
