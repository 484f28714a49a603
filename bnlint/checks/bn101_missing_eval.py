"""BN101 missing-eval: a batch-norm model run for inference while still in train mode."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import insert_before, statement_in_function
from bnlint.diagnostics import Applicability
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.usage import Mode, ModelCall, UsageFacts, model_expression


class MissingEval(Check):
    code = "BN101"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for call in context.facts.usage.calls:
            reason = call.context.inference_reason()
            if reason is None or not _in_train_mode(call, context.facts.usage):
                continue
            yield self._finding(context, call, reason)

    def _finding(self, context: CheckContext, call: ModelCall, reason: str) -> Finding:
        root = call.model.root
        expression = model_expression(call)
        name = context.source(expression, call.site.path) if expression is not None else call.model.label
        holds = "may hold batch norm" if root.zoo else "holds batch norm"
        since = "set by .train()" if call.mode_switch is not None else "as built"
        message = (f"`{name}` ({root.label}, {holds}) runs {reason} in train mode ({since}): batch norm "
                   f"normalizes with this batch's statistics and keeps updating its running ones; "
                   f"call `{name}.eval()` first")
        return Finding(self.code, call.site.node, message, self._fix(context, call, expression), call.site)

    def _fix(self, context: CheckContext, call: ModelCall, expression: cst.BaseExpression | None) -> NodeFix | None:
        if expression is None or call.site.path != context.facts.path:
            return None
        statement = statement_in_function(context.facts.module, call.site.node)
        if statement is None:
            return None
        name = context.source(expression)
        # Unsafe: code after the inference may rely on the model staying in train mode.
        return NodeFix(Applicability.UNSAFE, f"Call {name}.eval() first", (insert_before(statement, f"{name}.eval()"),))


def _in_train_mode(call: ModelCall, usage: UsageFacts) -> bool:
    """Provably in train mode, and not by a choice made for inference: a `.train()` written
    in inference code, or in a function that trains nothing (MAML's test-time adaptation,
    pix2pix's test script), is deliberate."""
    model = call.model
    if call.mode is not Mode.TRAIN or model.root.framework is not Framework.TORCH or not model.may_hold_bn:
        return False
    switch = call.mode_switch
    if switch is None:
        return True
    functions = switch.context.functions
    trains_there = any(step.context.functions[:len(functions)] == functions for step in usage.steps)
    return switch.context.inference_reason() is None and trains_there
