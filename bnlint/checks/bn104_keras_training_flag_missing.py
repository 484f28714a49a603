"""BN104 keras-training-flag-missing: a Keras training step calls a batch-norm model
without `training=True`, so its batch norm runs in inference mode."""

from __future__ import annotations

from collections.abc import Iterator

from bnlint.checks import Check, CheckContext, Finding
from bnlint.checks.rewrite import training_fix
from bnlint.semantics.questions.keras_usage import (
    described,
    frozen_for_good,
    keras_calls,
    trainable_writes,
    training_flag,
    training_step,
)


class KerasTrainingFlagMissing(Check):
    code = "BN104"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        facts = context.facts.usage
        for call in keras_calls(facts):
            model = call.model
            # A pretrained model left in inference mode is the Keras fine-tuning recipe (see BN105).
            if training_flag(call) is not None or model.root.pretrained:
                continue
            where = training_step(call, facts)
            if where is None or frozen_for_good(trainable_writes(facts, model)):
                continue
            message = (f"{described(call, context.facts)} is called {where} without `training=True`: Keras then "
                       f"runs its batch norm in inference mode, so it normalizes with the moving statistics and "
                       f"never updates them from the training batches")
            yield Finding(self.code, call.site.node, message, training_fix(call, True), call.site)

