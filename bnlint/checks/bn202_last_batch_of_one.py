"""BN202 last-batch-of-one: a training DataLoader whose last batch holds a single sample."""

from __future__ import annotations

from collections.abc import Iterator

import libcst as cst

from bnlint.checks import Check, CheckContext, Finding, NodeFix
from bnlint.checks.rewrite import with_keyword
from bnlint.diagnostics import Applicability
from bnlint.semantics.questions.batches import TrainingLoader, training_loaders

# DataLoader's parameters before drop_last: a call passing more positionally sets drop_last there.
_BEFORE_DROP_LAST = 8


class LastBatchOfOne(Check):
    code = "BN202"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        for training in training_loaders(context.facts):
            loader = training.loader
            length, batch = loader.dataset_length, training.batch_size
            if loader.kind != "DataLoader" or length is None or batch is None or batch < 2:  # 1: BN201's
                continue
            if loader.drop_last is not False or length % batch != 1:
                continue
            message = (f"the last batch of each epoch holds one sample ({length} samples, batch size {batch}): "
                       f"`{training.model.label}`'s batch norm normalizes it with its own statistics, a noisy step; "
                       f"where a channel holds a single value, PyTorch raises 'Expected more than 1 value per channel "
                       f"when training'")
            yield Finding(self.code, loader.site.node, message, _fix(training), loader.site)


def _fix(training: TrainingLoader) -> NodeFix | None:
    """`drop_last=True`: skips one sample per epoch (a different one each epoch when shuffled)."""
    call = training.loader.site.node
    assert isinstance(call, cst.Call)
    if any(arg.star for arg in call.args) or sum(arg.keyword is None for arg in call.args) > _BEFORE_DROP_LAST:
        return None
    return NodeFix(Applicability.SAFE, "Pass drop_last=True", ((call, with_keyword(call, "drop_last", "True")),))
