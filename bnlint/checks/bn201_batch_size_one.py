"""BN201 batch-size-one: a batch-norm model trained on batches of one sample."""

from __future__ import annotations

from collections.abc import Iterator

from bnlint.checks import Check, CheckContext, Finding
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.questions.batches import batch_size_source, training_inputs, training_loaders

_CONSEQUENCE = ("batch norm then normalizes each sample with its own statistics (instance normalization) and "
                "averages single-sample noise into its running statistics")
_ONE_VALUE = {
    Framework.KERAS: "where a channel holds a single value, Keras outputs beta",
    Framework.TORCH: "where a channel holds a single value, PyTorch raises 'Expected more than 1 value per channel "
                     "when training'",
}


class BatchSizeOne(Check):
    code = "BN201"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for training in training_loaders(context.facts):
            anchor = training.batch_anchor
            if training.batch_size != 1:
                continue
            source = batch_size_source(training, context.facts.module)
            message = (f"`{training.model.label}` is trained on batches of one sample ({source}): {_CONSEQUENCE}; "
                       f"{_ONE_VALUE[training.loader.framework]}")
            yield Finding(self.code, anchor, message, site=training.loader.site)
        for item in training_inputs(context.facts, batch=1):
            message = (f"`{item.call.model.label}` runs in train mode on a batch of one sample "
                       f"(`{context.source(item.node)}`): {_CONSEQUENCE}; {_ONE_VALUE[Framework.TORCH]}; call "
                       f"`.eval()` first to only run it")
            yield Finding(self.code, item.node, message, site=item.call.site)
