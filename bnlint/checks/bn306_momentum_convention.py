"""BN306 momentum-convention: a BN momentum written in the other framework's convention."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.values import Param, as_number
from bnlint.semantics.questions.arguments import ArgumentSite, batch_norm_arguments, complement


class MomentumConvention(Check):
    code = "BN306"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for site in batch_norm_arguments(context.facts, ("momentum",)):
            momentum = as_number(site.value)
            if momentum is None or momentum in (0.0, 1.0):
                continue  # 0 and 1 are deliberate (frozen or batch-only statistics)
            torch = site.spec.framework is Framework.TORCH
            if (torch and momentum <= 0.5) or (not torch and momentum >= 0.5):
                continue
            yield self._finding(site, momentum, torch)

    def _finding(self, site: ArgumentSite, momentum: float, torch: bool) -> Finding:
        value = site.value
        via = f" (default of parameter `{value.name}`)" if isinstance(value, Param) else ""
        convention, own = ("Keras", "PyTorch") if torch else ("PyTorch", "Keras")
        message = (f"{site.spec.name} momentum={momentum:g}{via} follows the {convention} convention; "
                   f"in {own} the same behaviour is momentum={complement(momentum)}")
        fix = None
        if isinstance(site.expression, (cst.Float, cst.Integer)):
            new_value = complement(momentum)
            fix = NodeFix(Applicability.SAFE, f"Use momentum={new_value}",
                          ((site.expression, cst.parse_expression(new_value)),))
        return Finding(self.code, site.anchor, message, fix)
