"""Training batches (BN201-BN203): which batches reach a batch-norm model while it trains.

A loader trains a model when its batches are fed, in a loop over it, to a model holding
batch norm (`ModelValue.may_hold_bn`) in training mode and with gradients on, and the same
loop takes a training step (`loss.backward()`, `optimizer.step()`, `tape.gradient()`), also
through helpers the interpreter inlines (`train_one_epoch(model, loader, opt)`). Keras
loaders train the model they are `fit` to (`fit(batch_size=n)`, `fit(ds.batch(n))`); a
Keras call in a custom loop trains batch norm only with `training=True`. Validation and test
loops (eval mode, `no_grad`, a function named for inference) do not train, nor do models
built with a frozen norm layer or files that put their batch-norm layers in eval mode
(`freeze_bn()`): frozen statistics do not depend on the batch.

A batch size the interpreter cannot evaluate but that reads an argparse option of the same
file (`batch_size=args.batch_size`) takes that option's literal default.

The interpreter runs a function standalone and again inlined at each call, so one loader
construction may appear several times, with other arguments: rules report each anchor once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import libcst as cst

from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.facts import FileFacts, per_file
from bnlint.semantics.interp.usage import Grad, LiteralInput, Loader, Mode, ModelCall, ModelValue, TrainingStep
from bnlint.semantics.questions.training import evals_batch_norm, holds_live_bn, trains_with


@dataclass(frozen=True)
class TrainingLoader:
    """A loader whose batches train `model`, `batch_size` samples at a time when known
    (`option`: the command-line option whose default it is, if it is one)."""

    loader: Loader
    model: ModelValue
    batch_size: int | None
    option: str | None = None

    @property
    def batch_anchor(self) -> cst.CSTNode:
        """The batch-size argument as written, or the loader call when the default applies."""
        return self.loader.batch_size_arg or self.loader.site.node


@per_file
def training_loaders(file: FileFacts) -> list[TrainingLoader]:
    """Every loader event that trains a batch-norm model (one construction may recur)."""
    trained = [(loader, model) for loader in file.usage.loaders
               if (model := _trained_model(loader, file.usage.steps)) is not None]
    if not trained or evals_batch_norm(file.module):
        return []
    options: dict[str, int | None] | None = None
    found = []
    for loader, model in trained:
        arg = loader.batch_size_arg
        if loader.batch_size is None and arg is not None and isinstance(arg.value, cst.Attribute) \
                and loader.site.path == file.path:
            options = _command_line_defaults(file.module) if options is None else options
            name = arg.value.attr.value
            found.append(TrainingLoader(loader, model, options.get(name), name if name in options else None))
        else:
            found.append(TrainingLoader(loader, model, loader.batch_size))
    return found


def training_inputs(file: FileFacts, batch: int) -> Iterator[LiteralInput]:
    """Literal tensors of `batch` samples fed to a batch-norm model in train mode, with
    gradients on and outside inference code, where a training step is taken with the call
    (`model(torch.randn(1, 3, 224, 224))` then `loss.backward()`), or anywhere when the input
    has one value per channel (`torch.randn(1, 32)`), which makes PyTorch raise. A shape check
    on a one-image batch (`def test(): net(torch.randn(1, 3, 32, 32))`) trains nothing."""
    inputs = [item for item in file.usage.inputs if item.batch == batch and item.call.mode is Mode.TRAIN
              and holds_live_bn(item.call.model) and _outside_inference(item.call)
              and (trains_with(file.usage, item.call.context) or _one_value_per_channel(item))]
    if inputs and not evals_batch_norm(file.module):
        yield from inputs


def _one_value_per_channel(item: LiteralInput) -> bool:
    return item.rank is not None and item.rank <= 2


def _trained_model(loader: Loader, steps: list[TrainingStep]) -> ModelValue | None:
    if loader.model is not None:  # fit(batch_size=n), fit(ds.batch(n))
        return loader.model if holds_live_bn(loader.model) else None
    if not any(_steps_over(step, loader) for step in steps):
        return None
    for call in loader.calls:
        if holds_live_bn(call.model) and _trains_batch_norm(call):
            return call.model
    return None


def _steps_over(step: TrainingStep, loader: Loader) -> bool:
    """A training step taken in a loop over `loader`, with gradients on."""
    return step.context.grad is Grad.ENABLED and any(loop.loader is loader for loop in step.context.loops)


def _trains_batch_norm(call: ModelCall) -> bool:
    """Batch norm runs on batch statistics in this call: torch in train mode (or a mode bnlint
    cannot tell, in a loop that trains), Keras with `training=True`."""
    if not _outside_inference(call):
        return False
    if call.model.root.framework is Framework.KERAS:
        return call.training_value is True
    return call.mode is not Mode.EVAL


def _outside_inference(call: ModelCall) -> bool:
    return call.context.grad is Grad.ENABLED and call.context.inference_reason() is None


def batch_size_source(training: TrainingLoader, module: cst.Module) -> str:
    """Where a message says the batch size comes from: `batch_size=BATCH_SIZE`, `.batch(1)`,
    the default of a command-line option, or the DataLoader default."""
    loader, arg = training.loader, training.loader.batch_size_arg
    if arg is None:
        return "DataLoader's default batch_size"
    written = module.code_for_node(arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)).strip()
    source = f"`.batch({written})`" if loader.kind == "batch" and arg.keyword is None else f"`{written}`"
    return f"{source}, the default of the `{training.option}` command-line option" if training.option else source


def _command_line_defaults(module: cst.Module) -> dict[str, int | None]:
    """The integer defaults of argparse options, by destination (`--batch-size` → `batch_size`):
    None for an option defined more than once, given a non-literal default, or whose parsed
    value is assigned to (`args.batch_size //= world_size`) or set by `set_defaults`."""
    collector = _ArgparseOptions()
    module.visit(collector)
    defaults: dict[str, int | None] = {}
    for name, default in collector.defaults:
        defaults[name] = None if name in defaults or name in collector.overridden else default
    return defaults


class _ArgparseOptions(cst.CSTVisitor):
    def __init__(self) -> None:
        self.defaults: list[tuple[str, int | None]] = []
        self.overridden: set[str] = set()

    def visit_Call(self, node: cst.Call) -> None:
        if not isinstance(node.func, cst.Attribute):
            return
        method = node.func.attr.value
        keywords = {arg.keyword.value: arg.value for arg in node.args if arg.keyword is not None}
        if method == "set_defaults":
            self.overridden.update(keywords)
        if method != "add_argument":
            return
        flags = [arg.value.evaluated_value for arg in node.args
                 if arg.keyword is None and isinstance(arg.value, cst.SimpleString)]
        destination = keywords.get("dest")
        if isinstance(destination, cst.SimpleString):
            name = destination.evaluated_value
        else:
            long = [flag for flag in flags if isinstance(flag, str) and flag.startswith("--")]
            name = (long or flags or [""])[0]
        if isinstance(name, str) and name:
            default = keywords.get("default")
            literal = int(default.evaluated_value) if isinstance(default, cst.Integer) else None
            self.defaults.append((name.lstrip("-").replace("-", "_"), literal))

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._assigned(target.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._assigned(node.target)

    def _assigned(self, target: cst.BaseExpression) -> None:
        if isinstance(target, cst.Attribute):
            self.overridden.add(target.attr.value)
