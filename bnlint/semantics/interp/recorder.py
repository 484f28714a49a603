"""The interpreter's companion for usage facts (bnlint.semantics.interp.usage): it keeps the
context stacks and each model's mode, answers what framework calls and model methods
return (`DataLoader(...)`, `model.eval()`, `nn.DataParallel(model)`), and records events."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

import libcst as cst

from bnlint.semantics.catalogue.constructors import Presence, constructor_presence
from bnlint.semantics.catalogue.layers import KERAS_ROOTS, Framework, Kind
from bnlint.semantics.interp.usage import (
    Context,
    Dataset,
    Freeze,
    FunctionalModel,
    Grad,
    GradContext,
    LiteralInput,
    Loader,
    Loop,
    Mode,
    ModelArgument,
    ModelCall,
    ModelValue,
    ModeSwitch,
    ModuleCall,
    OptimizerUse,
    OptimizerValue,
    ParallelWrap,
    Parameters,
    Site,
    TrainableWrite,
    TrainingStep,
    UsageFacts,
    evaluates,
)
from bnlint.semantics.interp.values import (UNKNOWN, Arg, ClassValue, Const, DictValue, Instance, Layer, ListValue, Param,
                                     LayerSequence, Tensor, Value, as_number)

_GRAD_CONTEXTS = {
    "torch.no_grad": Grad.NO_GRAD,
    "torch.inference_mode": Grad.INFERENCE,
    "torch.enable_grad": Grad.ENABLED,
    "torch.autograd.grad_mode.no_grad": Grad.NO_GRAD,
    "torch.autograd.no_grad": Grad.NO_GRAD,
}
_TAPES = frozenset({"tensorflow.GradientTape", "tf_keras.GradientTape"})
_WRAPPERS = {
    "torch.nn.DataParallel": "DataParallel",
    "torch.nn.parallel.DataParallel": "DataParallel",
    "torch.nn.parallel.DistributedDataParallel": "DistributedDataParallel",
    "torch.nn.parallel.distributed.DistributedDataParallel": "DistributedDataParallel",
}
_DATA_LOADERS = frozenset({"torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"})
_TENSOR_DATASETS = frozenset({"torch.utils.data.TensorDataset", "torch.utils.data.dataset.TensorDataset"})
_SUBSETS = frozenset({"torch.utils.data.Subset", "torch.utils.data.dataset.Subset"})
_RANDOM_SPLITS = frozenset({"torch.utils.data.random_split", "torch.utils.data.dataset.random_split"})
# Iterate a loader's batches unchanged: `for i, batch in enumerate(tqdm(loader))` loops over the loader.
_ITERATION_WRAPPERS = frozenset({"builtins.enumerate", "builtins.iter", "tqdm.tqdm", "tqdm.auto.tqdm",
                                 "tqdm.notebook.tqdm", "tqdm.std.tqdm"})
_TF_DATASETS = frozenset({"from_tensor_slices", "from_tensors", "from_generator", "range", "zip"})
_LITERAL_TENSORS = frozenset({"randn", "rand", "zeros", "ones", "empty", "randint", "full", "normal"})
_KERAS_FUNCTIONAL = frozenset({"Model", "Functional"})
_KERAS_RNN_WRAPPERS = frozenset({"RNN", "StackedRNNCells"})  # what they get as `cell` runs once per step
_KERAS_LOADERS = frozenset({"load_model"})
_MOVES = frozenset({"to", "cuda", "cpu", "float", "double", "half", "bfloat16", "type", "share_memory", "to_empty"})
_INFERENCE_METHODS = frozenset({"forward", "predict", "predict_on_batch", "predict_step", "__call__"})
_FIT_METHODS = frozenset({"fit", "fit_generator", "train_on_batch"})
# torch.optim classes whose weight_decay defaults to a non-zero value.
_DEFAULT_DECAY = {"AdamW": 0.01}
# Where models come from: the frameworks and torch's model zoos.
_MODEL_ROOTS = {"torch": Framework.TORCH, "torchvision": Framework.TORCH, "timm": Framework.TORCH,
                **dict.fromkeys(KERAS_ROOTS, Framework.KERAS)}


def _literal_bool(value: Value) -> bool | None:
    if isinstance(value, Param) and value.default is not None:
        value = value.default
    return value.value if isinstance(value, Const) and isinstance(value.value, bool) else None


def literal_int(value: Value) -> int | None:
    if isinstance(value, Param) and value.default is not None:
        value = value.default
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return value.value
    count = getattr(value, "concrete", None)
    return int(count) if count is not None and count.denominator == 1 else None


def _argument(args: Sequence[Arg], name: str, position: int | None) -> Arg | None:
    for arg in args:
        if arg.keyword == name:
            return arg
    positional = [arg for arg in args if arg.keyword is None and not arg.star]
    if position is not None and position < len(positional):
        return positional[position]
    return None


def _length(dataset: Value) -> int | None:
    """How many samples a dataset (or `Subset` indices) holds: a known-length dataset or
    `range`, or a list literal."""
    if isinstance(dataset, Dataset):
        return dataset.length
    if isinstance(dataset, ListValue) and not any(dataset.optional):
        return len(dataset.items)
    return None


def _spread(args: Sequence[Arg]) -> list[Arg]:
    """`**dict(batch_size=1)` / `**{"batch_size": 1}` as keyword arguments, when every key is known."""
    spread: list[Arg] = []
    for arg in args:
        value = arg.value
        if arg.star == "**" and isinstance(value, DictValue) and len(value.keys) == len(value.items) \
                and None not in value.keys:
            spread += [Arg(key, item, arg.node, "") for key, item in zip(value.keys, value.items, strict=True)]
        else:
            spread.append(arg)
    return spread


def _shape(args: Sequence[Arg]) -> list[Value]:
    """The size arguments of `torch.randn(1, 3, 32, 32)` / `torch.randn((1, 3))` / `size=`."""
    sized = _argument(args, "size", None)
    if sized is not None and isinstance(sized.value, ListValue):
        return sized.value.items
    positional = [arg.value for arg in args if arg.keyword is None and not arg.star]
    if len(positional) == 1 and isinstance(positional[0], ListValue):
        return positional[0].items
    return positional


_Item = TypeVar("_Item")


@contextmanager
def _pushed(stack: list[_Item], item: _Item) -> Iterator[None]:
    stack.append(item)
    try:
        yield
    finally:
        stack.pop()


class ModeBranches:
    """Each model's mode across alternative bodies: `begin()` before each body, `end()`
    after it, then `join()` keeps a mode they all agree on, else unknown."""

    def __init__(self, recorder: UsageRecorder) -> None:
        self.recorder = recorder
        self.before = dict(recorder.modes)
        self.after: list[dict[int, tuple[Mode, ModeSwitch | None]]] = []

    def begin(self) -> None:
        self.recorder.modes = dict(self.before)

    def end(self) -> None:
        self.after.append(dict(self.recorder.modes))

    def join(self) -> None:
        """A mode every body leaves is kept, with the switch that set it on one of them (a
        loop that ends with `model.train()`, entered with a fresh model, leaves it training)."""
        joined: dict[int, tuple[Mode, ModeSwitch | None]] = {}
        for key in set(self.before).union(*self.after):
            entry = self.before.get(key) or self.recorder.initial_mode(key)
            states = [branch.get(key, entry) for branch in self.after]
            if None in states or any(state[0] is not states[0][0] for state in states):
                joined[key] = (Mode.UNKNOWN, None)
                continue
            switches = [switch for _, switch in states if switch is not None]
            joined[key] = (states[0][0], switches[-1] if switches else None)
        self.recorder.modes = joined


class UsageRecorder:
    """The interpreter's companion for usage facts: keeps the context stacks and each
    model's mode, answers what framework calls and methods return, and records events."""

    def __init__(self, facts: UsageFacts,
                 model_class: Callable[[Value], tuple[Callable[[], Presence], Framework] | None]) -> None:
        self.facts = facts
        self.model_class = model_class  # a class value → (its presence, when asked; framework), None for others
        self.loops: list[Loop] = []
        self.grads: list[Grad] = []
        self.tapes = 0
        self.functions: list[str] = []
        self.evaluating: list[str] = []  # the running functions that do inference (usage.evaluates)
        self.modes: dict[int, tuple[Mode, ModeSwitch | None]] = {}  # by root model: mode, and what set it
        self.switched: dict[int, ModelValue] = {}  # the root models in `modes`, by id
        self.handles: dict[int, ModelValue] = {}  # parameters / instances used as models
        # Each function analysed on its own (parameters unknown) is a run of its own: a model
        # another run built (in `__init__`, read back through `self`) may have been switched
        # by code in between, so only the run that built a model knows it is in train mode.
        self.standalone_runs = 0  # the run going on
        self._runs_begun = 0
        self.tensor_models: dict[int, ModelValue] = {}  # tensors a model call produced
        self.literal_tensors: dict[int, tuple[Tensor, Site]] = {}  # where `torch.randn(1, ...)` was written
        self.tensor_calls: dict[int, ModelCall] = {}  # the same tensors: the call that produced each
        # The values whose ids key the tables above, kept alive: a freed value's id is reused
        # by the next value created, which would then inherit its model, mode or call.
        self._keys: list[object] = []

    @property
    def count(self) -> int:
        """How many events were recorded: a helper that added none is inert for usage too."""
        facts = self.facts
        return (len(facts.calls) + len(facts.switches) + len(facts.steps) + len(facts.loaders)
                + len(facts.optimizers) + len(facts.wraps) + len(facts.freezes) + len(facts.thaws))

    # ----- context ------------------------------------------------------------------------

    def context(self) -> Context:
        return Context(tuple(self.loops), self.grads[-1] if self.grads else Grad.ENABLED, self.tapes > 0,
                       tuple(self.functions), tuple(self.evaluating))

    @property
    def in_model_code(self) -> bool:
        """Running a model's own forward/call/constructor: calls there are not uses."""
        return any(name in ("forward", "call", "__call__", "__init__", "build") for name in self.functions)

    def enter(self, value: Value) -> bool:
        """A `with` item or decorator: True when it changed the context (undo with `leave`)."""
        if not isinstance(value, GradContext):
            return False
        if value.grad is None:
            self.tapes += 1
        else:
            self.grads.append(value.grad)
        return True

    def leave(self, value: Value) -> None:
        assert isinstance(value, GradContext)
        if value.grad is None:
            self.tapes -= 1
        else:
            self.grads.pop()

    def begin_standalone_run(self) -> None:
        """A function analysed on its own: no mode is known at its start."""
        self._runs_begun += 1
        self.standalone_runs = self._runs_begun
        self.modes = {}

    @contextmanager
    def aside(self) -> Iterator[None]:
        """Standalone runs started in the middle of another (the methods of a trainer built
        there): they see none of its context, and it resumes with its modes afterwards."""
        saved = (self.modes, self.standalone_runs, self.loops, self.grads, self.tapes, self.functions, self.evaluating)
        self.loops, self.grads, self.tapes, self.functions, self.evaluating = [], [], 0, [], []
        try:
            yield
        finally:
            (self.modes, self.standalone_runs, self.loops, self.grads, self.tapes, self.functions,
             self.evaluating) = saved

    def mode(self, model: ModelValue) -> tuple[Mode, ModeSwitch | None]:
        root = model.root
        if id(root) in self.modes:
            return self.modes[id(root)]
        return self._built_mode(root)

    def _built_mode(self, root: ModelValue) -> tuple[Mode, ModeSwitch | None]:
        fresh = root.fresh and root.built_in == self.standalone_runs and root.framework is Framework.TORCH
        return (Mode.TRAIN if fresh else Mode.UNKNOWN), None

    def initial_mode(self, key: int) -> tuple[Mode, ModeSwitch | None] | None:
        """The mode of a switched model before any switch (train mode when freshly built here)."""
        model = self.switched.get(key)
        return self._built_mode(model) if model is not None else None

    def branches(self) -> ModeBranches:
        """Alternative bodies (if/else, a loop body or none) run from the same modes."""
        return ModeBranches(self)

    def in_loop(self, loop: Loop) -> AbstractContextManager[None]:
        """The body of `loop` runs: events there record it in their context."""
        return _pushed(self.loops, loop)

    @contextmanager
    def in_function(self, function: cst.FunctionDef) -> Iterator[None]:
        """The body of `function` runs (a model's own `forward` is model code)."""
        name = function.name.value
        with _pushed(self.functions, name):
            if not evaluates(function):
                yield
                return
            with _pushed(self.evaluating, name):
                yield

    @property
    def in_model_loop(self) -> bool:
        """Inside a loop of a model's own code: calls of layers and submodules are recorded."""
        return bool(self.loops) and self.in_model_code

    def module_call(self, site: Site, callee: Value) -> None:
        """A layer or submodule called in a loop of a model's own code."""
        self.facts.module_calls.append(ModuleCall(site, callee, self.context()))

    # ----- values -------------------------------------------------------------------------

    def join_models(self, left: Value, right: Value) -> ModelValue | None:
        """A model after a branch: the wrapper when one side wrapped it (`if device == "cuda":
        net = nn.DataParallel(net)`); a model of either kind when the sides built models
        (`get_network(args)` returning `resnet20()` or `resnet32()`), which holds batch norm
        when both do."""
        if not (isinstance(left, ModelValue) and isinstance(right, ModelValue)):
            return None
        if left.root is right.root:
            return left if _wrapping_depth(left) >= _wrapping_depth(right) else right
        if left.inner is not None or right.inner is not None or left.framework is not right.framework:
            return None
        label = left.label if left.label == right.label else f"{left.label} or {right.label}"
        return ModelValue(lambda: _joined_presence(left.presence, right.presence), left.framework, label,
                          fresh=left.fresh and right.fresh, built_in=self.standalone_runs,
                          zoo=left.zoo and right.zoo, cls=left.cls if left.cls is right.cls else None)

    def model_of(self, value: Value, label: str = "model", as_model: bool = False) -> ModelValue | None:
        """The model a value holds. Parameters and unknown attributes become models only
        when code uses them as one (`as_model`: called, switched to eval)."""
        if isinstance(value, ModelValue):
            return value
        if isinstance(value, Instance):
            found = self.model_class(value.cls)
            if found is None:
                return None
            return self._handle(value, lambda: ModelValue(*found, value.cls.node.name.value, cls=value.cls))
        if isinstance(value, LayerSequence) and as_model:
            return self._handle(value, lambda: self._sequential(value))
        if isinstance(value, Param) and as_model:
            return self._handle(value, lambda: ModelValue(Presence.UNKNOWN, None, label))
        return None

    def _sequential(self, sequence: LayerSequence) -> ModelValue:
        model = ModelValue(sequence_presence(sequence), sequence_framework(sequence), "Sequential", fresh=True,
                           built_in=self.standalone_runs)
        for item in sequence.items:
            if isinstance(item, ModelValue):
                item.root.containers.append(model)
        return model

    def _handle(self, value: Value, make: Callable[[], ModelValue]) -> ModelValue:
        if id(value) not in self.handles:
            self._keys.append(value)
            self.handles[id(value)] = make()
        return self.handles[id(value)]

    def construct_class(self, cls: ClassValue, args: Sequence[Arg], site: Site) -> ModelValue | None:
        """`Net()` for a project model class: a fresh model. A Keras subclass built like a
        functional model (`CustomModel(inputs, outputs)`) also holds what its outputs are
        computed from."""
        found = self.model_class(cls)
        if found is None:
            return None
        presence, framework = found
        parts = [part for part in (self.model_of(arg.value) for arg in args) if part is not None]
        if parts and framework is Framework.TORCH:
            # `Detector(backbone)` holds the model it is built from.
            presence = _with_parts(presence, parts)
        model = ModelValue(presence, framework, cls.node.name.value, site.node, fresh=True, cls=cls,
                           built_in=self.standalone_runs)
        for part in parts:
            part.root.containers.append(model)
        outputs = _argument(args, "outputs", 1)
        if found[1] is Framework.KERAS and outputs is not None and isinstance(outputs.value, (Tensor, ListValue)):
            if output_presence(outputs.value, self.tensor_models) is Presence.YES:
                model.content = Presence.YES
            self._functional(model, outputs.value, site)
        return model

    def _functional(self, model: ModelValue, outputs: Value, site: Site) -> None:
        """Record a functional model with the model calls its outputs are computed from."""
        feeding = (self.tensor_calls.get(id(tensor)) for tensor in upstream(outputs))
        self.facts.functional.append(FunctionalModel(site, model, tuple(filter(None, feeding))))

    def external(self, qualname: str, args: Sequence[Arg], site: Site) -> Value | None:
        """What a call of a framework function or class returns, when it matters here."""
        call = site.node
        assert isinstance(call, cst.Call)
        short = qualname.rsplit(".", 1)[-1]
        root = qualname.split(".")[0]
        context = self.grad_context(qualname, args)
        if context is not None:
            return context
        if qualname in _WRAPPERS and args:
            inner = self.model_of(args[0].value, as_model=True)
            if inner is None:
                return None
            kind = _WRAPPERS[qualname]
            self.facts.wraps.append(ParallelWrap(site, kind, inner, self.context()))
            return ModelValue(lambda: inner.presence, Framework.TORCH, inner.label, call, inner=inner, wrapper=kind)
        if short in ("convert_sync_batchnorm", "convert_syncbn_model") and args:  # torch, timm; apex
            inner = self.model_of(args[0].value, as_model=True)
            if inner is not None:
                inner.root.sync_bn = True
            return inner
        if qualname in _DATA_LOADERS:
            return self._data_loader(args, site)
        if qualname in _TENSOR_DATASETS:
            lengths = {tensor.batch for tensor in (arg.value for arg in args) if isinstance(tensor, Tensor)}
            length = lengths.pop() if len(lengths) == 1 else None
            return Dataset(length, Framework.TORCH)
        if qualname in _ITERATION_WRAPPERS and args and isinstance(args[0].value, Loader):
            return args[0].value
        if qualname == "builtins.range":  # indices, or a dataset of its own (`DataLoader(range(100))`)
            bounds = [literal_int(arg.value) for arg in args]
            known = len(bounds) in (1, 2, 3) and None not in bounds and bounds[2:] != [0]
            return Dataset(len(range(*bounds)) if known else None, Framework.TORCH)  # type: ignore[arg-type]
        if qualname in _SUBSETS and len(args) > 1:
            return Dataset(_length(args[1].value), Framework.TORCH)
        if qualname in _RANDOM_SPLITS and len(args) > 1 and isinstance(args[1].value, ListValue):
            return ListValue([Dataset(literal_int(size), Framework.TORCH) for size in args[1].value.items])
        if root in ("tensorflow", "tf_keras") and ".data." in qualname and short in _TF_DATASETS:
            return Dataset(None, Framework.KERAS)
        if root == "torch" and qualname.count(".") == 1 and short in _LITERAL_TENSORS:
            # randint(low, high, size) / normal(mean, std, size): only the size tuple is a shape
            sizes = [arg for arg in args
                     if arg.keyword == "size" or (arg.keyword is None and isinstance(arg.value, ListValue))]
            shape = _shape(sizes[-1:] if short in ("randint", "normal") else args)
            batch = literal_int(shape[0]) if shape else None
            tensor = Tensor(rank=len(shape) or None, batch=batch)
            self.literal_tensors[id(tensor)] = (tensor, site)
            return tensor
        optimizer = ".optim." in f"{qualname}." and not any(part in qualname for part in ("lr_scheduler", "swa_utils"))
        if root == "torch" and optimizer and short[:1].isupper() and args:
            return self._optimizer(short, args, site)
        presence = constructor_presence(qualname)
        if presence is not None:
            return self._zoo_model(qualname, presence, args, call)
        if root in KERAS_ROOTS:
            if short in _KERAS_RNN_WRAPPERS:
                cell = _argument(args, "cells" if short == "StackedRNNCells" else "cell", 0)
                if cell is not None:
                    self.facts.rnn_cells.append(cell.value)
                return None
            if short in _KERAS_FUNCTIONAL and qualname.split(".")[-2] in ("keras", "models") and args:
                outputs = _argument(args, "outputs", 1)
                traced = outputs.value if outputs else UNKNOWN
                presence = output_presence(traced, self.tensor_models)
                model = ModelValue(presence, Framework.KERAS, "keras.Model", call, fresh=True, built_in=self.standalone_runs)
                self._functional(model, traced, site)
                return model
            if short in _KERAS_LOADERS:
                return ModelValue(Presence.UNKNOWN, Framework.KERAS, qualname, call, pretrained=True, zoo=True)
        return None

    @staticmethod
    def grad_context(qualname: str, args: Sequence[Arg]) -> GradContext | None:
        """`torch.no_grad()` and the like, `tf.GradientTape()`; also as bare decorators."""
        if qualname in _GRAD_CONTEXTS:
            return GradContext(_GRAD_CONTEXTS[qualname])
        if qualname == "torch.set_grad_enabled" and args and _literal_bool(args[0].value) is False:
            return GradContext(Grad.NO_GRAD)
        if qualname in _TAPES or qualname.endswith(".GradientTape"):
            return GradContext(None)
        return None

    def called_parameter(self, parameter: Param, call: cst.Call) -> ModelValue | None:
        """A parameter called like a model: one already used as a model (switched to eval),
        or one whose name says it is a model (`model`, `net`, `encoder`)."""
        if id(parameter) in self.handles or _MODEL_NAME.search(parameter.name):
            return self.model_of(parameter, parameter.name, as_model=True)
        return None

    def training_step(self, function: cst.Attribute, site: Site) -> None:
        """`loss.backward()`, `optimizer.step()`, `scaler.step(opt)`, `tape.gradient(...)`."""
        name = function.attr.value
        receiver = _label(function.value).lower()
        if name == "backward" or name == "apply_gradients" or (name == "gradient" and "tape" in receiver):
            self.step(site, name)
        elif name == "step" and ("optim" in receiver or "scaler" in receiver or receiver in ("opt", "solver")):
            self.step(site, name)

    def _zoo_model(self, qualname: str, presence: Presence, args: Sequence[Arg], call: cst.Call) -> ModelValue:
        framework = _MODEL_ROOTS.get(qualname.split(".")[0], Framework.TORCH)
        weights = _argument(args, "weights", None)
        pretrained = _argument(args, "pretrained", None)
        if framework is Framework.KERAS:  # keras.applications load ImageNet weights by default
            loaded = weights is None or not (isinstance(weights.value, Const) and weights.value.value is None)
        else:
            loaded = (pretrained is not None and _literal_bool(pretrained.value) is not False) or (
                weights is not None and not (isinstance(weights.value, Const) and weights.value.value is None))
        # transformers' `from_pretrained` returns the model already in eval mode.
        fresh = not qualname.endswith(".from_pretrained")
        return ModelValue(presence, framework, qualname, call, fresh=fresh, built_in=self.standalone_runs,
                          pretrained=loaded or not fresh, zoo=presence is Presence.UNKNOWN)

    def _data_loader(self, args: Sequence[Arg], site: Site) -> Loader:
        unpacked = any(arg.star for arg in args)  # `**loader_kwargs`: what it leaves out may be added later
        args = _spread(args)
        dataset = _argument(args, "dataset", 0)
        size = _argument(args, "batch_size", 1)
        drop_last = _argument(args, "drop_last", 8)
        sampler = _argument(args, "batch_sampler", None)
        batch = 1 if size is None and sampler is None else literal_int(size.value) if size is not None else None
        length = _length(dataset.value) if dataset is not None else None
        loader = Loader(site, Framework.TORCH, "DataLoader", None if unpacked and size is None else batch,
                        size.node if size is not None else None,
                        (None if unpacked else False) if drop_last is None else _literal_bool(drop_last.value),
                        length, self.context())
        self.facts.loaders.append(loader)
        return loader

    def _optimizer(self, name: str, args: Sequence[Arg], site: Site) -> OptimizerValue:
        params = _argument(args, "params", 0)
        decay = _argument(args, "weight_decay", None)
        value = params.value if params is not None else UNKNOWN
        model = value.model if isinstance(value, Parameters) and not value.single and not value.named else None
        weight_decay = as_number(decay.value) if decay is not None else _DEFAULT_DECAY.get(name, 0.0)
        self.facts.optimizers.append(
            OptimizerUse(site, name, model, weight_decay, decay.node if decay is not None else None))
        return OptimizerValue()

    def attribute(self, base: Value, name: str) -> Value | None:
        """`wrapped.module` is the wrapped model; `model.backbone` a part of the model."""
        model = base if isinstance(base, ModelValue) else None
        if model is None:
            return None
        if name == "module" and model.inner is not None:
            return model.inner
        if name in ("training", "trainable"):
            return UNKNOWN
        return ModelValue(Presence.UNKNOWN, model.framework, f"{model.label}.{name}", owner=model.root)

    def method(self, receiver: Value, name: str, args: Sequence[Arg], site: Site, attribute: cst.Attribute) -> Value | None:
        """A method call on a model, its parameters, a dataset or a gradient tape."""
        if isinstance(receiver, Dataset) and receiver.framework is Framework.KERAS:
            if name == "batch":
                return self._tf_batch(args, site)
            return receiver
        if isinstance(receiver, Loader):
            return receiver  # `ds.batch(32).prefetch(2)`
        if isinstance(receiver, Parameters):
            return None
        label = _label(attribute.value)
        as_model = name in ("eval", "train", "requires_grad_", "parameters", *_INFERENCE_METHODS, *_FIT_METHODS)
        model = self.model_of(receiver, label, as_model=as_model)
        if model is None:
            return None
        if name == "eval" and not args:
            self._switch(site, model, Mode.EVAL, attribute)
            return model
        if name == "train":
            flag = _argument(args, "mode", 0)
            literal = True if flag is None else _literal_bool(flag.value)
            mode = Mode.UNKNOWN if literal is None else Mode.TRAIN if literal else Mode.EVAL
            self._switch(site, model, mode, attribute)
            return model
        if name in _MOVES:
            return model
        if name == "requires_grad_":
            flag = _argument(args, "requires_grad", 0)
            if flag is not None and _literal_bool(flag.value) is False:
                self.facts.freezes.append(Freeze(site, model, self.context(), label))
            elif flag is None or _literal_bool(flag.value) is True:
                self.facts.thaws.append(Freeze(site, model, self.context(), label))
            return model
        if name in ("parameters", "named_parameters"):
            return Parameters(model, named=name == "named_parameters", name=label)
        if name in _INFERENCE_METHODS and not self.in_model_code:
            self.call(site, model, args, method=name)
            return Tensor(rank=None)
        if name in _FIT_METHODS:
            self.step(site, name)
            if name != "train_on_batch":
                self._fit_loader(model, args, site)
            return UNKNOWN
        return None

    def _switch(self, site: Site, model: ModelValue, mode: Mode, attribute: cst.Attribute) -> None:
        switch = ModeSwitch(site, model, mode, True, self.context(), attribute)
        self.facts.switches.append(switch)
        self._keys.append(model.root)
        self.switched[id(model.root)] = model.root
        self.modes[id(model.root)] = (mode, switch)

    def bare_switch(self, receiver: Value, attribute: cst.Attribute, site: Site) -> None:
        """`model.eval` as a statement of its own: nothing is called."""
        model = self.model_of(receiver, _label(attribute.value), as_model=True)
        if model is None and not isinstance(receiver, (Tensor, Const, Layer, ListValue)):
            model = ModelValue(Presence.UNKNOWN, None, _label(attribute.value))
        if model is not None:
            mode = Mode.EVAL if attribute.attr.value == "eval" else Mode.TRAIN
            self.facts.switches.append(ModeSwitch(site, model, mode, False, self.context(), attribute))

    def _tf_batch(self, args: Sequence[Arg], site: Site) -> Loader:
        size = _argument(args, "batch_size", 0)
        drop = _argument(args, "drop_remainder", 1)
        loader = Loader(site, Framework.KERAS, "batch", literal_int(size.value) if size else None,
                        size.node if size else None, _literal_bool(drop.value) if drop else None, None, self.context())
        self.facts.loaders.append(loader)
        return loader

    def _fit_loader(self, model: ModelValue, args: Sequence[Arg], site: Site) -> None:
        data = _argument(args, "x", 0)
        if data is not None and isinstance(data.value, Loader):
            data.value.model = model
            return
        size = _argument(args, "batch_size", None)
        if size is None:
            return  # Keras' default batch size is 32
        loader = Loader(site, Framework.KERAS, "fit", literal_int(size.value), size.node, None, None, self.context(),
                        model=model)
        self.facts.loaders.append(loader)

    def loop(self, node: cst.For | cst.While, path: str, iterated: Value) -> Loop:
        loader = iterated if isinstance(iterated, Loader) else None
        return Loop(node, path, loader, len(self.functions))

    def element(self, iterated: Value) -> Value | None:
        """What a for loop binds when it iterates parameters."""
        if not isinstance(iterated, Parameters):
            return None
        single = Parameters(iterated.model, single=True, name=iterated.name)
        return ListValue([UNKNOWN, single]) if iterated.named else single

    def attribute_write(self, owner: Value, name: str, value: Value, site: Site) -> None:
        """`param.requires_grad = False` for a parameter of a model; `model.trainable = ...`."""
        if isinstance(owner, Parameters) and owner.single and name == "requires_grad" and _literal_bool(value) is not None:
            frozen = _literal_bool(value) is False
            (self.facts.freezes if frozen else self.facts.thaws).append(
                Freeze(site, owner.model, self.context(), owner.name))
        model = self.model_of(owner, as_model=True) if isinstance(owner, (ModelValue, LayerSequence)) else None
        if model is not None and name == "trainable":
            self.facts.trainables.append(TrainableWrite(site, model, _literal_bool(value), self.context()))

    def call(self, site: Site, model: ModelValue, args: Sequence[Arg], method: str | None = None) -> Value:
        """`model(x)`: record the use, and what literal inputs it gets."""
        training = _argument(args, "training", None)
        mode, switch = self.mode(model)
        event = ModelCall(site, model, mode, self.context(), training.node if training is not None else None,
                          method, switch)
        self.facts.calls.append(event)
        for loop in self.loops:
            if loop.loader is not None:
                loop.loader.calls.append(event)
        first = _argument(args, "x", 0)
        if first is not None and isinstance(first.value, Tensor) and first.value.batch is not None:
            tensor, created = self.literal_tensors.get(id(first.value), (None, None))
            same_file = tensor is first.value and created is not None and created.path == site.path
            node = created.node if same_file else first.node.value  # `x = torch.randn(1, 3)` ... `model(x)`
            self.facts.inputs.append(LiteralInput(event, first.value.batch, node, first.value.rank))
        output = Tensor()
        self._keys.append(output)
        self.tensor_models[id(output)] = model
        self.tensor_calls[id(output)] = event
        return output

    def step(self, site: Site, kind: str) -> None:
        self.facts.steps.append(TrainingStep(site, kind, self.context()))

    def arguments(self, args: Sequence[Arg], path: str, helper: cst.FunctionDef | None) -> None:
        """Models handed to a function about to be inlined."""
        for arg in args:
            model = self.model_of(arg.value)
            if model is not None:
                self.facts.arguments.append(ModelArgument(Site(arg.node.value, path, helper), model, self.context()))


_MODEL_NAME = re.compile(r"(^|_)(model|net|network|encoder|backbone|classifier|generator|discriminator|student|teacher)s?$",
                         re.I)


def _with_parts(presence: Callable[[], Presence], parts: list[ModelValue]) -> Callable[[], Presence]:
    """A class's presence, or YES when a model it is built from holds batch norm: its
    definition only stores and calls that parameter, which reads as no layer of its own."""
    def combined() -> Presence:
        if any(part.presence is Presence.YES for part in parts):
            return Presence.YES
        return presence()
    return combined


def _joined_presence(left: Presence, right: Presence) -> Presence:
    return left if left is right else Presence.UNKNOWN


def _wrapping_depth(model: ModelValue) -> int:
    depth = 0
    while model.inner is not None:
        model, depth = model.inner, depth + 1
    return depth


def _label(expression: cst.BaseExpression) -> str:
    """`self.model` / `model` for messages; a call or subscript reads as `model`."""
    parts = []
    while isinstance(expression, cst.Attribute):
        parts.append(expression.attr.value)
        expression = expression.value
    if isinstance(expression, cst.Name):
        parts.append(expression.value)
        return ".".join(reversed(parts))
    return "model"


def sequence_presence(sequence: LayerSequence) -> Presence:
    """Whether an `nn.Sequential` / `keras.Sequential` holds batch norm."""
    found = Presence.NO
    for item in sequence.items:
        if isinstance(item, Layer):
            if item.spec.kind is Kind.BATCH_NORM:
                return Presence.YES
        elif isinstance(item, LayerSequence):
            inner = sequence_presence(item)
            if inner is Presence.YES:
                return inner
            found = inner if inner is Presence.UNKNOWN else found
        elif isinstance(item, ModelValue):
            if item.presence is Presence.YES:
                return Presence.YES
            found = Presence.UNKNOWN if item.presence is Presence.UNKNOWN else found
        else:
            found = Presence.UNKNOWN
    return found


def sequence_framework(sequence: LayerSequence) -> Framework | None:
    """The framework of an `nn.Sequential` / `keras.Sequential`: that of its first item that says."""
    for item in sequence.items:
        framework = (item.spec.framework if isinstance(item, Layer) else sequence_framework(item)
                     if isinstance(item, LayerSequence) else item.framework if isinstance(item, ModelValue) else None)
        if framework is not None:
            return framework
    return None


def upstream(outputs: Value) -> Iterator[Value]:
    """What a Keras functional model's outputs are computed from, traced back through every
    layer's inputs: each tensor once, and the values that are no tensor (unknown)."""
    pending = list(outputs.items) if isinstance(outputs, ListValue) else [outputs]
    seen: set[int] = set()
    while pending:
        value = pending.pop()
        if isinstance(value, Tensor):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value.producer, Layer):
                pending.extend(value.producer.inputs)
        yield value


def output_presence(outputs: Value, tensor_models: dict[int, ModelValue]) -> Presence:
    """Whether the layers behind a Keras functional model's outputs hold batch norm."""
    found = Presence.NO
    for tensor in upstream(outputs):
        if not isinstance(tensor, Tensor):
            found = Presence.UNKNOWN
            continue
        model = tensor_models.get(id(tensor))
        if model is not None:
            if model.presence is Presence.YES:
                return Presence.YES
            found = Presence.UNKNOWN if model.presence is Presence.UNKNOWN else found
        if isinstance(tensor.producer, Layer) and tensor.producer.spec.kind is Kind.BATCH_NORM:
            return Presence.YES
    return found
