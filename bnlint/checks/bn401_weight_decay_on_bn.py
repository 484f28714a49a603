"""BN401 weight-decay-on-bn: an optimizer decays every parameter of a batch-norm model,
the batch norms' weight and bias included."""

from __future__ import annotations

from collections.abc import Iterator

from bnlint.checks import Check, CheckContext, Finding
from bnlint.semantics.interp.usage import OptimizerUse
from bnlint.semantics.questions.training import holds_bn_phrase, holds_live_bn


class WeightDecayOnBn(Check):
    code = "BN401"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for optimizer in context.facts.usage.optimizers:
            model = optimizer.model
            if model is None or not holds_live_bn(model):
                continue
            if not optimizer.weight_decay:  # zero, or not a literal: nothing certain to report
                continue
            yield Finding(self.code, optimizer.site.node, _message(optimizer), site=optimizer.site)


def _message(optimizer: OptimizerUse) -> str:
    assert optimizer.model is not None
    root = optimizer.model.root
    decay = f"weight_decay={optimizer.weight_decay:g}"
    if optimizer.weight_decay_arg is None:
        decay = f"its default {decay}"
    return (f"{optimizer.name} applies {decay} to all parameters of `{root.label}`, which {holds_bn_phrase(root)} "
            f"batch norm: its weight and bias are decayed toward zero too; give norm and bias parameters a group "
            f"with weight_decay=0")
