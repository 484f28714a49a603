"""How models are used: which value holds which model, its train/eval mode along the code,
and the surroundings of every use (loops, `no_grad`, gradient tapes, the function running).

The interpreter (bnlint.semantics.interp.interpreter) calls the `UsageRecorder` (bnlint.semantics.interp.recorder)
as it walks training and evaluation code, inlining helpers with their real arguments, so `evaluate(model, loader)`
sees the caller's model and `set_eval(model)` switches it at the call site. What is
recorded is `UsageFacts`: plain events the BN1xx/BN2xx/BN4xx rules read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache

import libcst as cst

from bnlint.semantics.catalogue.constructors import Presence
from bnlint.semantics.catalogue.layers import Framework
from bnlint.semantics.interp.values import ClassValue, Value
from bnlint.semantics.syntax import walk


class Mode(str, Enum):
    TRAIN = "train"
    EVAL = "eval"
    UNKNOWN = "unknown"


class Grad(str, Enum):
    ENABLED = "enabled"
    NO_GRAD = "no_grad"  # torch.no_grad(), also torch.set_grad_enabled(False)
    INFERENCE = "inference_mode"


# Words in a function name that say the function runs a model for inference.
_INFERENCE_WORDS = frozenset({
    "eval", "evaluate", "evaluation", "validate", "validation", "val", "valid", "test", "testing", "predict",
    "prediction", "predictions", "infer", "inference", "score", "scoring",
})
_TRAINING_WORDS = frozenset({"train", "training", "fit", "finetune", "step", "update"})


def says_inference(name: str) -> bool:
    """`evaluate`, `validate_epoch`, `run_test`, `predict`: a function for inference. Test
    functions of a test suite (`test_forward`) and names that also say training
    (`train_and_evaluate`) are not."""
    if name.startswith(("test_", "_test")) or name.startswith("test") and name[4:5].isupper():
        return False
    words = name_words(name)
    return bool(words & _INFERENCE_WORDS) and not words & _TRAINING_WORDS


def name_words(name: str) -> set[str]:
    """The lower-case words of a snake_case or camelCase name."""
    return {word.lower() for word in re.split(r"_+|(?<=[a-z])(?=[A-Z])", name) if word}


# Methods whose call shows a function doing the work of inference: loading weights, turning
# outputs into predictions or a metric, collecting them.
_INFERENCE_WORK = frozenset({
    "load_state_dict", "load", "load_weights", "load_checkpoint", "from_pretrained", "argmax", "topk", "softmax",
    "sigmoid", "item", "eq", "append", "extend", "cat", "stack", "numpy", "tolist", "accuracy_score",
})


def evaluates(function: cst.FunctionDef) -> bool:
    """A function named for inference (`says_inference`) that does what inference does: it
    iterates data, loads weights, computes a metric or collects predictions, or returns
    outputs to its caller. A `def test(): y = net(torch.randn(2, 3, 32, 32)); print(y.size())`
    shape smoke test does none of these: it is neither inference nor training. A function
    exported with a serving signature (`@tf.function(input_signature=...)`) serves predictions."""
    return (says_inference(function.name.value) and _does_inference_work(function)) or _serves(function)


def _serves(function: cst.FunctionDef) -> bool:
    """`@tf.function(input_signature=[...])`: traced for export, as a SavedModel's signature."""
    for decorator in function.decorators:
        call = decorator.decorator
        if isinstance(call, cst.Call) and isinstance(call.func, (cst.Attribute, cst.Name)) and any(
                arg.keyword is not None and arg.keyword.value == "input_signature" for arg in call.args):
            called = call.func.attr.value if isinstance(call.func, cst.Attribute) else call.func.value
            if called == "function":
                return True
    return False


@lru_cache(maxsize=4096)
def _does_inference_work(function: cst.FunctionDef) -> bool:
    for node in walk(function.body):
        if isinstance(node, cst.For) and not _iterates_literal(node.iter):
            return True
        if isinstance(node, (cst.Return, cst.Yield)) and node.value is not None:
            return True
        if isinstance(node, cst.ComparisonTarget) and isinstance(node.operator, cst.Equal):
            return True  # `(predicted == labels).sum()`
        if isinstance(node, cst.Call):
            called = node.func
            name = called.attr.value if isinstance(called, cst.Attribute) else called.value \
                if isinstance(called, cst.Name) else None
            if name in _INFERENCE_WORK:
                return True
    return False


def _iterates_literal(iterated: cst.BaseExpression) -> bool:
    """`range(3)`, `[1, 2]`: a loop over settings, not over data."""
    if isinstance(iterated, (cst.List, cst.Tuple)):
        return True
    return isinstance(iterated, cst.Call) and isinstance(iterated.func, cst.Name) and iterated.func.value == "range"



# ----- values ---------------------------------------------------------------------------------


@dataclass(eq=False)
class ModelValue(Value):
    """A model object: an instance of a project `nn.Module` / Keras model class, a model
    from a known constructor (`torchvision.models.resnet50()`), a Sequential, a parameter or
    attribute used as a model, or a wrapper (`nn.DataParallel(model)`) of another."""

    # Whether it holds batch norm, or how to find out: most models built in model code never
    # meet a rule that asks, and reading a class's definition for the answer is not free.
    content: Presence | Callable[[], Presence]
    framework: Framework | None
    label: str  # how messages name it: `Net`, `torchvision.models.resnet50`
    node: cst.CSTNode | None = None  # where it was built
    fresh: bool = False  # built by the code analysed, so in train mode (torch modules start training)
    built_in: int = 0  # the standalone run (UsageRecorder.standalone_runs) that built it
    pretrained: bool = False  # keras.applications / a loaded model
    zoo: bool = False  # from a model zoo or a file: content unknown statically, but a real network
    inner: ModelValue | None = None  # what a wrapper wraps
    wrapper: str | None = None  # "DataParallel", "DistributedDataParallel"
    owner: ModelValue | None = None  # the model this one is a submodule of (`model.backbone`)
    sync_bn: bool = False  # passed through SyncBatchNorm.convert_sync_batchnorm
    cls: ClassValue | None = None  # the project model class it is an instance of
    # Models built from this one (`nn.Sequential(backbone, head)`, `Detector(backbone)`): putting
    # them in train mode puts this one there too.
    containers: list[ModelValue] = field(default_factory=list)

    @property
    def presence(self) -> Presence:
        if not isinstance(self.content, Presence):
            self.content = self.content()
        return self.content

    @property
    def root(self) -> ModelValue:
        model = self
        while model.inner is not None:
            model = model.inner
        return model

    @property
    def may_hold_bn(self) -> bool:
        """The policy of the usage rules: a model that holds batch norm, or one whose content
        cannot be known but that comes from a model zoo or a saved file (those almost all
        hold batch norm or dropout, which a wrong mode breaks as well). A model of unknown
        content built by code bnlint cannot see is not assumed to."""
        root = self.root
        return root.presence is Presence.YES or (root.presence is Presence.UNKNOWN and root.zoo)


@dataclass(eq=False)
class GradContext(Value):
    """`torch.no_grad()`, `torch.inference_mode()`, `torch.enable_grad()`, `tf.GradientTape()`."""

    grad: Grad | None  # None for a gradient tape


@dataclass(eq=False)
class Parameters(Value):
    """`model.parameters()` (or one parameter of it when `single`)."""

    model: ModelValue
    single: bool = False
    named: bool = False
    name: str = "model"  # how the code names the model: `resnet` in `resnet.parameters()`


@dataclass(eq=False)
class OptimizerValue(Value):
    pass


@dataclass(eq=False)
class Dataset(Value):
    """A dataset whose length may be known (`TensorDataset(torch.randn(100, 3))`), or a
    `tf.data` pipeline before batching."""

    length: int | None
    framework: Framework


# ----- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A CST node and the file holding it, with the module-level function around it (so a
    finding in another file's helper can be placed: see bnlint.crossfile)."""

    node: cst.CSTNode
    path: str
    helper: cst.FunctionDef | cst.ClassDef | None  # a class: a finding inside another file's class (BN301)


@dataclass(eq=False)
class Loop:
    """A loop being run; `loader` is what it iterates when that is a data loader."""

    node: cst.For | cst.While
    path: str  # the file holding it
    loader: Loader | None = None
    depth: int = 0  # how many functions were running: events at this depth are in the loop's own code


@dataclass(frozen=True)
class Context:
    """Where an event happens: enclosing loops (outermost first, across inlined calls), the
    gradient mode, whether a `tf.GradientTape` is recording, and the functions running
    (outermost first)."""

    loops: tuple[Loop, ...] = ()
    grad: Grad = Grad.ENABLED
    tape: bool = False
    functions: tuple[str, ...] = ()
    evaluating: tuple[str, ...] = ()  # the running functions that `evaluates()`, outermost first

    def inference_reason(self) -> str | None:
        """Why code here runs for inference, or None."""
        if self.grad is Grad.NO_GRAD:
            return "under torch.no_grad()"
        if self.grad is Grad.INFERENCE:
            return "under torch.inference_mode()"
        if self.evaluating:
            return f"in `{self.evaluating[-1]}()`"
        return None

    def within(self, loop: Loop) -> bool:
        return any(outer is loop for outer in self.loops)

    def directly_in(self, loop: Loop) -> bool:
        """In the loop's body, in the function that runs the loop (not in a called helper)."""
        return self.within(loop) and len(self.functions) == loop.depth


@dataclass(frozen=True)
class ModelCall:
    """`model(x)` (or `model.predict(x)`, `model.forward(x)`) outside the model's own code."""

    site: Site
    model: ModelValue
    mode: Mode  # torch: the mode reaching the call
    context: Context
    training: cst.Arg | None  # Keras: the `training=` argument as written
    method: str | None = None  # `predict`, `forward`...; None for a plain call
    mode_switch: ModeSwitch | None = None  # the switch that set `mode`; None for a fresh model

    @property
    def training_value(self) -> object:
        """The literal `training=` (True / False), None when absent, ... when not literal."""
        if self.training is None:
            return None
        value = self.training.value
        if isinstance(value, cst.Name) and value.value in ("True", "False"):
            return value.value == "True"
        return ...


@dataclass(frozen=True)
class ModeSwitch:
    """`model.eval()`, `model.train()`, `model.train(False)`, or a bare `model.eval` (not called)."""

    site: Site
    model: ModelValue
    mode: Mode
    called: bool
    context: Context
    attribute: cst.Attribute  # the `model.eval` expression


@dataclass(frozen=True)
class ModuleCall:
    """A layer or submodule called by model code inside a loop (`self.cell(x_t, h)` in
    `forward`): what it holds (a layer, a Sequential, a ModuleList, an instance) and the
    loops around the call (what BN301 reads)."""

    site: Site
    callee: Value
    context: Context


@dataclass(frozen=True)
class ModelArgument:
    """A model passed to a function bnlint follows (`validate(model, loader)`): how the
    calling code names it, for fixes that must be written there."""

    site: Site  # the argument's expression
    model: ModelValue
    context: Context


@dataclass(frozen=True)
class TrainingStep:
    """Evidence that code here trains: `loss.backward()`, `optimizer.step()`, `tape.gradient()`,
    `model.fit()`."""

    site: Site
    kind: str
    context: Context


@dataclass(eq=False)
class Loader(Value):
    """Batches of data: `DataLoader(...)`, a `tf.data` pipeline after `.batch(n)`, or a
    Keras `fit(batch_size=n)`."""

    site: Site
    framework: Framework
    kind: str  # "DataLoader", "batch", "fit"
    batch_size: int | None  # the literal batch size
    batch_size_arg: cst.Arg | None  # as written; None when the default applies
    drop_last: bool | None  # literal drop_last (torch; False when absent), None when unknown
    dataset_length: int | None
    context: Context
    calls: list[ModelCall] = field(default_factory=list)  # model calls in loops over it
    model: ModelValue | None = None  # fit(): the model trained


# Values whose methods matter (`model.eval()`, `ds.batch(8)`): the interpreter leaves
# their calls to the recorder.
USAGE_VALUES = (ModelValue, Parameters, Dataset, Loader, GradContext, OptimizerValue)


@dataclass(frozen=True)
class OptimizerUse:
    """`torch.optim.X(params, ..., weight_decay=...)`."""

    site: Site
    name: str
    model: ModelValue | None  # the model all of whose parameters it optimizes in one group
    weight_decay: float | None  # literal (or the optimizer's default)
    weight_decay_arg: cst.Arg | None


@dataclass(frozen=True)
class ParallelWrap:
    """`nn.DataParallel(model)` / `DistributedDataParallel(model)`."""

    site: Site
    kind: str
    model: ModelValue
    context: Context


@dataclass(frozen=True)
class Freeze:
    """Parameters of (a part of) a model frozen: `p.requires_grad = False` over
    `model.parameters()`, or `model.requires_grad_(False)`."""

    site: Site
    model: ModelValue  # the frozen part
    context: Context
    name: str  # how the code names it: `resnet`, `model.backbone`


@dataclass(frozen=True)
class LiteralInput:
    """A literal tensor (`torch.randn(1, 3, 224, 224)`) fed to a model."""

    call: ModelCall
    batch: int
    node: cst.CSTNode  # the tensor-creating call
    rank: int | None = None  # how many dimensions it has, when known


@dataclass(frozen=True)
class FunctionalModel:
    """`keras.Model(inputs, outputs)`, with the model calls its outputs are computed from
    (a base model called while building it runs in the mode the whole model is called in)."""

    site: Site
    model: ModelValue
    calls: tuple[ModelCall, ...]


@dataclass(frozen=True)
class TrainableWrite:
    """`model.trainable = True / False` (Keras); `value` is None when not a literal."""

    site: Site
    model: ModelValue
    value: bool | None
    context: Context


@dataclass
class UsageFacts:
    calls: list[ModelCall] = field(default_factory=list)
    switches: list[ModeSwitch] = field(default_factory=list)
    steps: list[TrainingStep] = field(default_factory=list)
    loaders: list[Loader] = field(default_factory=list)
    optimizers: list[OptimizerUse] = field(default_factory=list)
    wraps: list[ParallelWrap] = field(default_factory=list)
    freezes: list[Freeze] = field(default_factory=list)
    thaws: list[Freeze] = field(default_factory=list)  # requires_grad set back to True (GAN steps toggle it)
    inputs: list[LiteralInput] = field(default_factory=list)
    arguments: list[ModelArgument] = field(default_factory=list)
    functional: list[FunctionalModel] = field(default_factory=list)
    trainables: list[TrainableWrite] = field(default_factory=list)
    module_calls: list[ModuleCall] = field(default_factory=list)
    rnn_cells: list[Value] = field(default_factory=list)  # what `keras.layers.RNN(cell)` / `StackedRNNCells` got

    def switches_of(self, model: ModelValue) -> list[ModeSwitch]:
        root = model.root
        return [switch for switch in self.switches if switch.model.root is root]

    def calls_of(self, model: ModelValue) -> list[ModelCall]:
        root = model.root
        return [call for call in self.calls if call.model.root is root]


def model_expression(call: ModelCall) -> cst.BaseExpression | None:
    """The expression naming the model at a call: `model` in `model(x)` and `model.predict(x)`."""
    node = call.site.node
    if not isinstance(node, cst.Call):
        return None
    function = node.func
    if call.method is not None and isinstance(function, cst.Attribute):
        function = function.value
    return function if isinstance(function, (cst.Name, cst.Attribute)) else None
