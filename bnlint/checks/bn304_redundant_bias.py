"""BN304 redundant-bias: a conv/linear/dense bias that the following BN cancels."""

from __future__ import annotations

from collections.abc import Iterator
from enum import Enum, auto

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import replace_value, with_keyword
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Kind
from bnlint.semantics.interp.usage import Site
from bnlint.semantics.interp.values import Layer, Tensor, Use
from bnlint.semantics.questions.channels import (
    bias_enabled, fused_activation, is_batch_norm, normalizes_other_axis, spreads_features,
)
from bnlint.semantics.syntax import parents, walk


class _Blocked(Enum):
    """Some use needs the bias (or the layer escaped): never redundant."""

    BLOCKED = auto()


_Condition = tuple[cst.BaseExpression, bool]  # an `if` test, and whether the BN is there when it holds


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
            verdict = self._verdict(instances, context.facts.conditions)
            if verdict is None:
                continue
            own = first.path == context.facts.path
            finding = None if verdict is _Blocked.BLOCKED else self._finding(node, first, *verdict, context if own else None)
            if own and finding is not None:
                yield finding
            elif first.helper is not None:
                # A module-level helper is shared: what this file saw of it counts project-wide.
                context.seen_in_helper(Site(node, first.path, first.helper), finding)

    def _verdict(self, instances: list[Layer], conditions: dict[int, _Condition]
                 ) -> tuple[Layer, _Condition | None] | _Blocked | None:
        """The BN every observed use feeds (and the condition under which it is there, when
        only then), BLOCKED, or None when the rule does not apply (no bias) or no use was seen."""
        norm, condition = None, None
        for layer in instances:
            if not layer.uses and not layer.escaped:
                continue  # a helper's standalone run: only its calls show what the layer feeds
            if bias_enabled(layer) is not True or fused_activation(layer):
                return None
            if layer.escaped:
                return _Blocked.BLOCKED
            norms = [use for use in layer.uses if is_batch_norm(use.consumer)]
            for use in norms:
                assert isinstance(use.consumer, Layer)
                if normalizes_other_axis(use.consumer, layer, Tensor(layer, use.via)):
                    return _Blocked.BLOCKED  # the BN's statistics run along another axis than the bias
                if spreads_features(use.consumer, layer, use.via):
                    return _Blocked.BLOCKED  # one BN channel holds several of the bias's values
                norm = use.consumer
            if len(norms) < len(layer.uses):
                others = [use for use in layer.uses if not is_batch_norm(use.consumer)]
                found = _only_without_norm(norms, others, conditions)
                if found is None or (condition is not None and found[0] is not condition[0]):
                    return _Blocked.BLOCKED
                condition = found
        return (norm, condition) if norm is not None else None

    def _finding(self, node: cst.Call, layer: Layer, norm: Layer, condition: _Condition | None,
                 context: CheckContext | None) -> Finding:
        spec = layer.spec
        explicit = spec.bias in layer.args
        state = f"{spec.bias}=True" if explicit else f"{spec.bias}=True by default"
        message = f"{spec.name} adds a bias ({state}) that the following {norm.spec.name} cancels"
        value = "False"
        if condition is not None:
            value = _bias_when(*condition)
            test = cst.Module([]).code_for_node(condition[0])
            message += f" when it is there (`{test}` {'holds' if condition[1] else 'does not hold'})"
            if context is None or not _known_at(condition[0], node, context):
                return Finding(self.code, node, message)
        return Finding(self.code, node, message, self._fix(node, layer, value))

    def _fix(self, node: cst.Call, layer: Layer, value: str) -> NodeFix | None:
        parameter = layer.spec.bias
        assert parameter is not None
        given = layer.args.get(parameter)
        if given is not None and given.node is None:
            return None  # set through **kwargs: there is no argument of its own to rewrite
        if given is not None and given.node is not None and given.node.keyword is None:
            replacements = (replace_value(given.node, value),)
        else:
            replacements = ((node, with_keyword(node, parameter, value)),)
        # Unsafe: saved checkpoints still hold the bias; fold it into the BN's running_mean to migrate.
        return NodeFix(Applicability.UNSAFE, f"Pass {parameter}={value}", replacements)


def _only_without_norm(norms: list[Use], others: list[Use], conditions: dict[int, _Condition]) -> _Condition | None:
    """The condition of an `if` under which the batch norm follows the layer, where every
    other use of its output happens only when the batch norm is not there: it skips the
    norm's body (`layers = [conv]; if use_bn: layers.append(bn)`), or runs in the `else`
    (`if bn: layers += [conv, bn, relu] else: layers += [conv, relu]`)."""
    if not norms:
        return None
    shared = set(norms[0].present).intersection(*(use.present for use in norms[1:]))
    for body in sorted(shared, reverse=True):  # the innermost body first
        condition = conditions.get(body)
        if condition is None:
            continue
        test, holds = condition

        def without_norm(use: Use) -> bool:
            if use.absent == body:
                return True
            return any(conditions.get(other, (None, holds)) == (test, not holds) for other in use.present)

        if all(without_norm(use) for use in others):
            return condition
    return None


def _bias_when(test: cst.BaseExpression, holds: bool) -> str:
    """The bias argument that is off exactly when the batch norm is there: `not use_bn`."""
    code = cst.Module([]).code_for_node(test)
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        inner = cst.Module([]).code_for_node(test.expression)
        return inner if holds else code
    if not holds:
        return code
    simple = isinstance(test, (cst.Name, cst.Attribute))
    return f"not {code}" if simple else f"not ({code})"


def _known_at(test: cst.BaseExpression, node: cst.Call, context: CheckContext) -> bool:
    """The test reads only parameters of the function that builds the layer, so the layer's
    own arguments can say it: a fix `bias=not use_bn` then means what the `if` means."""
    tree = parents(context.facts.module)
    function = tree.enclosing(node, cst.FunctionDef)
    if function is None or tree.enclosing(test, cst.FunctionDef) is not function:
        return False
    params = function.params
    names = {param.name.value for param in [*params.posonly_params, *params.params, *params.kwonly_params]}
    nodes = [test, *walk(test)]
    used = [child for child in nodes if isinstance(child, cst.Name)]
    attributes = {id(child.attr) for child in nodes if isinstance(child, cst.Attribute)}
    return all(name.value in names for name in used if id(name) not in attributes)
