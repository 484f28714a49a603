"""BN203 small-batch: a batch-norm model trained on batches too small for reliable statistics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from bnlint.checks import Check, CheckContext, Finding
from bnlint.semantics.questions.batches import batch_size_source, training_loaders


class SmallBatch(Check):
    code = "BN203"
    # Batches of 2 up to threshold - 1 samples are reported (a batch of one is BN201's).
    options: ClassVar[dict[str, Any]] = {"threshold": 8}

    def check(self, context: CheckContext) -> Iterator[Finding]:
        threshold = context.options[self.code]["threshold"]
        for training in training_loaders(context.facts):
            batch, anchor = training.batch_size, training.batch_anchor
            if batch is None or not 2 <= batch < threshold:
                continue
            source = batch_size_source(training, context.facts.module)
            message = (f"`{training.model.label}` is trained on batches of {batch} samples ({source}), fewer than "
                       f"{threshold}: batch-norm statistics over so few samples are noisy and hurt accuracy; consider "
                       f"GroupNorm or LayerNorm, or SyncBatchNorm to pool the batches of several devices")
            yield Finding(self.code, anchor, message, site=training.loader.site)
