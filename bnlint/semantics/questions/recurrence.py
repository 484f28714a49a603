"""Recurrence: the code of a file that runs once per time step (what BN301 reads).

Batch norm keeps one set of running statistics per module. Inside a recurrent step, that one
set is shared by every time step although each step's activations have a distribution of
their own. Two shapes of recurrence are recognised:

- cell classes: subclasses of torch's `RNNCellBase` / `RNNCell` / `LSTMCell` / `GRUCell` or
  of a Keras RNN cell, Keras layers that define `state_size`, classes passed to
  `keras.layers.RNN`, and classes whose instances are called at every step of a time loop;
- time loops: loops in `forward` / `call` (or the methods they call) that walk time steps.
  A loop is over time when it iterates a sequence length (`range(x.size(1))`, `range(seq_len)`),
  unbinds a tensor (`x.unbind(1)`, `tf.unstack`), or feeds a module's output back into the
  same module next to a per-step input (`h = self.cell(x_t, h)`). A loop over modules
  (`for layer in self.layers`, `range(self.num_layers)`) is depth, not time.

What a call runs comes from the interpreter: it records every layer or submodule called in a
loop of model code (`UsageFacts.module_calls`) with the value called and the loops around it,
and the classes of the file as it evaluated them. What is decided here is the syntax of the
loops: time or depth, and whether the callee is picked per step (`self.bns[t](h)` is a
separate batch norm per step, the fix the literature uses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path

import libcst as cst

from bnlint.semantics.catalogue.layers import KERAS_ROOTS, Framework, Kind
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.usage import ModelValue, ModuleCall
from bnlint.semantics.interp.values import (ClassValue, ForeignInstance, FunctionValue, Instance, Layer, LayerRef,
                                            LayerSequence, ListValue, ModuleRef, Resolver, Value)
from bnlint.semantics.names import dotted_name
from bnlint.semantics.project.index import BN_TEXT, ProjectIndex
from bnlint.semantics.questions.channels import is_batch_norm
from bnlint.semantics.syntax import Parents, children, parents, walk

_TORCH_CELL_BASES = frozenset({"RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"})
_KERAS_CELL_BASES = frozenset({
    "AbstractRNNCell", "SimpleRNNCell", "LSTMCell", "GRUCell", "DropoutRNNCell", "ConvLSTMCell", "PeepholeLSTMCell",
})
_STEP_METHODS = frozenset({"forward", "call", "__call__"})
# Words of a loop bound (`range(seq_len)`, `range(self.num_layers)`) that say what it counts.
_TIME_WORDS = frozenset({
    "t", "len", "length", "lengths", "seq", "seqlen", "sequence", "step", "steps", "timestep", "timesteps", "time",
    "times", "frame", "frames", "horizon", "token", "tokens",
})
_DEPTH_WORDS = frozenset({
    "layer", "layers", "block", "blocks", "depth", "stage", "stages", "level", "levels", "head", "heads", "scale",
    "scales", "module", "modules", "iter", "iters", "iteration", "iterations", "group", "groups", "branch",
    "branches", "expert", "experts",
})
_TENSOR_SIZES = frozenset({"size", "shape", "get_shape"})
_UNBINDS = frozenset({"unbind", "unstack"})
_MODULE_ITERATORS = frozenset({"children", "modules", "named_children", "named_modules", "values", "items"})
_WRAPPERS = frozenset({"enumerate", "reversed", "list", "tuple", "sorted", "zip"})
_Loop = cst.For | cst.While


class _Span(str, Enum):
    """What a loop iterates."""

    TIME = "time"
    DEPTH = "depth"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Norm:
    """A batch-norm constructor (or functional) call, and the layer's name."""

    node: cst.Call
    name: str


@dataclass(frozen=True)
class Cell:
    """A recurrent cell class and the batch norms built for it."""

    node: cst.ClassDef
    path: str  # the file holding it: another file's cell is reported there
    why: str  # "a subclass of torch.nn.RNNCellBase", "passed to keras.layers.RNN"...
    loop: _Loop | None  # the time loop that calls it, when that makes it a cell
    norms: tuple[Norm, ...]


@dataclass(frozen=True)
class StepCall:
    """A call made at every step of a time loop that runs batch norm: a batch-norm module
    (or a container holding one) of this file, or an instance of another file's class."""

    call: cst.Call
    loop: _Loop
    norms: tuple[Norm, ...]  # the batch norms it runs, when they are built in this file
    imported: str | None = None  # else: the qualified name of the other file's class


@dataclass
class Recurrence:
    cells: list[Cell] = field(default_factory=list)
    step_calls: list[StepCall] = field(default_factory=list)


def recurrence(facts: FileFacts, project: ProjectIndex | None) -> Recurrence:
    """The cells and per-step batch-norm calls of a file (cells of other project files
    found through the project)."""
    norms = {layer.node: layer for layer in (*facts.own_layers(), *facts.functional_bn) if is_batch_norm(layer)}
    if not norms and not (project is not None and project.imports_batch_norm(facts.source, Path(facts.path))):
        return Recurrence()  # no batch norm here, and none to call from another file
    return _RecurrenceSearch(facts, norms).run()


@dataclass(frozen=True)
class _Scope:
    """Where a loop runs: a function, and the class whose method it is."""

    function: cst.FunctionDef
    cls: cst.ClassDef | None

    @property
    def self_name(self) -> str | None:
        params = [*self.function.params.posonly_params, *self.function.params.params]
        return params[0].name.value if self.cls is not None and params else None


class _RecurrenceSearch:
    def __init__(self, facts: FileFacts, norms: dict[cst.Call, Layer]) -> None:
        self.facts = facts
        self.norms = norms
        self.cells: dict[cst.ClassDef, Cell] = {}
        self.step_calls: list[StepCall] = []
        self.class_norms: dict[cst.ClassDef, tuple[Norm, ...]] = {}
        self.time_loops: dict[_Loop, bool] = {}
        self.fed_back: dict[_Loop, set[cst.Call]] = {}
        self.variables: dict[_Loop | cst.FunctionDef, set[str]] = {}  # what changes per step, by loop or called method

    @cached_property
    def tree(self) -> Parents:
        """The parent map, built only when a loop of model code calls a module."""
        return parents(self.facts.module)

    def run(self) -> Recurrence:
        classes = {cls.node: cls for cls in self.facts.classes}
        for cls in classes.values():
            why = _explicit_cell(cls, self.facts.source)
            if why is not None:
                self._add_cell(cls, why, None)
        for value in self.facts.usage.rnn_cells:
            for cls in _classes_in(value):
                self._add_cell(cls, "passed to keras.layers.RNN", None)
        for event in self.facts.usage.module_calls:
            self._step_call(event)
        return Recurrence(list(self.cells.values()), self.step_calls)

    # ----- cells ------------------------------------------------------------------------------

    def _add_cell(self, cls: ClassValue, why: str, loop: _Loop | None) -> None:
        norms = self._norms_of_class(cls)
        if norms and cls.node not in self.cells:
            self.cells[cls.node] = Cell(cls.node, cls.path, why, loop, norms)

    def _norms_of_class(self, cls: ClassValue, resolve: Resolver | None = None) -> tuple[Norm, ...]:
        """The batch norms a class builds: in its body, in the classes of its file it derives
        from or instantiates, in the module-level helpers of its file it calls. `resolve`
        reads the constructors of another file's class."""
        if cls.node in self.class_norms:
            return self.class_norms[cls.node]
        self.class_norms[cls.node] = ()  # against cycles
        found: list[Norm] = []
        for base in cls.bases:
            if isinstance(base, ClassValue) and base.path == cls.path:
                found += self._norms_of_class(base, resolve)
        for node in walk(cls.node.body, into_scopes=True):
            if not isinstance(node, cst.Call):
                continue
            norm = self._norm(node, cls, resolve)
            if norm is not None:
                found.append(norm)
            elif isinstance(node.func, cst.Name):
                value = _bound(cls, node.func.value)
                if isinstance(value, ClassValue) and value.node is not cls.node and value.path == cls.path:
                    found += self._norms_of_class(value, resolve)
                elif isinstance(value, FunctionValue) and value.module_level and value.path == cls.path:
                    found += (norm for call in walk(value.node, into_scopes=True)
                              if isinstance(call, cst.Call) and (norm := self._norm(call, value, resolve)))
        self.class_norms[cls.node] = tuple(dict.fromkeys(found))
        return self.class_norms[cls.node]

    def _norm(self, call: cst.Call, definition: ClassValue | FunctionValue, resolve: Resolver | None) -> Norm | None:
        """A batch norm built by a call: one the interpreter built in this file, or in
        another file a constructor that names batch norm where it was written."""
        if definition.path == self.facts.path or resolve is None:
            layer = self.norms.get(call)
            return Norm(call, layer.spec.name) if layer is not None else None
        built = resolve(call.func, definition)
        if isinstance(built, LayerRef) and built.spec.kind is Kind.BATCH_NORM:
            return Norm(call, built.spec.name)
        return None

    # ----- calls at every step of a time loop -------------------------------------------------

    def _step_call(self, event: ModuleCall) -> None:
        call = event.site.node
        if event.site.path != self.facts.path or not isinstance(call, cst.Call):
            return
        if not event.context.functions or event.context.functions[0] not in _STEP_METHODS:
            return  # a loop of `forward` / `call` or the methods they call
        loop = next((loop.node for loop in event.context.loops
                     if loop.path == self.facts.path and self._is_time_loop(loop.node)), None)
        if loop is None:
            return
        variables = self._variables(loop, call)
        if _names(call.func) & variables:
            return  # a module picked per step (`self.bns[t]`)
        layer = self.norms.get(call)
        if layer is not None and layer.spec.functional:  # F.batch_norm(x, running_mean, ...)
            if not any(_names(arg.value) & variables for arg in call.args[1:]):  # the same buffers every step
                self._add_step(call, loop, (Norm(call, layer.spec.name),))
            return
        fed_back = call in self._fed_back(loop)
        norms: list[Norm] = []
        for value in _held(event.callee):
            if isinstance(value, Layer):
                norms += [Norm(value.node, value.spec.name)] if value.node in self.norms else []
                continue
            if isinstance(value, ForeignInstance):
                definition = value.definition()
                if isinstance(definition, ClassValue) and _explicit_cell(definition, None) is None:
                    self._foreign_class(call, loop, definition, fed_back, value)
                continue
            cls = _class_of(value)
            if cls is None or _explicit_cell(cls, None) is not None:
                continue  # reported as a cell already
            elif fed_back:  # `h = self.cell(x_t, h)`: the class is the cell
                self._add_cell(cls, "called at every step of a time loop", loop)
            else:  # a module applied to each step (`self.encoder(x[:, t])`)
                norms += self._norms_of_class(cls)
        if norms:
            self._add_step(call, loop, tuple(norms))

    def _foreign_class(self, call: cst.Call, loop: _Loop, cls: ClassValue, fed_back: bool,
                       instance: ForeignInstance) -> None:
        """Another file's class called at every step: a cell when its output is fed back
        (reported at its batch norms, in its file), else reported at the call."""
        if fed_back and self._norms_of_class(cls, instance.resolve):
            self._add_cell(cls, "called at every step of a time loop", loop)
        elif _uses_batch_norm(cls.node):
            self.step_calls.append(StepCall(call, loop, (), instance.qualname))

    def _add_step(self, call: cst.Call, loop: _Loop, norms: tuple[Norm, ...]) -> None:
        self.step_calls.append(StepCall(call, loop, tuple(dict.fromkeys(norms))))

    # ----- the syntax of loops ----------------------------------------------------------------

    def _scope(self, node: cst.CSTNode) -> _Scope | None:
        """The function holding a node, and the class it is a method of."""
        function = self.tree.enclosing(node, cst.FunctionDef)
        return self._function_scope(function) if function is not None else None

    def _function_scope(self, function: cst.FunctionDef) -> _Scope:
        owner = self.tree.enclosing(function, (cst.ClassDef, cst.FunctionDef))
        return _Scope(function, owner if isinstance(owner, cst.ClassDef) else None)

    def _is_time_loop(self, loop: _Loop) -> bool:
        if loop not in self.time_loops:
            scope = self._scope(loop)
            self.time_loops[loop] = scope is not None and scope.cls is not None and _is_time_loop(loop, scope)
        return self.time_loops[loop]

    def _fed_back(self, loop: _Loop) -> set[cst.Call]:
        if loop not in self.fed_back:
            scope = self._scope(loop)
            self.fed_back[loop] = _fed_back(loop, scope) if scope is not None else set()
        return self.fed_back[loop]

    def _variables(self, loop: _Loop, call: cst.Call) -> set[str]:
        """The names that may differ from step to step at a call: the loop's variables, or
        in a method the loop calls (`self._step(x_t, h)`), its parameters and locals."""
        function = self.tree.enclosing(call, cst.FunctionDef)
        key = loop if function is None or self.tree.enclosing(loop, cst.FunctionDef) is function else function
        if key not in self.variables:
            if key is function:
                local = {param.name.value for param in _parameters(function)} - {self._function_scope(function).self_name}
                self.variables[key] = local | set().union(set(), *(targets for targets, _ in _assignments(function.body)))
            else:
                self.variables[key] = _loop_variables(loop)
        return self.variables[key]


# ----- what a value runs ----------------------------------------------------------------------


def _held(value: Value) -> Iterator[Value]:
    """The modules a called value runs: itself, or the items of a container."""
    if isinstance(value, (ListValue, LayerSequence)):
        for item in value.items:
            yield from _held(item)
    else:
        yield value


def _class_of(value: Value) -> ClassValue | None:
    return value.cls if isinstance(value, (Instance, ModelValue)) else None


def _classes_in(value: Value) -> Iterator[ClassValue]:
    for held in _held(value):
        cls = _class_of(held)
        if cls is not None:
            yield cls


def _bound(definition: ClassValue | FunctionValue, name: str) -> Value | None:
    """What a name was bound to where a definition was written (as the interpreter evaluated it)."""
    for scope in definition.scope:
        if name in scope:
            return scope[name]
    return None


def _cell_base(cls: ClassValue, seen: frozenset[int] = frozenset()) -> str | None:
    """The RNN-cell base class a class derives from (through the classes of its file)."""
    for base in cls.bases:
        if isinstance(base, ClassValue):
            if id(base.node) not in seen:
                found = _cell_base(base, seen | {id(cls.node)})
                if found:
                    return found
            continue
        if not isinstance(base, ModuleRef):
            continue
        qualname = base.qualname
        root, short = qualname.split(".")[0], qualname.rsplit(".", 1)[-1]
        if short in (_TORCH_CELL_BASES if root == "torch" else _KERAS_CELL_BASES if root in KERAS_ROOTS else ()):
            return qualname
    return None


def _is_torch_module(cls: ClassValue, seen: frozenset[int] = frozenset()) -> bool:
    for base in cls.bases:
        if isinstance(base, ClassValue):
            if id(base.node) not in seen and _is_torch_module(base, seen | {id(cls.node)}):
                return True
        elif isinstance(base, ModuleRef) and base.qualname.startswith("torch."):
            return True
        elif isinstance(base, LayerRef) and base.spec.framework is Framework.TORCH:
            return True
    return False


def _explicit_cell(cls: ClassValue, source: str | None) -> str | None:
    """Why a class is an RNN cell by its own definition, or None."""
    base = _cell_base(cls)
    if base is not None:
        return f"a subclass of {base}"
    if cls.node.bases and (source is None or "state_size" in source) and not _is_torch_module(cls) \
            and _defines_state_size(cls.node):
        return "a Keras RNN cell: it defines state_size"
    return None


# ----- the loop classifier --------------------------------------------------------------------


def _is_time_loop(loop: _Loop, scope: _Scope) -> bool:
    # A while test on a tensor's size (`while x.size(-1) > 1`) is no sequence length.
    span = _span(loop.iter, scope) if isinstance(loop, cst.For) else _bound_span(loop.test, sizes=False)
    if span is not _Span.UNKNOWN:
        return span is _Span.TIME
    return bool(_fed_back(loop, scope))


def _span(iterated: cst.BaseExpression, scope: _Scope) -> _Span:
    if isinstance(iterated, cst.Call):
        name = dotted_name(iterated.func) or ""
        short = name.rsplit(".", 1)[-1]
        args = [arg.value for arg in iterated.args]
        if name in _WRAPPERS and args:
            spans = {_span(arg, scope) for arg in (args if name == "zip" else args[:1])}
            return _Span.DEPTH if _Span.DEPTH in spans else _Span.TIME if _Span.TIME in spans else _Span.UNKNOWN
        if name == "range":
            return _combine(_bound_span(arg) for arg in args)
        if short in _UNBINDS or (short == "split" and _splits_one(iterated)):
            return _Span.TIME
        if short in _MODULE_ITERATORS:
            return _Span.DEPTH
    if isinstance(iterated, cst.Attribute) and _is_self(iterated.value, scope):
        return _Span.DEPTH  # an attribute of the module: its submodules
    return _Span.UNKNOWN


# ----- syntax helpers -------------------------------------------------------------------------


def _parameters(function: cst.FunctionDef) -> list[cst.Param]:
    params = function.params
    star = [params.star_arg] if isinstance(params.star_arg, cst.Param) else []
    kwargs = [params.star_kwarg] if params.star_kwarg is not None else []
    return [*params.posonly_params, *params.params, *star, *params.kwonly_params, *kwargs]


def _names(node: cst.CSTNode) -> set[str]:
    """The variables an expression reads (not the attribute names after a dot)."""
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, cst.Attribute):
        return _names(node.value)
    found: set[str] = set()
    for child in children(node):
        found |= _names(child)
    return found


def _words(node: cst.CSTNode) -> set[str]:
    """The words of the names in an expression (`self.seq_len` → self, seq, len), leaving
    out called functions (`len(features)` says nothing about time)."""
    if isinstance(node, cst.Call):
        return set().union(*(_words(arg.value) for arg in node.args))
    if isinstance(node, (cst.Name, cst.Attribute)):
        name = node.value if isinstance(node, cst.Name) else node.attr.value
        words = {word.lower() for word in re.split(r"_+|(?<=[a-z])(?=[A-Z])", name) if word}
        return words | (_words(node.value) if isinstance(node, cst.Attribute) else set())
    return set().union(set(), *(_words(child) for child in children(node)))


def _is_tensor_size(node: cst.CSTNode) -> bool:
    """`x.size(1)`, `x.shape[1]`, `x.size()[1]`, `tf.shape(x)[1]`: a tensor's length along
    an axis other than 0 (the batch, unless the code is time-major: then the recurrent
    state fed back tells it apart)."""
    for part in [node, *walk(node)]:
        if isinstance(part, cst.Subscript) and len(part.slice) == 1:
            value, index = part.value, part.slice[0].slice
            sized = isinstance(value, cst.Attribute) and value.attr.value == "shape"
            sized |= isinstance(value, cst.Call) and (dotted_name(value.func) or "").rsplit(".", 1)[-1] in _TENSOR_SIZES
            if sized:
                return not (isinstance(index, cst.Index) and _is_zero(index.value))
        if isinstance(part, cst.Call) and isinstance(part.func, cst.Attribute) and part.func.attr.value == "size":
            if part.args:
                return not _is_zero(part.args[0].value)
    return False


def _is_zero(node: cst.BaseExpression) -> bool:
    return isinstance(node, cst.Integer) and node.value == "0"


def _bound_span(bound: cst.CSTNode, sizes: bool = True) -> _Span:
    """What a loop bound counts: `x.size(1)` / `seq_len` time, `self.num_layers` depth."""
    words = _words(bound)
    if words & _DEPTH_WORDS:
        return _Span.DEPTH
    if (sizes and _is_tensor_size(bound)) or words & _TIME_WORDS:
        return _Span.TIME
    return _Span.UNKNOWN


def _combine(spans: Iterable[_Span]) -> _Span:
    found = set(spans)
    for span in (_Span.DEPTH, _Span.TIME):
        if span in found:
            return span
    return _Span.UNKNOWN


def _splits_one(call: cst.Call) -> bool:
    """`x.split(1, dim=1)` / `torch.split(x, 1, 1)`: one slice per step."""
    sizes = [arg.value for arg in call.args if arg.keyword is None or arg.keyword.value == "split_size_or_sections"]
    method = isinstance(call.func, cst.Attribute) and dotted_name(call.func.value) not in ("torch", "tf")
    size = sizes[0] if method and sizes else sizes[1] if len(sizes) > 1 else None
    return isinstance(size, cst.Integer) and size.value == "1"


def _is_self(expr: cst.BaseExpression, scope: _Scope) -> bool:
    return isinstance(expr, cst.Name) and expr.value == scope.self_name


def _targets(node: cst.CSTNode) -> set[str]:
    """The names an assignment target binds."""
    if isinstance(node, cst.Name):
        return {node.value}
    if isinstance(node, (cst.Tuple, cst.List)):
        return set().union(set(), *(_targets(element.value) for element in node.elements))
    if isinstance(node, cst.StarredElement):
        return _targets(node.value)
    return set()


def _assignments(body: cst.CSTNode) -> Iterator[tuple[set[str], cst.CSTNode]]:
    """(names bound, what they are computed from) for each binding in a body."""
    for node in walk(body):
        if isinstance(node, cst.Assign):
            for target in node.targets:
                yield _targets(target.target), node.value
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign)) and node.value is not None:
            yield _targets(node.target), node.value
        elif isinstance(node, cst.For):
            yield _targets(node.target), node.iter
        elif isinstance(node, cst.NamedExpr):
            yield _targets(node.target), node.value


def _loop_variables(loop: cst.For | cst.While) -> set[str]:
    """The names whose value changes from one step to the next: the loop target, what the
    body updates from its own value (`offset += n`, `t = t + 1`), and what is computed
    from those. An inner loop's target is not one: it takes the same values at every step."""
    assignments = list(_assignments(loop.body))
    variables = _targets(loop.target) if isinstance(loop, cst.For) else set()
    for node in walk(loop.body):
        if isinstance(node, cst.AugAssign):
            variables |= _targets(node.target)
    variables |= set().union(set(), *(targets for targets, value in assignments if targets & _names(value)))
    changed = True
    while changed:
        changed = False
        for targets, value in assignments:
            if not targets <= variables and _names(value) & variables:
                variables |= targets
                changed = True
    return variables


def _fed_back(loop: cst.For | cst.While, scope: _Scope) -> set[cst.Call]:
    """The calls of submodules whose output is fed back into them at the next step, next to
    another input: `h = self.cell(x_t, h)`, `h, c = self.rnn(inp, (h, c))`,
    `h = self.bn(self.rnn(x, h))`."""
    found = set()
    for node in walk(loop.body):
        if not isinstance(node, cst.Assign):
            continue
        bound = set().union(*(_targets(target.target) for target in node.targets))
        for call in [node.value, *walk(node.value)]:
            if not isinstance(call, cst.Call) or not _names(call.func) <= {scope.self_name}:
                continue
            inputs = [arg.value for arg in call.args if arg.keyword is None]
            if len(inputs) >= 2 and any(_names(arg) & bound for arg in inputs):
                found.add(call)
    return found


def _defines_state_size(cls: cst.ClassDef) -> bool:
    """`self.state_size = ...`, a class attribute or a `state_size` property."""
    for node in walk(cls.body, into_scopes=True):
        if isinstance(node, cst.FunctionDef) and node.name.value == "state_size":
            return True
        if isinstance(node, cst.Assign):
            for target in node.targets:
                name = target.target
                if (isinstance(name, cst.Attribute) and name.attr.value == "state_size") or (
                        isinstance(name, cst.Name) and name.value == "state_size"):
                    return True
    return False


def _uses_batch_norm(cls: cst.ClassDef) -> bool:
    """Another file's class names batch norm in its code (docstrings and comments aside)."""
    return any(isinstance(node, cst.Name) and BN_TEXT.search(node.value) for node in walk(cls, into_scopes=True))
