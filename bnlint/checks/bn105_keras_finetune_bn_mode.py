"""BN105 keras-finetune-bn-mode: a pretrained Keras base built into a functional model
without `training=False` while it is trainable: fine-tuning overwrites its batch-norm
statistics."""

from __future__ import annotations

from collections.abc import Iterator

from bnlint.checks import Check, CheckContext, Finding
from bnlint.checks.rewrite import training_fix
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
        for call in keras_calls(facts):
            base = call.model.root
            # An explicit `training=` (even True) is a decision: not second-guessed.
            if not base.pretrained or training_flag(call) is not None:
                continue
            functional = built_into(call, facts)
            if functional is None:
                continue  # an eager call without `training` runs in inference mode
            writes = trainable_writes(facts, base, functional.model)
            if frozen_for_good(writes):
                continue
            message = (f"pretrained `{called_name(call, context.facts)}` ({base.label}) is called without "
                       f"`training=False` while building a functional model and {_trainable(context, writes)}: "
                       f"`fit()` then runs its batch norm in training mode, replacing the pretrained statistics "
                       f"with those of the new data's batches")
            yield Finding(self.code, call.site.node, message, training_fix(call, False), call.site)


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
