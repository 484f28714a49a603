"""BN105 keras-finetune-bn-mode: a pretrained Keras base built into a functional model
without `training=False` while it is trainable: fine-tuning overwrites its batch-norm
statistics."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding
from bnlint.checks.bn104_keras_training_flag_missing import training_fix
from bnlint.semantics.interp.usage import TrainableWrite
from bnlint.semantics.questions.keras_usage import (
    built_into,
    called_name,
    frozen_for_good,
    keras_calls,
    trainable_writes,
    training_flag,
)


class KerasFinetuneBnMode(Check):
    code = "BN105"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        facts = context.facts.usage
        reported: set[cst.CSTNode] = set()
        for call in keras_calls(facts):
            base = call.model.root
            # An explicit `training=` (even True) is a decision: not second-guessed.
            if call.site.node in reported or not base.pretrained or training_flag(call) is not None:
                continue
            functional = built_into(call, facts)
            if functional is None:
                continue  # an eager call without `training` runs in inference mode
            writes = trainable_writes(facts, base, functional.model)
            if frozen_for_good(writes):
                continue
            reported.add(call.site.node)
            message = (f"pretrained `{called_name(call, context.facts)}` ({base.label}) is called without "
                       f"`training=False` while building a functional model and {_trainable(context, writes)}: "
                       f"`fit()` then runs its batch norm in training mode, replacing the pretrained statistics "
                       f"with those of the new data's batches")
            placed = context.place(call.site, Finding(self.code, call.site.node, message, training_fix(call, False)))
            if placed is not None:
                yield placed


def _trainable(context: CheckContext, writes: list[TrainableWrite]) -> str:
    """How the base comes to be trainable, for the message."""
    unfreezing = next((write for write in writes if write.value is not False), None)
    if unfreezing is None:
        return "is trainable (Keras layers are, unless `trainable = False`)"
    if unfreezing.site.path != context.facts.path:
        return "is made trainable later"
    written = context.source(unfreezing.site.node)
    if unfreezing.value:
        return f"is made trainable (`{written} = True`)"
    return f"may be made trainable (`{written}` is set from a variable)"
