"""BN306 momentum-convention: a BN momentum written in the other framework's convention."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Framework, Kind, LayerSpec
from bnlint.semantics.interp.values import Param, Value, as_number

def _complement(value: float) -> str:
    return repr(round(1 - value, 10))


@dataclass(frozen=True)
class _Site:
    """Where a momentum is set: a constructor or partial() argument, or `m.momentum = v`."""

    spec: LayerSpec
    value: Value
    anchor: cst.CSTNode  # the argument, or the assigned expression
    expression: cst.BaseExpression  # what a fix rewrites


class MomentumConvention(Check):
    code = "BN306"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for site in self._sites(context):
            momentum = as_number(site.value)
            if momentum is None or momentum in (0.0, 1.0):
                continue  # 0 and 1 are deliberate (frozen or batch-only statistics)
            torch = site.spec.framework is Framework.TORCH
            if (torch and momentum <= 0.5) or (not torch and momentum >= 0.5):
                continue
            yield self._finding(site, momentum, torch)

    def _sites(self, context: CheckContext) -> Iterator[_Site]:
        model = context.facts
        arguments = [(layer.spec, layer.args.get("momentum")) for layer in [*model.own_layers(), *model.functional_bn]]
        arguments += [(ref.spec, ref.bound.get("momentum")) for ref in model.partials]
        for spec, info in arguments:
            if info is not None and info.node is not None:
                yield _Site(spec, info.value, info.node, info.node.value)
        for write in model.attribute_writes:
            if write.attribute == "momentum" and write.spec.kind is Kind.BATCH_NORM:
                yield _Site(write.spec, write.value, write.node, write.node)

    def _finding(self, site: _Site, momentum: float, torch: bool) -> Finding:
        value = site.value
        via = f" (default of parameter `{value.name}`)" if isinstance(value, Param) else ""
        convention, own = ("Keras", "PyTorch") if torch else ("PyTorch", "Keras")
        message = (f"{site.spec.name} momentum={momentum:g}{via} follows the {convention} convention; "
                   f"in {own} the same behaviour is momentum={_complement(momentum)}")
        fix = None
        if isinstance(site.expression, (cst.Float, cst.Integer)):
            new_value = _complement(momentum)
            fix = NodeFix(Applicability.SAFE, f"Use momentum={new_value}",
                          ((site.expression, cst.parse_expression(new_value)),))
        return Finding(self.code, site.anchor, message, fix)
