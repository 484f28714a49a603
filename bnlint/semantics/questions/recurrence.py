"""Recurrence: the code of a file that runs once per time step (what BN301 reads).

Batch norm keeps one set of running statistics per module. Inside a recurrent step, that one
set is shared by every time step although each step's activations have a distribution of
their own. Two shapes of recurrence are recognised, from the class definitions of the file:

- cell classes: subclasses of torch's `RNNCellBase` / `RNNCell` / `LSTMCell` / `GRUCell` or
  of a Keras RNN cell, Keras layers that define `state_size`, classes passed to
  `keras.layers.RNN`, and classes whose instances are called at every step of a time loop;
- time loops: loops in `forward` / `call` (or the methods they call) that walk time steps.
  A loop is over time when it iterates a sequence length (`range(x.size(1))`, `range(seq_len)`),
  unbinds a tensor (`x.unbind(1)`, `tf.unstack`), or feeds a module's output back into the
  same module next to a per-step input (`h = self.cell(x_t, h)`). A loop over modules
  (`for layer in self.layers`, `range(self.num_layers)`) is depth, not time.

A module called at every step is the same module only when the callee does not depend on
the loop (`self.bns[t](h)` is a separate batch norm per step, the fix the literature uses).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property, lru_cache
from pathlib import Path

import libcst as cst

from bnlint.semantics.catalogue.layers import KERAS_ROOTS
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.values import Layer
from bnlint.semantics.names import dotted_name, import_bindings, imports_in_text, module_name_for
from bnlint.semantics.project.index import BN_TEXT, ProjectIndex
from bnlint.semantics.project.loading import parse
from bnlint.semantics.questions.channels import is_batch_norm
from bnlint.semantics.syntax import children, parents, walk

_TORCH_CELL_BASES = frozenset({"RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"})
_KERAS_CELL_BASES = frozenset({
    "AbstractRNNCell", "SimpleRNNCell", "LSTMCell", "GRUCell", "DropoutRNNCell", "ConvLSTMCell", "PeepholeLSTMCell",
})
_STEP_METHODS = ("forward", "call", "__call__")
_MAX_DEPTH = 3  # method calls followed from a loop, names followed to their binding
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


class _Span(str, Enum):
    """What a loop iterates."""

    TIME = "time"
    DEPTH = "depth"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Cell:
    """A recurrent cell class of this file and the batch norms built for it."""

    node: cst.ClassDef
    why: str  # "a subclass of torch.nn.RNNCellBase", "passed to keras.layers.RNN"...
    loop: cst.For | cst.While | None  # the time loop that calls it, when that makes it a cell
    norms: tuple[Layer, ...]


@dataclass(frozen=True)
class StepCall:
    """A call made at every step of a time loop that runs batch norm: a batch-norm module
    (or a container holding one) of this file, or an instance of another file's class."""

    call: cst.Call
    loop: cst.For | cst.While
    norms: tuple[Layer, ...]  # the batch norms it runs, when they are built in this file
    imported: str | None = None  # else: the qualified name of the other file's class


@dataclass
class Recurrence:
    cells: list[Cell] = field(default_factory=list)
    step_calls: list[StepCall] = field(default_factory=list)


def recurrence(facts: FileFacts, project: ProjectIndex | None) -> Recurrence:
    """The cells and per-step batch-norm calls of a file (cells of other project files
    found through the project index)."""
    norms = {layer.node: layer for layer in (*facts.own_layers(), *facts.functional_bn) if is_batch_norm(layer)}
    return _RecurrenceSearch(facts, norms, project).run()  # with no batch norm here, a loop may still call another file's


# ----- one module's names and classes ---------------------------------------------------------


class _Module:
    """The import bindings, classes and module-level functions of one parsed file."""

    def __init__(self, module: cst.Module, path: str, source: str, project: ProjectIndex | None) -> None:
        self.module = module
        self.path = path
        self.source = source  # the text, for cheap tests before walking the tree
        self.project = project
        self.imports: dict[str, str] = {}
        self.classes: dict[str, cst.ClassDef] = {}
        self.functions: dict[str, cst.FunctionDef] = {}
        name, is_package = module_name_for(Path(path))
        for node in _statements(module.body):
            if isinstance(node, cst.SimpleStatementLine):
                for small in node.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        self.imports.update(import_bindings(small, name, is_package))
            elif isinstance(node, cst.ClassDef):
                self.classes.setdefault(node.name.value, node)
        for statement in module.body:
            if isinstance(statement, cst.FunctionDef):
                self.functions[statement.name.value] = statement

    @cached_property
    def bindings(self) -> dict[str, list[cst.BaseExpression]]:
        """Module-level assignments (read when a step call names a module-level value)."""
        found: dict[str, list[cst.BaseExpression]] = {}
        _collect_bindings(self.module.body, found)
        return found

    def qualified(self, expr: cst.BaseExpression) -> str | None:
        """`torch.nn.LSTMCell` for `nn.LSTMCell` after `import torch.nn as nn`."""
        name = dotted_name(expr)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        if head in self.imports:
            return f"{self.imports[head]}.{rest}" if rest else self.imports[head]
        return name

    def local_class(self, expr: cst.BaseExpression) -> cst.ClassDef | None:
        return self.classes.get(expr.value) if isinstance(expr, cst.Name) else None

    def cell_base(self, cls: cst.ClassDef, seen: frozenset[str] = frozenset()) -> str | None:
        """The RNN-cell base class a class derives from (through this file's classes)."""
        for base in cls.bases:
            local = self.local_class(base.value)
            if local is not None and local.name.value not in seen:
                found = self.cell_base(local, seen | {cls.name.value})
                if found:
                    return found
                continue
            qualname = self.qualified(base.value) or ""
            root, short = qualname.split(".")[0], qualname.rsplit(".", 1)[-1]
            if short in (_TORCH_CELL_BASES if root == "torch" else _KERAS_CELL_BASES if root in KERAS_ROOTS else ()):
                return qualname
        return None

    def is_torch_module(self, cls: cst.ClassDef, seen: frozenset[str] = frozenset()) -> bool:
        for base in cls.bases:
            local = self.local_class(base.value)
            if local is not None and local.name.value not in seen:
                if self.is_torch_module(local, seen | {cls.name.value}):
                    return True
            elif (self.qualified(base.value) or "").startswith("torch."):
                return True
        return False

    def explicit_cell(self, cls: cst.ClassDef) -> str | None:
        """Why a class is an RNN cell by its own definition, or None."""
        base = self.cell_base(cls)
        if base is not None:
            return f"a subclass of {base}"
        if cls.bases and "state_size" in self.source and not self.is_torch_module(cls) and _defines_state_size(cls):
            return "a Keras RNN cell: it defines state_size"
        return None

    def resolve_class(self, expr: cst.BaseExpression) -> tuple[_Module, cst.ClassDef] | None:
        """The class (of this file or another project file) a constructor expression names."""
        local = self.local_class(expr)
        if local is not None:
            return self, local
        qualname = self.qualified(expr)
        if qualname is None or "." not in qualname or self.project is None:
            return None
        return _project_class(qualname, self.project)


def _project_class(qualname: str, project: ProjectIndex, hops: int = _MAX_DEPTH) -> tuple[_Module, cst.ClassDef] | None:
    """A class defined in another file of the project, following re-exports
    (`from .cells import BNCell` in a package's `__init__.py`)."""
    module_name, _, name = qualname.rpartition(".")
    path = project.module_path(module_name)
    if path is None:
        return None
    text = project.text(path)
    if text is None:
        return None
    project.loaded_files.add(path)  # the findings here depend on that file (result cache)
    if BN_TEXT.search(text):  # only a module that names batch norm can hold a class using it
        other = _parsed(str(path), text, project)
        if other is not None and name in other.classes:
            return other, other.classes[name]
    if hops > 1:
        own_name, is_package = module_name_for(path)
        for source, imported in imports_in_text(text, own_name, is_package):
            for original, alias in imported or ():
                if alias == name:
                    return _project_class(f"{source}.{original}", project, hops - 1)
    return None


@lru_cache(maxsize=32)
def _parsed(path: str, text: str, project: ProjectIndex) -> _Module | None:
    module = parse(Path(path), text)
    return _Module(module, path, text, project) if module is not None else None


# ----- the analysis of one file ---------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """Where an expression is evaluated: a function, and the class whose method it is."""

    function: cst.FunctionDef
    cls: cst.ClassDef | None

    @property
    def self_name(self) -> str | None:
        params = [*self.function.params.posonly_params, *self.function.params.params]
        return params[0].name.value if self.cls is not None and params else None


@dataclass(frozen=True)
class _Runs:
    """What calling a value runs: batch norms of this file, classes of this file, classes
    of other project files."""

    norms: tuple[cst.Call, ...] = ()
    classes: tuple[cst.ClassDef, ...] = ()
    imported: tuple[tuple[str, _Module, cst.ClassDef], ...] = ()

    def __or__(self, other: _Runs) -> _Runs:
        return _Runs(self.norms + other.norms, self.classes + other.classes, self.imported + other.imported)


class _RecurrenceSearch:
    def __init__(self, facts: FileFacts, norms: dict[cst.Call, Layer], project: ProjectIndex | None) -> None:
        self.facts = facts
        self.norms = norms
        self.file = _Module(facts.module, facts.path, facts.source, project)
        self.attributes: dict[cst.ClassDef, dict[str, list[cst.BaseExpression]]] = {}
        self.local_bindings: dict[cst.FunctionDef, dict[str, list[cst.BaseExpression]]] = {}
        self.class_norms: dict[cst.ClassDef, tuple[cst.Call, ...]] = {}
        self.result = Recurrence()
        self.cells: dict[cst.ClassDef, Cell] = {}

    def run(self) -> Recurrence:
        project = self.file.project
        if not self.norms and not (project is not None and project.imports_batch_norm(self.facts.source, Path(self.facts.path))):
            return self.result  # no batch norm here, and none to call from another file
        for cls in self.file.classes.values():
            why = self.file.explicit_cell(cls)
            if why is not None:
                self._add_cell(cls, why, None)
        keras = any(qualname.split(".")[0] in KERAS_ROOTS for qualname in self.file.imports.values())
        if keras and "RNN" in self.facts.source:
            for node in walk(self.facts.module, into_scopes=True):
                if isinstance(node, cst.Call) and self._is_keras_rnn(node):
                    self._cells_passed_to_rnn(node)
        for cls in self.file.classes.values():
            for method, loop in self._time_loops(cls):
                self._step_calls(loop, method, cls)
        self.result.cells = list(self.cells.values())
        return self.result

    # ----- cells ------------------------------------------------------------------------------

    def _add_cell(self, cls: cst.ClassDef, why: str, loop: cst.For | cst.While | None) -> None:
        norms = self._norms_of_class(cls)
        if norms and cls not in self.cells:
            self.cells[cls] = Cell(cls, why, loop, tuple(self.norms[node] for node in norms))

    def _norms_of_class(self, cls: cst.ClassDef) -> tuple[cst.Call, ...]:
        """The batch norms a class builds: in its body, in the classes of this file it
        derives from or instantiates, in the module-level helpers of this file it calls."""
        if cls in self.class_norms:
            return self.class_norms[cls]
        self.class_norms[cls] = ()  # against cycles
        found: list[cst.Call] = []
        for base in cls.bases:
            local = self.file.local_class(base.value)
            if local is not None:
                found += self._norms_of_class(local)
        for node in walk(cls.body, into_scopes=True):
            if not isinstance(node, cst.Call):
                continue
            if node in self.norms:
                found.append(node)
            elif isinstance(node.func, cst.Name):
                local = self.file.local_class(node.func)
                if local is not None and local is not cls:
                    found += self._norms_of_class(local)
                elif node.func.value in self.file.functions:
                    found += self._norms_in(self.file.functions[node.func.value])
        self.class_norms[cls] = tuple(dict.fromkeys(found))
        return self.class_norms[cls]

    def _norms_in(self, node: cst.CSTNode) -> list[cst.Call]:
        return [call for call in walk(node, into_scopes=True) if isinstance(call, cst.Call) and call in self.norms]

    def _is_keras_rnn(self, call: cst.Call) -> bool:
        qualname = self.file.qualified(call.func) or ""
        return qualname.rsplit(".", 1)[-1] == "RNN" and qualname.split(".")[0] in KERAS_ROOTS

    def _cells_passed_to_rnn(self, call: cst.Call) -> None:
        """`keras.layers.RNN(cell)`, the cell built there or bound to a name first."""
        cell = next((arg.value for arg in call.args if arg.keyword is None or arg.keyword.value == "cell"), None)
        if cell is None:
            return
        scope = self._scope_of(call)
        runs = self._runs(cell, scope) if scope is not None else self._module_runs(cell)
        for cls in runs.classes:
            self._add_cell(cls, "passed to keras.layers.RNN", None)

    def _scope_of(self, node: cst.CSTNode) -> _Scope | None:
        """The function (and class) lexically holding a node."""
        tree = parents(self.facts.module)
        function = tree.enclosing(node, cst.FunctionDef)
        if function is None:
            return None
        owner = tree.enclosing(function, (cst.ClassDef, cst.FunctionDef))
        return _Scope(function, owner if isinstance(owner, cst.ClassDef) else None)

    # ----- time loops -------------------------------------------------------------------------

    def _time_loops(self, cls: cst.ClassDef) -> Iterator[tuple[cst.FunctionDef, cst.For | cst.While]]:
        """The time loops in the step methods of a class and the methods they call."""
        methods = {method.name.value: method for method in _methods(cls)}
        pending = [name for name in _STEP_METHODS if name in methods]
        seen = set(pending)
        while pending:
            method = methods[pending.pop()]
            scope = _Scope(method, cls)
            for node in walk(method.body):
                if isinstance(node, (cst.For, cst.While)) and self._is_time_loop(node, scope):
                    yield method, node
                elif isinstance(node, cst.Call):
                    name = _self_method(node, scope)
                    if name in methods and name not in seen:
                        seen.add(name)
                        pending.append(name)

    def _is_time_loop(self, loop: cst.For | cst.While, scope: _Scope) -> bool:
        # A while test on a tensor's size (`while x.size(-1) > 1`) is no sequence length.
        span = self._span(loop.iter, scope) if isinstance(loop, cst.For) else _bound_span(loop.test, sizes=False)
        if span is not _Span.UNKNOWN:
            return span is _Span.TIME
        return bool(_fed_back(loop, scope))

    def _span(self, iterated: cst.BaseExpression, scope: _Scope) -> _Span:
        if isinstance(iterated, cst.Call):
            name = dotted_name(iterated.func) or ""
            short = name.rsplit(".", 1)[-1]
            args = [arg.value for arg in iterated.args]
            if name in _WRAPPERS and args:
                spans = {self._span(arg, scope) for arg in (args if name == "zip" else args[:1])}
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

    def _step_calls(self, loop: cst.For | cst.While, method: cst.FunctionDef, cls: cst.ClassDef) -> None:
        """The calls made at every step of a time loop that run the same batch norm."""
        fed_back = _fed_back(loop, _Scope(method, cls))
        for call, scope, variables in self._calls_in_step(loop.body, _Scope(method, cls), _loop_variables(loop),
                                                          _MAX_DEPTH):
            if _names(call.func) & variables:
                continue  # a module picked per step (`self.bns[t]`)
            if call in self.norms:  # F.batch_norm(x, running_mean, ...): the same buffers every step
                if not any(_names(arg.value) & variables for arg in call.args[1:]):
                    self._add_step_call(call, loop, (call,))
                continue
            runs = self._runs(call.func, scope)
            norms = runs.norms
            for cls in runs.classes:
                if self.file.explicit_cell(cls) is not None:
                    continue  # reported as a cell already
                if call in fed_back:  # `h = self.cell(x_t, h)`: the class is the cell
                    self._add_cell(cls, "called at every step of a time loop", loop)
                else:  # a module applied to each step (`self.encoder(x[:, t])`)
                    norms += self._norms_of_class(cls)
            if norms:
                self._add_step_call(call, loop, norms)
            for qualname, module, imported in runs.imported:
                if module.explicit_cell(imported) is None and _uses_batch_norm(imported):
                    self.result.step_calls.append(StepCall(call, loop, (), qualname))

    def _add_step_call(self, call: cst.Call, loop: cst.For | cst.While, norms: tuple[cst.Call, ...]) -> None:
        layers = tuple(self.norms[node] for node in dict.fromkeys(norms))
        self.result.step_calls.append(StepCall(call, loop, layers))

    def _calls_in_step(self, body: cst.CSTNode, scope: _Scope, variables: set[str],
                       depth: int) -> Iterator[tuple[cst.Call, _Scope, set[str]]]:
        """The calls in a loop body, and in the methods of the class it calls
        (`self._step(x_t, h)`), each with the names that may differ from step to step: the
        loop's variables, or the parameters and locals of a called method."""
        methods = {method.name.value: method for method in _methods(scope.cls)} if scope.cls is not None else {}
        for node in walk(body):
            if not isinstance(node, cst.Call):
                continue
            name = _self_method(node, scope)
            if name in methods and depth > 0:
                method = methods[name]
                inner = _Scope(method, scope.cls)
                local = {param.name.value for param in _parameters(method)} - {inner.self_name}
                local |= set().union(set(), *(targets for targets, _ in _assignments(method.body)))
                yield from self._calls_in_step(method.body, inner, local, depth - 1)
            else:
                yield node, scope, variables

    # ----- what a callee runs -----------------------------------------------------------------

    def _runs(self, expr: cst.BaseExpression, scope: _Scope, depth: int = _MAX_DEPTH) -> _Runs:
        """What calling the value of an expression runs, following names and `self.x` to
        what they were bound to."""
        if depth == 0:
            return _Runs()
        if isinstance(expr, cst.Subscript):
            return self._runs(expr.value, scope, depth - 1)
        if isinstance(expr, cst.IfExp):
            return self._runs(expr.body, scope, depth) | self._runs(expr.orelse, scope, depth)
        if isinstance(expr, cst.BooleanOperation):
            return self._runs(expr.left, scope, depth) | self._runs(expr.right, scope, depth)
        if isinstance(expr, cst.Call):
            return self._built(expr)
        if isinstance(expr, (cst.List, cst.Tuple)):
            runs = _Runs()
            for element in expr.elements:
                runs |= self._runs(element.value, scope, depth - 1)
            return runs
        bound: list[cst.BaseExpression] = []
        if isinstance(expr, cst.Attribute) and scope.cls is not None and _is_self(expr.value, scope):
            bound = self._attributes(scope.cls).get(expr.attr.value, [])
        elif isinstance(expr, cst.Name):
            bound = self._locals(scope.function).get(expr.value) or self.file.bindings.get(expr.value, [])
        runs = _Runs()
        for value in bound:
            runs |= self._runs(value, scope, depth - 1)
        return runs

    def _locals(self, function: cst.FunctionDef) -> dict[str, list[cst.BaseExpression]]:
        if function not in self.local_bindings:
            body = function.body.body if isinstance(function.body, cst.IndentedBlock) else ()
            self.local_bindings[function] = {}
            _collect_bindings(body, self.local_bindings[function])
        return self.local_bindings[function]

    def _module_runs(self, expr: cst.BaseExpression) -> _Runs:
        """Like `_runs`, for an expression at module level (a Keras functional model)."""
        if isinstance(expr, cst.Call):
            return self._built(expr)
        if isinstance(expr, cst.Name):
            runs = _Runs()
            for value in self.file.bindings.get(expr.value, []):
                if isinstance(value, cst.Call):
                    runs |= self._built(value)
            return runs
        return _Runs()

    def _built(self, call: cst.Call) -> _Runs:
        """What the value a constructor call builds runs."""
        if call in self.norms:
            return _Runs(norms=(call,))
        if isinstance(call.func, cst.Name) and call.func.value in self.file.functions:
            return _Runs(norms=tuple(self._norms_in(self.file.functions[call.func.value])))
        found = self.file.resolve_class(call.func)
        if found is not None:
            module, cls = found
            if module is self.file:
                return _Runs(classes=(cls,))
            return _Runs(imported=((self.file.qualified(call.func) or "", module, cls),))
        # A container (nn.Sequential, keras StackedRNNCells) holding batch norms or instances
        # of this file's classes.
        classes = (self.file.local_class(node.func) for node in walk(call) if isinstance(node, cst.Call))
        return _Runs(tuple(self._norms_in(call)), tuple(cls for cls in classes if cls is not None))

    def _attributes(self, cls: cst.ClassDef) -> dict[str, list[cst.BaseExpression]]:
        """`self.x = <value>` in the methods of a class (and of its bases in this file)."""
        if cls in self.attributes:
            return self.attributes[cls]
        found: dict[str, list[cst.BaseExpression]] = {}
        self.attributes[cls] = found
        for base in cls.bases:
            local = self.file.local_class(base.value)
            if local is not None:
                for name, values in self._attributes(local).items():
                    found.setdefault(name, []).extend(values)
        for method in _methods(cls):
            scope = _Scope(method, cls)
            for node in walk(method.body):
                if isinstance(node, cst.Assign):
                    for target in node.targets:
                        for name, value in _pairs(target.target, node.value):
                            if isinstance(name, cst.Attribute) and _is_self(name.value, scope):
                                found.setdefault(name.attr.value, []).append(value)
        return found


# ----- syntax helpers -------------------------------------------------------------------------


def _statements(body: Iterable[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """The statements of a body and of the bodies nested in it (functions and classes too),
    without walking expressions."""
    for statement in body:
        yield statement
        if isinstance(statement, cst.BaseCompoundStatement):
            yield from _statements(_inner_statements(statement))


def _inner_statements(node: cst.CSTNode) -> list[cst.CSTNode]:
    found: list[cst.CSTNode] = []
    for child in children(node):
        if isinstance(child, cst.BaseStatement):  # also an `elif`
            found.append(child)
        elif isinstance(child, (cst.IndentedBlock, cst.Else, cst.Finally, cst.ExceptHandler, cst.ExceptStarHandler)):
            found += _inner_statements(child)
    return found


def _parameters(function: cst.FunctionDef) -> list[cst.Param]:
    params = function.params
    star = [params.star_arg] if isinstance(params.star_arg, cst.Param) else []
    kwargs = [params.star_kwarg] if params.star_kwarg is not None else []
    return [*params.posonly_params, *params.params, *star, *params.kwonly_params, *kwargs]


def _methods(cls: cst.ClassDef) -> list[cst.FunctionDef]:
    return [statement for statement in cls.body.body if isinstance(statement, cst.FunctionDef)]


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


def _self_method(call: cst.Call, scope: _Scope) -> str | None:
    """`m` for a call `self.m(...)`."""
    func = call.func
    return func.attr.value if isinstance(func, cst.Attribute) and _is_self(func.value, scope) else None


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


def _pairs(target: cst.BaseExpression,
           value: cst.BaseExpression) -> Iterator[tuple[cst.BaseExpression, cst.BaseExpression]]:
    """`a, b = A(), B()` → (a, A()), (b, B())."""
    if isinstance(target, (cst.Tuple, cst.List)) and isinstance(value, (cst.Tuple, cst.List)):
        if len(target.elements) == len(value.elements):
            for left, right in zip(target.elements, value.elements, strict=True):
                yield from _pairs(left.value, right.value)
        return
    yield target, value


def _collect_bindings(body: Iterable[cst.CSTNode], into: dict[str, list[cst.BaseExpression]]) -> None:
    """`name = <value>` in a body (not in nested functions or classes)."""
    for statement in body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            continue
        for node in [statement, *walk(statement)]:
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    for name, value in _pairs(target.target, node.value):
                        if isinstance(name, cst.Name):
                            into.setdefault(name.value, []).append(value)


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
