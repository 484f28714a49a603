"""BN107 keras-inference-in-training-mode: a Keras batch-norm model called with
`training=True` in inference code."""

from __future__ import annotations

from collections.abc import Iterator

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import replace_value
from bnlint.diagnostics import Applicability
from bnlint.semantics.questions.keras_usage import (
    described,
    inference_code,
    keras_calls,
    runs_generator,
    samples_dropout,
    training_flag,
)


class KerasInferenceInTrainingMode(Check):
    code = "BN107"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for call in keras_calls(context.facts.usage):
            if training_flag(call) is not True or call.training is None:
                continue
            where = inference_code(call)
            if where is None or runs_generator(call):
                continue
            model = described(call, context.facts)
            if samples_dropout(call):
                # Monte Carlo dropout: training=False would stop the sampling, so no automatic fix.
                message = (f"{model} is called with `training=True` {where} to sample dropout, but its batch norm "
                           f"then normalizes with each batch's statistics and updates the moving ones too; call it "
                           f"with `training=False` and use a dropout layer that stays active (a `Dropout` subclass "
                           f"whose `call` passes `training=True`)")
                yield Finding(self.code, call.site.node, message, site=call.site)
                continue
            message = (f"{model} is called with `training=True` {where}: its batch norm "
                       f"normalizes with this batch's statistics instead of the moving ones and updates the moving "
                       f"statistics from evaluation data")
            fix = NodeFix(Applicability.SAFE, "Pass training=False", (replace_value(call.training, "False"),))
            yield Finding(self.code, call.site.node, message, fix, call.site)
