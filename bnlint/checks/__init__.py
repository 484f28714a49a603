"""Rules: one small module each, registered here by code.

A check reads the file's model (bnlint.semantics) and yields findings anchored on CST
nodes; the engine turns nodes into positions and fixes into text edits, only for what is
reported. Metadata and documentation live in `rules/BNxxx.md` (bnlint.registry).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import libcst as cst

from bnlint.diagnostics import Applicability
from bnlint.semantics.flow import FileModel


@dataclass(frozen=True)
class NodeFix:
    """A fix as CST node replacements; the engine renders it into text edits."""

    applicability: Applicability
    message: str
    replacements: tuple[tuple[cst.CSTNode, cst.CSTNode], ...]


@dataclass(frozen=True)
class Finding:
    code: str
    node: cst.CSTNode  # the anchor (rules.md's "reported line")
    message: str
    fix: NodeFix | None = None


@dataclass(frozen=True)
class HelperUse:
    """What this file saw of a layer built in a module-level helper (here or in another
    file): `finding` when every use here makes the rule apply, None when a use here rules
    it out. The engine merges these across files (bnlint.crossfile)."""

    path: str  # the file holding the helper
    helper: cst.FunctionDef
    node: cst.CSTNode
    finding: Finding | None


@dataclass
class CheckContext:
    model: FileModel
    options: dict[str, Any] = field(default_factory=dict)
    helper_uses: list[HelperUse] = field(default_factory=list)

    def source(self, node: cst.CSTNode) -> str:
        return self.model.module.code_for_node(node)


class Check:
    code: ClassVar[str]
    options: ClassVar[dict[str, Any]] = {}

    def check(self, context: CheckContext) -> Iterator[Finding]:
        raise NotImplementedError


def all_checks() -> list[type[Check]]:
    from bnlint.checks import (
        bn302_num_features_mismatch,
        bn303_bn_dimension_mismatch,
        bn304_redundant_bias,
        bn305_dropout_before_bn,
        bn306_momentum_convention,
    )

    return [
        bn302_num_features_mismatch.NumFeaturesMismatch,
        bn303_bn_dimension_mismatch.BnDimensionMismatch,
        bn304_redundant_bias.RedundantBias,
        bn305_dropout_before_bn.DropoutBeforeBn,
        bn306_momentum_convention.MomentumConvention,
    ]


def option_defaults() -> dict[str, dict[str, Any]]:
    """Configurable options by rule code (validated by bnlint.config)."""
    return {check.code: dict(check.options) for check in all_checks() if check.options}
