"""Helpers for the rule tests: lint a snippet and compare with markers written in it.

A snippet marks each line where a finding is expected with a trailing comment
`# expect: BN304` (several codes: `# expect: BN302, BN304`). The marker sits on the
anchor line rules.md names: the BN constructor (BN302/BN303/BN305), the conv/linear/dense
constructor (BN304), the `momentum=` argument (BN306).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from bnlint.config import load_config
from bnlint.diagnostics import FileResult
from bnlint.engine import RunOptions, lint_paths, lint_source

_MARKER = re.compile(r"#\s*expect:\s*(BN\d{3}(?:\s*,\s*BN\d{3})*)")


def dedent(source: str) -> str:
    """A triple-quoted snippet as a file: common indentation and the leading newline removed."""
    return textwrap.dedent(source).lstrip("\n")


def codes_at(source: str, path: str = "example.py") -> list[tuple[str, int]]:
    """Every finding of the (dedented) source as sorted (code, line) pairs."""
    return sorted((d.code, d.line) for d in lint_source(dedent(source), path))


def expected_at(source: str) -> list[tuple[str, int]]:
    """The (code, line) pairs the snippet's `# expect:` markers announce."""
    pairs = []
    for number, line in enumerate(dedent(source).splitlines(), start=1):
        match = _MARKER.search(line)
        if match:
            pairs += [(code.strip(), number) for code in match.group(1).split(",")]
    return sorted(pairs)



def assert_matches_markers(source: str, code: str, *, flagged: bool) -> None:
    """The snippet's findings are exactly its markers, which do (or do not) include `code`."""
    expected = expected_at(source)
    assert any(marked == code for marked, _ in expected) == flagged
    assert codes_at(source) == expected


def lint_package(root: Path, modules: dict[str, str], codes: set[str], name: str = "proj"
                 ) -> dict[str, list[tuple[str, int]]]:
    """Lint a package `<root>/<name>/` made of these (dedented) modules, with an empty
    `__init__.py`: each module's findings of these codes as sorted (code, line) pairs, by
    module name."""
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / f"{module}.py").write_text(dedent(source))
    run = lint_paths([str(package)], load_config(root), RunOptions(jobs=1, use_cache=False))
    assert_each_file_alone_gets_the_same(run.results, root)
    found = {Path(result.path).stem: sorted((d.code, d.line) for d in result.diagnostics if d.code in codes)
             for result in run.results}
    return {module: found.get(module, []) for module in modules}


def assert_each_file_alone_gets_the_same(whole: list[FileResult], root: Path) -> None:
    """The invariant of project-scoped analysis, over every multi-file test package: a file
    linted alone gets exactly the findings a run over the whole package gives it."""
    for result in whole:
        alone = lint_paths([result.path], load_config(root), RunOptions(jobs=1, use_cache=False)).results
        assert [d.to_json() for d in alone[0].diagnostics] == [d.to_json() for d in result.diagnostics], result.path


def package_markers(modules: dict[str, str]) -> dict[str, list[tuple[str, int]]]:
    """The `# expect:` markers of each module of a package."""
    return {module: expected_at(source) for module, source in modules.items()}
