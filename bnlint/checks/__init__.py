"""Rules: one small module each (`bnNNN_name.py`), found here by its file name.

A check reads the file's facts (bnlint.semantics) and yields findings anchored on CST
nodes; the engine keeps the first finding of a rule at a node, places those seen in
another file's helper, and turns nodes into positions and fixes into text edits, only for
what is reported. Metadata and documentation live in `rules/BNxxx.md` (bnlint.registry).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, ClassVar

import libcst as cst

from bnlint.diagnostics import Applicability
from bnlint.fixes import Replacement
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.usage import Site
from bnlint.semantics.project.index import ProjectIndex
from bnlint.semantics.project.loading import loaded_module


@dataclass(frozen=True)
class NodeFix:
    """A fix as CST node replacements; the engine renders it into text edits."""

    applicability: Applicability
    message: str
    replacements: tuple[Replacement, ...]


@dataclass(frozen=True)
class Finding:
    code: str
    node: cst.CSTNode  # the anchor (rules.md's "reported line")
    message: str
    fix: NodeFix | None = None
    # Where the event was seen, for findings about how models are used: it may be in a
    # helper of another file, which the engine then places there (or drops).
    site: Site | None = None


@dataclass(frozen=True)
class HelperUse:
    """What this file saw of a layer built in a module-level helper (here or in another
    file): `finding` when every use here makes the rule apply, None when a use here rules
    it out. The engine merges these across files (bnlint.crossfile)."""

    path: str  # the file holding the helper
    helper: cst.FunctionDef | cst.ClassDef  # a class: BN301 at the batch norm of another file's cell
    node: cst.CSTNode
    finding: Finding | None
    sufficient: bool = False  # one file's finding stands on its own (a use seen through a call)


@dataclass
class CheckContext:
    facts: FileFacts
    options: dict[str, Any] = field(default_factory=dict)
    helper_uses: list[HelperUse] = field(default_factory=list)
    project: ProjectIndex | None = None  # the run's files, for rules that look into other files

    def source(self, node: cst.CSTNode, path: str | None = None) -> str:
        """The code of a node of this file, or of the file at `path` that the analysis
        followed a call into."""
        if path is None or path == self.facts.path:
            return self.facts.module.code_for_node(node)
        module = loaded_module(path)
        return module.code_for_node(node) if module is not None else "…"

    def seen_in_helper(self, site: Site, finding: Finding | None, sufficient: bool = False) -> None:
        """What this file saw at a node of a helper (bnlint.crossfile merges it across files)."""
        assert site.helper is not None
        self.helper_uses.append(HelperUse(site.path, site.helper, site.node, finding, sufficient))


class Check:
    code: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}

    def check(self, context: CheckContext) -> Iterator[Finding]:
        raise NotImplementedError


@cache
def all_checks() -> list[type[Check]]:
    """Every rule's check, in code order: each `bnNNN_*.py` module here defines one."""
    found: list[type[Check]] = []
    for info in pkgutil.iter_modules(__path__):
        if not re.fullmatch(r"bn\d{3}_\w+", info.name):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += [value for value in vars(module).values()
                  if isinstance(value, type) and issubclass(value, Check) and value.__module__ == module.__name__]
    return sorted(found, key=lambda check: check.code)


def option_defaults() -> dict[str, dict[str, Any]]:
    """Configurable options by rule code (validated by bnlint.config)."""
    return {check.code: dict(check.options) for check in all_checks() if check.options}
