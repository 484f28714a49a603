"""BN107 keras-inference-in-training-mode: a Keras batch-norm model called with
`training=True` in inference code."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import replace_value
from bnlint.diagnostics import Applicability
from bnlint.semantics.questions.keras_usage import (
    deliberate_training_mode,
    described,
    inference_code,
    keras_calls,
    training_flag,
)


class KerasInferenceInTrainingMode(Check):
    code = "BN107"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        reported: set[cst.CSTNode] = set()
        for call in keras_calls(context.facts.usage):
            if call.site.node in reported or training_flag(call) is not True or call.training is None:
                continue
            where = inference_code(call)
            if where is None or deliberate_training_mode(call):
                continue
            reported.add(call.site.node)
            message = (f"{described(call, context.facts)} is called with `training=True` {where}: its batch norm "
                       f"normalizes with this batch's statistics instead of the moving ones and updates the moving "
                       f"statistics from evaluation data")
            fix = NodeFix(Applicability.SAFE, "Pass training=False", (replace_value(call.training, "False"),))
            placed = context.place(call.site, Finding(self.code, call.site.node, message, fix))
            if placed is not None:
                yield placed
