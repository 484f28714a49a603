"""Questions about how a model is trained, asked by the rules on multi-device wrappers,
optimizers and frozen parts (BN204, BN401, BN106) of the usage facts.
"""

from __future__ import annotations

import re
from functools import lru_cache

import libcst as cst

from bnlint.semantics.catalogue.constructors import Presence
from bnlint.semantics.interp.usage import Context, Mode, ModelValue, UsageFacts
from bnlint.semantics.interp.values import ClassValue, FunctionValue
from bnlint.semantics.syntax import parents


def whole_model(model: ModelValue) -> ModelValue:
    """The whole model: the root of a wrapper, the owner of a part (`model.backbone`)."""
    root = model.root
    return root.owner.root if root.owner is not None else root


def holds_live_bn(model: ModelValue) -> bool:
    """The policy of `ModelValue.may_hold_bn`, less models built with a frozen norm layer
    (`resnet50(norm_layer=FrozenBatchNorm2d)`): their statistics and affine are buffers."""
    root = model.root
    if not root.may_hold_bn:
        return False
    call = root.node
    return not (isinstance(call, cst.Call) and any(
        arg.keyword is not None and arg.keyword.value == "norm_layer" and "Frozen" in _code(arg.value)
        for arg in call.args))


def holds_bn_phrase(model: ModelValue) -> str:
    """How a message states the model's batch norm: known, or assumed of a model zoo's model."""
    return "holds" if model.root.presence is Presence.YES else "may hold"


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


def runs_in_train_mode(usage: UsageFacts, model: ModelValue) -> bool:
    """Code puts the model (the whole one a part belongs to) in train mode for training:
    `model.train()` (a `model.head.train()` does not reach other parts), or a call of it in
    train mode outside inference code."""
    whole = whole_model(model)
    for switch in usage.switches:
        target = switch.model.root
        if (switch.called and switch.mode is Mode.TRAIN and (target is whole or _same_part(target, model))
                and switch.context.inference_reason() is None):
            return True
    return any(call.mode is Mode.TRAIN and call.context.inference_reason() is None and trains_with(usage, call.context)
               for call in usage.calls if whole_model(call.model) is whole)


def trains_with(usage: UsageFacts, context: Context) -> bool:
    """A training step is taken with code here: in a loop around it, or in the function
    running it (or one that function calls). A forward pass on its own, such as a shape
    check on random input, trains nothing."""
    functions = context.functions
    return any(any(step.context.within(loop) for loop in context.loops)
               or (functions and step.context.functions[:len(functions)] == functions) for step in usage.steps)


def only_evaluated(usage: UsageFacts, model: ModelValue) -> bool:
    """Every use of the model seen is inference: it is called, never in train mode for
    training, and never switched to train mode."""
    whole = whole_model(model)
    calls = [call for call in usage.calls if whole_model(call.model) is whole]
    return bool(calls) and not runs_in_train_mode(usage, model) and not any(
        call.mode is Mode.UNKNOWN and call.context.inference_reason() is None for call in calls)


def switched_to_eval(usage: UsageFacts, model: ModelValue) -> bool:
    """`.eval()` (or `.train(False)`) called on this model or part (`model.backbone.eval()`), anywhere."""
    return any(switch.called and switch.mode is Mode.EVAL
               and (switch.model.root is model.root or _same_part(switch.model, model))
               for switch in usage.switches)


def overrides_train(cls: ClassValue) -> bool:
    """The model class (or a project base class) defines `train()`, which models override
    to put frozen batch norm back in eval mode after `super().train(mode)`."""
    pending, seen = [cls], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current.attributes.get("train"), FunctionValue):
            return True
        pending += [base for base in current.bases if isinstance(base, ClassValue)]
    return False


def enclosing_class(module: cst.Module, node: cst.CSTNode) -> cst.ClassDef | None:
    """The class whose method holds `node` (a freeze written in `__init__`), if any: the
    outermost such class among those defined at the top level or inside class bodies."""
    path = parents(module).path_to(node)
    if path is None:
        return None
    # Module → ClassDef → IndentedBlock → (ClassDef → IndentedBlock →)* FunctionDef
    for index in range(1, len(path), 2):
        cls = path[index]
        if not isinstance(cls, cst.ClassDef) or not isinstance(cls.body, cst.IndentedBlock):
            return None
        if index + 2 < len(path) and isinstance(path[index + 2], cst.FunctionDef):
            return cls
    return None


def thawed(usage: UsageFacts, frozen: ModelValue) -> bool:
    """`requires_grad` set back to True on the same model or part: a toggle (the
    discriminator of a GAN during the generator's step), not a freeze."""
    return any(thaw.model.root is frozen.root or _same_part(thaw.model, frozen) for thaw in usage.thaws)


def _same_part(one: ModelValue, other: ModelValue) -> bool:
    return one.owner is not None and one.owner is other.owner and one.label == other.label


_BN_EVAL = (re.compile(r"BatchNorm|batch_norm|\bbn\b", re.I), re.compile(r"\.(?:eval\(\s*\)|train\(\s*(?:mode\s*=\s*)?False\s*\))"))


@lru_cache(maxsize=64)  # BN106, BN201-BN203 ask it of the same module
def evals_batch_norm(tree: cst.CSTNode) -> bool:
    """A function in `tree` puts batch-norm layers in eval mode, typically
    `for m in self.modules(): if isinstance(m, nn.BatchNorm2d): m.eval()` in a `freeze_bn()`
    method or after `model.train()`: the layers it picks are not known statically, so any
    such function counts."""
    stack = [tree]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.FunctionDef):
            code = _code(current)
            if all(pattern.search(code) for pattern in _BN_EVAL):
                return True
            continue
        stack.extend(current.children)
    return False


def defines(cls: cst.ClassDef, method: str) -> bool:
    return any(isinstance(statement, cst.FunctionDef) and statement.name.value == method
               for statement in cls.body.body)
