"""BN106 frozen-bn-still-updating: the parameters of (a part of) a batch-norm model are
frozen, but the module still runs in train mode, so its running statistics keep moving."""

from __future__ import annotations

from collections.abc import Iterator

from bnlint.checks import Check, CheckContext, Finding
from bnlint.semantics.catalogue.constructors import Presence
from bnlint.semantics.interp.usage import Freeze, ModelValue, UsageFacts
from bnlint.semantics.questions.training import (
    defines,
    enclosing_class,
    evals_batch_norm,
    holds_live_bn,
    overrides_train,
    runs_in_train_mode,
    switched_to_eval,
    thawed,
    whole_model,
)


class FrozenBnStillUpdating(Check):
    code = "BN106"

    def check(self, context: CheckContext) -> Iterator[Finding]:
        usage = context.facts.usage
        for freeze in usage.freezes:
            frozen = freeze.model
            if not _holds_bn(frozen):
                continue
            if freeze.context.inference_reason() is not None:
                continue  # frozen under no_grad or in inference code: prepared for inference (fused, exported)
            part = frozen.root.owner is not None
            if (part and switched_to_eval(usage, frozen)) or thawed(usage, frozen):
                continue  # `model.backbone.eval()` after `model.train()`; a toggle
            why = self._still_training(context, usage, freeze)
            if why is None:
                continue
            subject = f"`{freeze.name}`" if freeze.name == frozen.label else f"`{freeze.name}` (`{frozen.label}`)"
            message = (f"{subject} is frozen (requires_grad=False), but {why}: its batch norm keeps "
                       f"updating the running statistics; put it in eval mode after every `.train()` "
                       f"(or use FrozenBatchNorm2d)")
            yield Finding(self.code, freeze.site.node, message, site=freeze.site)

    @staticmethod
    def _still_training(context: CheckContext, usage: UsageFacts, freeze: Freeze) -> str | None:
        """Why the frozen batch norm runs in train mode, or None when it does not."""
        frozen = freeze.model
        whole = whole_model(frozen)
        if whole.cls is not None and (overrides_train(whole.cls) or evals_batch_norm(whole.cls.node)):
            return None  # the model's own train() (or a freeze_bn() method) re-freezes it
        if evals_batch_norm(context.facts.module):
            return None  # this file puts batch-norm layers back in eval mode itself
        if runs_in_train_mode(usage, frozen):
            return f"`{whole.label}` still runs in train mode for training"
        container = _training_container(usage, frozen)
        if container is not None:
            return f"`{container.label}`, built from it, still runs in train mode for training"
        here = freeze.site.path == context.facts.path
        owner = enclosing_class(context.facts.module, freeze.site.node) if here else None
        if owner is None or not (defines(owner, "forward") or defines(owner, "training_step")):
            return None  # not a module (or LightningModule) freezing a part of itself
        if defines(owner, "train") or switched_to_eval(usage, frozen):
            return None  # it keeps the part in eval mode
        if whole.cls is not None and whole.cls.node is owner:
            return None  # the module freezes all of itself: a fixed feature extractor
        return f"`{owner.name.value}.train()` puts it back in train mode"


def _training_container(usage: UsageFacts, frozen: ModelValue) -> ModelValue | None:
    """A model built from the frozen one (`nn.Sequential(backbone, head)`) that runs in train
    mode, unless the frozen one is put back in eval mode or the container's class keeps it so."""
    if switched_to_eval(usage, frozen):
        return None
    for container in whole_model(frozen).containers:
        keeps_frozen = container.cls is not None and (
            overrides_train(container.cls) or evals_batch_norm(container.cls.node))
        if not keeps_frozen and runs_in_train_mode(usage, container):
            return container
    return None


def _holds_bn(frozen: ModelValue) -> bool:
    """The frozen part holds batch norm, or is a part of unknown content of a model that does."""
    if holds_live_bn(frozen):
        return True
    owner = frozen.root.owner
    return owner is not None and frozen.root.presence is Presence.UNKNOWN and holds_live_bn(owner)
