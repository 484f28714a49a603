"""What the Keras usage rules (BN104, BN105, BN107) ask of the usage facts.

Keras has no train/eval mode: each call of a model decides, through its `training=`
argument, whether batch norm normalizes with the batch's statistics (and updates its moving
ones) or with the moving statistics. Without the argument, an eager call runs in inference
mode, and a call made while building a functional model inherits the mode the whole model
is later called in (`fit()` calls it with `training=True`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst

from bnlint.semantics.catalogue.constructors import Presence
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.usage import (
    FunctionalModel,
    ModelCall,
    ModelValue,
    TrainableWrite,
    UsageFacts,
    name_words,
)

# Keras methods that run a training or an inference step when `fit()` / `evaluate()` /
# `predict()` call them.
TRAIN_STEP = "train_step"
INFERENCE_STEPS = ("test_step", "predict_step")
# Words of a function name that say it trains ("step" and "update" alone do not: an attack
# or a saliency map differentiates in a `..._step` function too).
_TRAINING_WORDS = frozenset({"train", "training", "fit", "finetune"})
# Words of a function name that say it samples a stochastic model (Monte Carlo dropout).
_SAMPLING_WORDS = frozenset({"mc", "monte", "carlo", "mcdropout", "dropout", "uncertainty", "bayes", "bayesian",
                             "sample", "samples", "sampling", "stochastic"})
# pix2pix-style generators, run with batch statistics at test time on purpose.
_GENERATOR = re.compile(r"(^|_)(gen|generator|net_?g|g)$|Generator$", re.I)


def keras_calls(facts: UsageFacts) -> Iterator[ModelCall]:
    """Plain calls (`model(x)`, `model.__call__(x)`) of Keras models that hold batch norm
    (or come from a model zoo or file). A helper inlined from several callers is recorded
    once per caller: rules report a node once."""
    for call in facts.calls:
        model = call.model
        if (model.root.framework is Framework.KERAS and _holds_bn(model, facts) and call.method in (None, "__call__")
                and isinstance(call.site.node, cst.Call)):
            yield call


def _holds_bn(model: ModelValue, facts: UsageFacts) -> bool:
    """The usage policy (`may_hold_bn`), or an instance (`self` in `train_step`) of a Keras
    subclass that code here builds like a functional model with batch norm
    (`CustomModel(inputs, outputs)`, the pattern of the Keras guide to custom `train_step`s)."""
    if model.may_hold_bn:
        return True
    cls = model.root.cls
    return cls is not None and any(
        built.model.cls is not None and built.model.cls.node is cls.node and built.model.presence is Presence.YES
        for built in facts.functional)


def training_flag(call: ModelCall) -> object:
    """The call's literal `training=`: True / False, None when absent or `None` (both leave
    Keras to decide), ... when not a literal or possibly in `**kwargs`."""
    if call.training is None:
        node = call.site.node
        keywords = node.args if isinstance(node, cst.Call) else ()
        return ... if any(arg.star == "**" for arg in keywords) else None
    if isinstance(call.training.value, cst.Name) and call.training.value.value == "None":
        return None
    return call.training_value


def training_step(call: ModelCall, facts: UsageFacts) -> str | None:
    """Where the call runs a training step: an overridden `train_step` (or code it calls),
    or a `tf.GradientTape` of code that trains (`apply_gradients` in the function or a
    caller of it, or a name that says training). A tape alone may only compute gradients
    with respect to the input (adversarial examples, saliency maps): no training step."""
    functions = call.context.functions
    if TRAIN_STEP in functions:
        return f"in `{TRAIN_STEP}()`"
    if not call.context.tape:
        return None
    applied = any(step.kind == "apply_gradients" and functions[:len(step.context.functions)] == step.context.functions
                  for step in facts.steps)
    named = call.context.inference_reason() is None and any(name_words(name) & _TRAINING_WORDS for name in functions)
    return "inside a tf.GradientTape" if applied or named else None


def inference_code(call: ModelCall) -> str | None:
    """Why the call runs for inference: inside an overridden `test_step` / `predict_step`,
    or a function named for inference (`evaluate`, `predict`); never inside a gradient tape."""
    if call.context.tape:
        return None
    for name in reversed(call.context.functions):
        if name in INFERENCE_STEPS:
            return f"in `{name}()`"
    return call.context.inference_reason()


def samples_dropout(call: ModelCall) -> bool:
    """`training=True` at inference to sample dropout masks (Monte Carlo dropout): a function
    named for sampling, or calls repeated in a `range()` loop of the function itself."""
    return _samples_dropout(call)


def runs_generator(call: ModelCall) -> bool:
    """A pix2pix-style generator, run with batch statistics at test time on purpose."""
    return _is_generator(call)


def _samples_dropout(call: ModelCall) -> bool:
    functions = call.context.functions
    if any(name_words(name) & _SAMPLING_WORDS for name in functions):
        return True
    return any(loop.depth == len(functions) and _iterates_range(loop.node) for loop in call.context.loops)


def _is_generator(call: ModelCall) -> bool:
    """Its label or the name it is called by (`generator(x)`, `self.netG(x)`) says generator."""
    names = [call.model.label]
    node = call.site.node
    if isinstance(node, cst.Call) and isinstance(node.func, (cst.Name, cst.Attribute)):
        names.append(node.func.value if isinstance(node.func, cst.Name) else node.func.attr.value)
    return any(_GENERATOR.search(name.rsplit(".", 1)[-1]) for name in names)


def _iterates_range(loop: cst.For | cst.While) -> bool:
    iterated = loop.iter if isinstance(loop, cst.For) else None
    return isinstance(iterated, cst.Call) and isinstance(iterated.func, cst.Name) and iterated.func.value == "range"


def built_into(call: ModelCall, facts: UsageFacts) -> FunctionalModel | None:
    """The functional model (`keras.Model(inputs, outputs)`) whose outputs the call feeds."""
    return next((functional for functional in facts.functional if any(fed is call for fed in functional.calls)), None)


def trainable_writes(facts: UsageFacts, *models: ModelValue) -> list[TrainableWrite]:
    """`x.trainable = ...` on any of the models (on a functional model it sets every layer inside)."""
    roots = [model.root for model in models]
    return [write for write in facts.trainables if any(write.model.root is root for root in roots)]


def frozen_for_good(writes: list[TrainableWrite]) -> bool:
    """Set `trainable = False` and never anything else: Keras then runs its batch norm in
    inference mode whatever `training=` says."""
    return bool(writes) and all(write.value is False for write in writes)


def called_name(call: ModelCall, facts: FileFacts) -> str:
    """How messages name the called model: as written (`self.model`), else its label."""
    node = call.site.node
    if call.site.path == facts.path and isinstance(node, cst.Call):
        return facts.module.code_for_node(node.func)
    return call.model.label


def described(call: ModelCall, facts: FileFacts) -> str:
    """"`self.model` (Net, holds batch norm)": the called model for messages."""
    root = call.model.root
    holds = "may hold batch norm" if root.zoo else "holds batch norm"
    return f"`{called_name(call, facts)}` ({root.label}, {holds})"
