"""BN306 momentum-convention: a BN momentum written in the other framework's convention."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import replace_value
from bnlint.diagnostics import Applicability
from bnlint.semantics.layers import Framework, LayerSpec
from bnlint.semantics.values import ArgInfo, Param, as_number

def _complement(value: float) -> str:
    return repr(round(1 - value, 10))


class MomentumConvention(Check):
    code = "BN306"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        model = context.model
        sites: list[tuple[LayerSpec, ArgInfo]] = [
            (layer.spec, layer.args["momentum"])
            for layer in [*model.own_layers(), *model.functional_bn]
            if "momentum" in layer.args
        ]
        sites += [(ref.spec, ref.bound["momentum"]) for ref in model.partials if "momentum" in ref.bound]
        reported: set[cst.Arg] = set()
        for spec, info in sites:
            if info.node is None or info.node in reported:
                continue
            momentum = as_number(info.value)
            if momentum is None or momentum in (0.0, 1.0):
                continue  # 0 and 1 are deliberate (frozen or batch-only statistics)
            torch = spec.framework is Framework.TORCH
            if (torch and momentum <= 0.5) or (not torch and momentum >= 0.5):
                continue
            reported.add(info.node)
            yield self._finding(spec, info, momentum, torch)

    def _finding(self, spec: LayerSpec, info: ArgInfo, momentum: float, torch: bool) -> Finding:
        assert info.node is not None
        via = f" (default of parameter `{info.value.name}`)" if isinstance(info.value, Param) else ""
        convention, own = ("Keras", "PyTorch") if torch else ("PyTorch", "Keras")
        message = (f"{spec.name} momentum={momentum:g}{via} follows the {convention} convention; "
                   f"in {own} the same behaviour is momentum={_complement(momentum)}")
        fix = None
        if isinstance(info.node.value, (cst.Float, cst.Integer)):
            new_value = _complement(momentum)
            fix = NodeFix(Applicability.SAFE, f"Use momentum={new_value}", (replace_value(info.node, new_value),))
        return Finding(self.code, info.node, message, fix)
