"""BN103 train-mode-not-restored: a loop that evaluates (`.eval()`) and trains the same
model, with no `.train()` in the loop: every iteration after the first trains in eval mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import insert_before
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.constructors import Presence
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.usage import Loop, Mode, ModelValue, ModeSwitch, UsageFacts, model_expression
from bnlint.semantics.questions.training import thawed


class TrainModeNotRestored(Check):
    code = "BN103"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        usage = context.facts.usage
        for switch in usage.switches:
            if not switch.called or switch.mode is not Mode.EVAL:
                continue
            model = switch.model
            if model.root.framework is Framework.KERAS or model.root.presence is Presence.NO:
                continue
            if _frozen(usage, model):
                continue  # linear evaluation: eval mode keeps a frozen backbone's statistics fixed on purpose
            loop = _epoch_loop(usage, switch)
            if loop is None:
                continue
            yield self._finding(context, switch, loop)

    def _finding(self, context: CheckContext, switch: ModeSwitch, loop: Loop) -> Finding:
        name = context.source(switch.attribute.value, switch.site.path)
        header = _header(context, loop, switch.site.path)
        message = (f"`{name}.eval()` leaves the model in eval mode for the rest of the loop {header}, which also "
                   f"trains it and never calls .train(): every iteration after this one trains with frozen "
                   f"batch-norm statistics")
        return Finding(self.code, switch.site.node, message, self._fix(context, switch.model, loop), switch.site)

    def _fix(self, context: CheckContext, model: ModelValue, loop: Loop) -> NodeFix | None:
        """`model.train()` as the first statement of the loop, named as the loop's own code names it."""
        if loop.path != context.facts.path:
            return None
        expression = _name_in_loop(context.facts.usage, model, loop)
        body = loop.node.body
        if expression is None or not isinstance(body, cst.IndentedBlock) or not body.body:
            return None
        name = context.source(expression)
        # Unsafe: where the training phase begins is a guess (the loop's top).
        return NodeFix(Applicability.UNSAFE, f"Call {name}.train() at the top of the loop",
                       (insert_before(body.body[0], f"{name}.train()"),))


def _header(context: CheckContext, loop: Loop, reported_in: str) -> str:
    """`for epoch in range(epochs)` as written, and its file when that is not the reported one."""
    node = loop.node
    if isinstance(node, cst.For):
        header = f"`for {context.source(node.target, loop.path)} in {context.source(node.iter, loop.path)}`"
    else:
        header = f"`while {context.source(node.test, loop.path)}`"
    return header if loop.path == reported_in else f"{header} in {Path(loop.path).name}"


def _epoch_loop(usage: UsageFacts, switch: ModeSwitch) -> Loop | None:
    """The outermost loop around the switch that trains the model and never switches it
    back to training."""
    root = switch.model.root
    # A `.train()` on the model or on a part of it (`model.fc.train()`: a frozen body
    # evaluated, a new head trained) is a decision about the training phase.
    switches = [other for other in usage.switches if other.model.root is root or other.model.owner is root]
    for loop in switch.context.loops:
        restored = any(other.called and other.mode is not Mode.EVAL and other.context.within(loop)
                       for other in switches)
        if restored:
            continue
        trains = any(step.context.within(loop) for step in usage.steps) and any(
            call.context.within(loop) and call.context.inference_reason() is None for call in usage.calls_of(root))
        if trains:
            return loop
    return None


def _frozen(usage: UsageFacts, model: ModelValue) -> bool:
    """The model's parameters, or those of a part of it (its backbone), are frozen for good
    (`requires_grad = False` not set back), so only a new head trains."""
    root = model.root
    return any((freeze.model.root is root or freeze.model.root.owner is root) and not thawed(usage, freeze.model)
               for freeze in usage.freezes)


def _name_in_loop(usage: UsageFacts, model: ModelValue, loop: Loop) -> cst.BaseExpression | None:
    """How the code of the loop itself refers to the model: a call, a switch or an argument."""
    root = model.root
    for call in usage.calls_of(root):
        if call.context.directly_in(loop):
            expression = model_expression(call)
            if expression is not None:
                return expression
    for switch in usage.switches_of(root):
        if switch.context.directly_in(loop):
            return switch.attribute.value
    for argument in usage.arguments:
        if argument.model.root is root and argument.context.directly_in(loop):
            node = argument.site.node
            return node if isinstance(node, (cst.Name, cst.Attribute)) else None
    return None
