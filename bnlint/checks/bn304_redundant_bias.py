"""BN304 redundant-bias: a conv/linear/dense bias that the following BN cancels."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum, auto

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, HelperUse, NodeFix
from bnlint.checks.rewrite import replace_value, with_keyword
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Kind
from bnlint.semantics.interp.values import Layer, Tensor
from bnlint.semantics.questions.channels import (
    bias_enabled, fused_activation, is_batch_norm, normalizes_other_axis, spreads_features,
)


class _Blocked(Enum):
    """Some use needs the bias (or the layer escaped): never redundant."""

    BLOCKED = auto()


class RedundantBias(Check):
    code = "BN304"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        if not context.facts.complete:
            return  # an analysis cut short may have missed a use that needs the bias
        by_node: dict[cst.Call, list[Layer]] = {}
        for layer in context.facts.layers:
            if layer.spec.kind in (Kind.CONV, Kind.LINEAR) and layer.spec.bias:
                by_node.setdefault(layer.node, []).append(layer)
        for node, instances in by_node.items():
            first = instances[0]
            verdict = self._verdict(instances)
            if verdict is None:
                continue
            finding = None if verdict is _Blocked.BLOCKED else self._finding(node, first, verdict)
            own = first.path == context.facts.path
            if own and finding is not None:
                yield finding
            elif first.helper is not None:
                # A module-level helper is shared: what this file saw of it counts project-wide.
                context.helper_uses.append(HelperUse(first.path, first.helper, node, finding))

    def _verdict(self, instances: list[Layer]) -> Layer | _Blocked | None:
        """The BN every observed use feeds, BLOCKED, or None when the rule does not apply
        (no bias) or no use was seen."""
        norm = None
        for layer in instances:
            if bias_enabled(layer) is not True or fused_activation(layer):
                return None
            if layer.escaped:
                return _Blocked.BLOCKED
            for use in layer.uses:
                if not is_batch_norm(use.consumer):
                    return _Blocked.BLOCKED
                assert isinstance(use.consumer, Layer)
                if normalizes_other_axis(use.consumer, layer, Tensor(layer, use.via)):
                    return _Blocked.BLOCKED  # the BN's statistics run along another axis than the bias
                if spreads_features(use.consumer, layer, use.via):
                    return _Blocked.BLOCKED  # one BN channel holds several of the bias's values
                norm = use.consumer
        return norm

    def _finding(self, node: cst.Call, layer: Layer, norm: Layer) -> Finding:
        spec = layer.spec
        explicit = spec.bias in layer.args
        state = f"{spec.bias}=True" if explicit else f"{spec.bias}=True by default"
        message = f"{spec.name} adds a bias ({state}) that the following {norm.spec.name} cancels"
        return Finding(self.code, node, message, self._fix(node, layer))

    def _fix(self, node: cst.Call, layer: Layer) -> NodeFix | None:
        parameter = layer.spec.bias
        assert parameter is not None
        given = layer.args.get(parameter)
        if given is not None and given.node is None:
            return None  # set through **kwargs: there is no argument of its own to rewrite
        if given is not None and given.node is not None and given.node.keyword is None:
            replacements = (replace_value(given.node, "False"),)
        else:
            replacements = ((node, with_keyword(node, parameter, "False")),)
        # Unsafe: saved checkpoints still hold the bias; fold it into the BN's running_mean to migrate.
        return NodeFix(Applicability.UNSAFE, f"Pass {parameter}=False", replacements)
