"""The abstract interpreter: runs a file's code over abstract values to build its facts.

It executes module bodies, every function and every class (`__init__`/`build` first, then
`forward`/`call` with tensors as arguments, then the other methods), inlining calls of
helpers and methods it can see, across files through the project (`ProjectValues`). What
runs is told to the layer graph (bnlint.semantics.interp.graph: layers, what feeds what)
and to the usage recorder (bnlint.semantics.interp.recorder: how models are used); calls
of library code are answered by bnlint.semantics.interp.library.
Nothing is imported or executed: "running" here means walking the syntax tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Protocol

import libcst as cst

from bnlint.semantics.catalogue import layers as catalogue
from bnlint.semantics.catalogue.constructors import Presence
from bnlint.semantics.catalogue.layers import Framework, Kind
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.frame import Frame
from bnlint.semantics.interp.graph import LayerGraph, first_positional
from bnlint.semantics.interp.library import BoundMethod, Library, Super
from bnlint.semantics.interp.presence import PresenceIndex
from bnlint.semantics.interp.recorder import UsageRecorder
from bnlint.semantics.interp.usage import USAGE_VALUES, GradContext, ModelValue, Site
from bnlint.semantics.interp.values import (
    UNKNOWN, Arg, AttributeWrite, ClassValue, Const, Count, DictValue, ForeignInstance, FunctionValue, Instance, Layer,
    LayerRef, LayerSequence, ListValue, ModuleRef, Narrowed, Op, Param, Settings, Tensor, Unknown, Value, as_count, join,
)
from bnlint.semantics.names import import_bindings

MAX_INLINE_DEPTH = 3
STEP_BUDGET = 400_000  # statements per file, against pathological input; the heaviest corpus file needs 21k

_METHOD_ORDER = ("__init__", "build", "forward", "call", "__call__")
_FORWARD_METHODS = frozenset({"forward", "call", "__call__"})


class _BudgetExceeded(Exception):
    pass


class ProjectValues(Protocol):
    """What the interpreter asks of other project files (bnlint.semantics.project.loading answers)."""

    def resolve(self, qualname: str, *, constant: bool = False, functions_only: bool = False,
                classes_only: bool = False, factories: bool = False) -> Value | None: ...


class Interpreter(Library):
    def __init__(self, facts: FileFacts, project: ProjectValues | None) -> None:
        self.facts = facts
        self.project = project
        self.globals: dict[str, Value] = {}
        self.steps = 0
        self.active: set[int] = set()  # functions being inlined, against recursion
        self.pending: list[Value] = []  # functions and classes to analyse standalone
        self.analysed: set[int] = set()
        # Helpers that, called with arguments of these kinds, touched no layer or tensor:
        # later calls skip them (most inlining targets are plain utilities).
        self.inert: dict[tuple[int, tuple[str, ...]], Value] = {}
        self.project_values: dict[tuple[str, bool], Value | None] = {}
        self.definitions: dict[str, Value | None] = {}
        self.settings: dict[int, Settings] = {}  # configuration classes' float defaults, by class node
        self.imported_classes: dict[str, Value | None] = {}
        self.graph = LayerGraph(facts)
        self.body_count = 0  # alternative bodies entered so far: each gets an id (LayerGraph.bodies)
        self.presence = PresenceIndex(self._resolve_in, self._definition, self._bases)
        self.recorder = UsageRecorder(facts.usage, self._model_class)

    # ----- entry points -------------------------------------------------------------------

    def load_module(self) -> dict[str, Value]:
        """Execute the module body only: bindings other files import."""
        frame = Frame(scopes=(), path=self.facts.path, locals=self.globals)
        try:
            self._exec_block(self.facts.module.body, frame, collect=False)
        except _BudgetExceeded:
            self.facts.complete = False
        return self.globals

    def analyse(self) -> FileFacts:
        frame = Frame(scopes=(), path=self.facts.path, locals=self.globals)
        try:
            self._exec_block(self.facts.module.body, frame, collect=True)
            while self.pending:
                value = self.pending.pop(0)
                if isinstance(value, FunctionValue):
                    self._call_standalone(value)
                elif isinstance(value, ClassValue):
                    self._analyse_class(value)
        except _BudgetExceeded:
            self.facts.complete = False
        return self.facts

    # ----- statements ---------------------------------------------------------------------

    def _branches(self, frame: Frame, bodies: list[Callable[[Frame], None]],
                  test: cst.BaseExpression | None = None) -> None:
        """Run alternative bodies from the same state and join what they bound: locals, and
        the attributes of `self` (`if channels_last: self.axis = -1 else: self.axis = 1`).
        `test` is the condition of an `if`: the first body runs when it holds."""
        instance = frame.self_value
        before = dict(instance.attributes) if instance is not None else {}
        modes = self.recorder.branches()
        branches, attributes = [], []
        for body in bodies:
            branch = frame.branch()
            modes.begin()
            if instance is not None:
                instance.attributes.clear()
                instance.attributes.update(before)
            self.body_count += 1
            if test is not None:
                self.graph.conditions[self.body_count] = (test, not branches)
            self.graph.bodies.append(self.body_count)
            try:
                body(branch)
            finally:
                self.graph.bodies.pop()
            branches.append(branch)
            modes.end()
            if instance is not None:
                attributes.append(dict(instance.attributes))
        frame.merge(*branches, joiner=self._join)
        modes.join()
        if instance is None:
            return
        instance.attributes.clear()
        for name in set().union(*attributes):
            # An attribute one branch never sets keeps the other's value: code using it
            # runs under the same condition that created it.
            values = [state[name] for state in attributes if name in state]
            merged = values[0]
            for value in values[1:]:
                merged = self._join(merged, value)
            instance.attributes[name] = merged

    def _join(self, left: Value, right: Value) -> Value:
        return self.recorder.join_models(left, right) or self.graph.join(left, right)


    def _tick(self) -> None:
        self.steps += 1
        if self.steps > STEP_BUDGET:
            raise _BudgetExceeded

    def _exec_block(self, body: Iterable[cst.CSTNode], frame: Frame, collect: bool = False) -> None:
        for statement in body:
            self._exec_statement(statement, frame, collect)

    def _exec_statement(self, node: cst.CSTNode, frame: Frame, collect: bool) -> None:
        self._tick()
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                self._exec_small(small, frame)
        elif isinstance(node, cst.FunctionDef):
            function = FunctionValue(node, (frame.locals, *frame.scopes), frame.path)
            frame.locals[node.name.value] = function
            if collect:
                self.pending.append(function)
        elif isinstance(node, cst.ClassDef):
            cls = self._define_class(node, frame)
            frame.locals[node.name.value] = cls
            if collect:
                self.pending.append(cls)
        elif isinstance(node, cst.If):
            self._eval(node.test, frame)
            narrowed = self._narrowing(node.test, frame)

            def body(branch: Frame) -> None:
                if narrowed is not None:
                    branch.locals[narrowed[0]] = narrowed[1]
                self._exec_block(node.body.body, branch, collect)

            def other(branch: Frame) -> None:
                if isinstance(node.orelse, cst.If):  # elif
                    self._exec_statement(node.orelse, branch, collect)
                elif node.orelse is not None:
                    self._exec_block(node.orelse.body.body, branch, collect)

            self._branches(frame, [body, other], node.test)
        elif isinstance(node, (cst.For, cst.While)):
            iterated = self._eval(node.iter if isinstance(node, cst.For) else node.test, frame)
            if isinstance(node, cst.For):
                self._assign(node.target, self._element_of(iterated), frame)
            running = self.recorder.loop(node, frame.path, iterated)

            def loop(branch: Frame) -> None:
                with self.recorder.in_loop(running):
                    self._exec_block(node.body.body, branch, collect)
                if node.orelse is not None:
                    self._exec_block(node.orelse.body.body, branch, collect)

            self._branches(frame, [loop, _nothing])  # the body may run, or not
        elif isinstance(node, cst.With):
            entered = []
            for item in node.items:
                value = self._eval(item.item, frame)
                if self.recorder.enter(value):
                    entered.append(value)
                if item.asname is not None:
                    kept = isinstance(value, (ModuleRef, GradContext))
                    self._assign(item.asname.name, value if kept else UNKNOWN, frame)
            try:
                self._exec_block(node.body.body, frame, collect)
            finally:
                for value in reversed(entered):
                    self.recorder.leave(value)
        elif isinstance(node, cst.Try):
            self._exec_block(node.body.body, frame, collect)
            if node.handlers:
                handlers = [lambda branch, h=handler: self._exec_block(h.body.body, branch, collect)
                            for handler in node.handlers]
                self._branches(frame, [_nothing, *handlers])
            if node.orelse is not None:
                self._exec_block(node.orelse.body.body, frame, collect)
            if node.finalbody is not None:
                self._exec_block(node.finalbody.body.body, frame, collect)
        elif isinstance(node, cst.IndentedBlock):
            self._exec_block(node.body, frame, collect)
        elif isinstance(node, cst.BaseSmallStatement):  # a one-line body: `for x in loader: step(x)`
            self._exec_small(node, frame)

    def _exec_small(self, node: cst.BaseSmallStatement, frame: Frame) -> None:
        if isinstance(node, cst.Assign):
            value = self._eval(node.value, frame)
            for target in node.targets:
                self._record_layer_write(target.target, value, node.value, frame)
                self._assign(target.target, value, frame)
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                self._assign(node.target, self._eval(node.value, frame), frame)
        elif isinstance(node, cst.AugAssign):
            current = self._eval(node.target, frame)
            operand = self._eval(node.value, frame)
            if isinstance(current, ListValue) and isinstance(node.operator, cst.AddAssign):
                self.graph.extend_list(current, operand)
                return
            self._assign(node.target, self._binary(current, operand, node.operator), frame)
        elif isinstance(node, cst.Expr):
            expression = node.value
            if isinstance(expression, cst.Attribute) and expression.attr.value in ("eval", "train"):
                self.recorder.bare_switch(self._eval(expression.value, frame), expression, self._site(expression, frame))
            else:
                self._eval(expression, frame)
        elif isinstance(node, cst.Return):
            value = self._eval(node.value, frame) if node.value is not None else Const(None)
            if frame.depth == 0:  # what forward/call returns is used by code we cannot see
                self.graph.consume_nested(value, "return")
            frame.returns.append(value)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            for local, qualname in import_bindings(node, self.facts.module_name, self.facts.is_package):
                if "." in local:  # `import a.b` without alias binds `a`
                    continue
                frame.locals[local] = self._resolve_qualname(qualname)

    def _record_layer_write(self, target: cst.BaseExpression, value: Value, node: cst.BaseExpression,
                            frame: Frame) -> None:
        """`m.momentum = 0.9` where `m` passed `isinstance(m, nn.BatchNorm2d)`."""
        if not isinstance(target, cst.Attribute) or frame.path != self.facts.path:
            return
        owner = self._eval(target.value, frame)
        if isinstance(owner, Narrowed):
            self.facts.attribute_writes.append(AttributeWrite(owner.spec, target.attr.value, value, node))

    def _narrowing(self, test: cst.BaseExpression, frame: Frame) -> tuple[str, Value] | None:
        """`isinstance(name, BNClass)` or `isinstance(name, (nn.BatchNorm1d, nn.BatchNorm2d))`:
        inside the branch, `name` is a layer of that class."""
        if not (isinstance(test, cst.Call) and isinstance(test.func, cst.Name) and test.func.value == "isinstance"
                and len(test.args) == 2 and isinstance(test.args[0].value, cst.Name)):
            return None
        classes = self._eval(test.args[1].value, frame)
        refs = classes.items if isinstance(classes, ListValue) else [classes]
        specs = [ref.spec for ref in refs if isinstance(ref, LayerRef)]
        if not specs or len(specs) != len(refs) or len({(spec.framework, spec.kind) for spec in specs}) != 1:
            return None
        return test.args[0].value.value, Narrowed(specs[0])

    def _assign(self, target: cst.BaseExpression, value: Value, frame: Frame) -> None:
        if isinstance(target, cst.Name):
            frame.locals[target.value] = value
        elif isinstance(target, cst.Attribute):
            owner = self._eval(target.value, frame)
            if isinstance(owner, Instance):
                if isinstance(value, Tensor):  # kept for other methods or hooks to read
                    self.graph.consume(value, "attribute")
                owner.attributes[target.attr.value] = value
            else:
                self.recorder.attribute_write(owner, target.attr.value, value, self._site(target, frame))
                self.graph.escape(value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            items = value.items if isinstance(value, ListValue) and len(value.items) == len(target.elements) else None
            for index, element in enumerate(target.elements):
                element_value = items[index] if items is not None else UNKNOWN
                inner = element.value
                self._assign(inner, element_value, frame)
        else:
            self.graph.escape(value)

    # ----- classes and functions ----------------------------------------------------------

    def _define_class(self, node: cst.ClassDef, frame: Frame) -> ClassValue:
        bases = [self._eval(base.value, frame) for base in node.bases]
        cls = ClassValue(node, (frame.locals, *frame.scopes), frame.path, bases)
        if frame.path == self.facts.path:
            self.facts.classes.append(cls)
        body = Frame(scopes=(frame.locals, *frame.scopes), path=frame.path, depth=frame.depth)
        for statement in node.body.body:
            if isinstance(statement, cst.FunctionDef):
                cls.attributes[statement.name.value] = FunctionValue(statement, cls.scope, frame.path)
            elif isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, (cst.Assign, cst.AnnAssign)):
                        self._exec_small(small, body)
        for name, value in body.locals.items():
            cls.attributes.setdefault(name, value)
        return cls

    def _class_member(self, cls: ClassValue, name: str, seen: frozenset[int] = frozenset()) -> Value | None:
        if name in cls.attributes:
            return cls.attributes[name]
        for base in self._bases(cls):
            if isinstance(base, ClassValue) and id(base) not in seen:
                found = self._class_member(base, name, seen | {id(cls)})
                if found is not None:
                    return found
        return None

    def _bases(self, cls: ClassValue) -> list[Value]:
        return [self._project_value(base) or base for base in cls.bases]

    def _is_sequential_class(self, cls: ClassValue, seen: frozenset[int] = frozenset()) -> bool:
        for base in self._bases(cls):
            if isinstance(base, LayerRef) and base.spec.kind is Kind.CONTAINER:
                return True
            if isinstance(base, ClassValue) and id(base) not in seen and self._is_sequential_class(base, seen | {id(cls)}):
                return True
        return False

    def _analyse_class(self, cls: ClassValue) -> None:
        if id(cls.node) in self.analysed:
            return
        self.analysed.add(id(cls.node))
        instance = Instance(cls)
        if self._is_sequential_class(cls):
            instance.sequence = LayerSequence([])
        methods = [name for name in _METHOD_ORDER if self._class_member(cls, name) is not None]
        self._run_methods(cls, instance, methods)

    def _run_methods(self, cls: ClassValue, instance: Instance, first: list[str]) -> None:
        """Run the methods `first`, then the class's other methods, each standalone on `instance`."""
        methods = first + [
            statement.name.value
            for statement in cls.node.body.body
            if isinstance(statement, cst.FunctionDef) and statement.name.value not in _METHOD_ORDER
        ]
        for name in methods:
            method = self._class_member(cls, name)
            if isinstance(method, FunctionValue):
                bound = FunctionValue(method.node, method.scope, method.path, bound_self=instance)
                self._call_standalone(bound, tensors=name in _FORWARD_METHODS)

    def _call_standalone(self, function: FunctionValue, tensors: bool = False) -> None:
        """Run a function with its parameters unknown (tensors for forward/call)."""
        if function.bound_self is None:
            if id(function.node) in self.analysed:
                return
            self.analysed.add(id(function.node))
        self.recorder.begin_standalone_run()
        frame = self._new_frame(function, depth=0)
        for param, skip_self in self._params(function):
            if skip_self:
                continue
            default = self._eval(param.default, frame) if param.default is not None else None
            if tensors and default is None:
                value: Value = Tensor()
            elif default is None and param.annotation is not None:
                value = self._settings(param.annotation.annotation, function) or Param(param.name.value, None)
            else:
                value = Param(param.name.value, default)
            frame.locals[param.name.value] = value
        self._run_body(function, frame)

    def _settings(self, annotation: cst.BaseExpression, function: FunctionValue) -> Settings | None:
        """A parameter annotated with a project class that builds no model (a configuration
        class, in this file or another): its fields' float defaults, from dataclass-style
        class attributes and from `self.<field> = <parameter>` in its `__init__`."""
        cls = self._resolve_in(annotation, function)
        if isinstance(cls, ModuleRef) and self.project is not None:
            if cls.qualname not in self.imported_classes:  # any class: a configuration builds no layer
                self.imported_classes[cls.qualname] = self.project.resolve(cls.qualname, constant=True)
            cls = self.imported_classes[cls.qualname]
        if not isinstance(cls, ClassValue) or self.presence.framework(cls) is not None:
            return None
        key = id(cls.node)
        if key not in self.settings:
            instance = Instance(cls)
            self.settings[key] = Settings({})  # a class whose __init__ needs itself gets nothing
            init = self._class_member(cls, "__init__")
            if isinstance(init, FunctionValue):
                bound = FunctionValue(init.node, init.scope, init.path, bound_self=instance)
                self._invoke(bound, [], cst.Call(func=annotation), MAX_INLINE_DEPTH - 1)
            fields = dict(self._class_fields(cls))
            fields.update(instance.attributes)
            self.settings[key] = Settings({name: value for name, value in fields.items()
                                           if isinstance(value, Const) and isinstance(value.value, float)})
        return self.settings[key]

    def _class_fields(self, cls: ClassValue, seen: frozenset[int] = frozenset()) -> dict[str, Value]:
        """Class-body bindings, the base classes' first (a subclass's own override them)."""
        fields: dict[str, Value] = {}
        for base in self._bases(cls):
            if isinstance(base, ClassValue) and id(base.node) not in seen:
                fields.update(self._class_fields(base, seen | {id(cls.node)}))
        fields.update(cls.attributes)
        return fields

    def _params(self, function: FunctionValue) -> list[tuple[cst.Param, bool]]:
        params = function.node.params
        ordered = [*params.posonly_params, *params.params]
        result = [(param, index == 0 and function.bound_self is not None) for index, param in enumerate(ordered)]
        if isinstance(params.star_arg, cst.Param):
            result.append((params.star_arg, False))
        result += [(param, False) for param in params.kwonly_params]
        if params.star_kwarg is not None:
            result.append((params.star_kwarg, False))
        return result

    def _new_frame(self, function: FunctionValue, depth: int) -> Frame:
        frame = Frame(scopes=function.scope, path=function.path, depth=depth,
                      helper=function.node if function.module_level else None)
        if function.bound_self is not None:
            frame.self_value = function.bound_self if isinstance(function.bound_self, Instance) else None
            first = [*function.node.params.posonly_params, *function.node.params.params]
            if first:
                frame.locals[first[0].name.value] = function.bound_self
        return frame

    def _run_body(self, function: FunctionValue, frame: Frame) -> Value:
        body = function.node.body
        statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
        # `@torch.no_grad()` / `@torch.inference_mode()` run the body in that context.
        decorators = [self._eval(decorator.decorator, Frame(function.scope, function.path))
                      for decorator in function.node.decorators]
        contexts = [value for value in decorators if self.recorder.enter(self._context_of(value))]
        try:
            with self.recorder.in_function(function.node):
                self._exec_block(statements, frame, collect=frame.depth == 0)
        finally:
            for value in reversed(contexts):
                self.recorder.leave(self._context_of(value))
        result: Value | None = None
        for value in frame.returns:
            result = value if result is None else self._join(result, value)
        return result if result is not None else Const(None)

    def _invoke(self, function: FunctionValue, args: list[Arg], call: cst.Call, depth: int) -> Value:
        """Inline a call of a function whose body we can see, binding the real arguments."""
        key = id(function.node)
        if depth >= MAX_INLINE_DEPTH or key in self.active:
            self.graph.escape_args(args)
            return UNKNOWN
        signature = (key, tuple(type(arg.value).__name__ for arg in args))
        if signature in self.inert:
            return self.inert[signature]
        events, usage_events = self.graph.events, self.recorder.count
        frame = self._new_frame(function, depth + 1)
        params = self._params(function)
        positional = [param for param, skip in params if not skip and param.star == "" and param not in
                      function.node.params.kwonly_params]
        bound: dict[str, Value] = {}
        position = 0
        named = {param.name.value for param, _ in params}
        extra: DictValue | None = DictValue([], []) if function.node.params.star_kwarg is not None else None
        for arg in args:
            if arg.star:
                self.graph.escape(arg.value)
                extra = None  # `**options` passed on: the keywords are unknown
                continue
            if arg.keyword is not None and arg.keyword not in named and extra is not None:
                extra.items.append(arg.value)  # gathered by `**kwargs`, known by name
                extra.keys.append(arg.keyword)
            elif arg.keyword is not None:
                bound[arg.keyword] = arg.value
            elif position < len(positional):
                bound[positional[position].name.value] = arg.value
                position += 1
        star_kwarg = function.node.params.star_kwarg
        if isinstance(star_kwarg, cst.Param) and extra is not None:
            bound[star_kwarg.name.value] = extra
        for param, skip in params:
            if skip:
                continue
            name = param.name.value
            if name in bound:
                frame.locals[name] = bound[name]
            elif param.default is not None:
                frame.locals[name] = self._eval(param.default, Frame(scopes=function.scope, path=function.path))
            else:
                frame.locals[name] = UNKNOWN
        self.active.add(key)
        try:
            result = self._run_body(function, frame)
        finally:
            self.active.discard(key)
        if self.graph.events == events and self.recorder.count == usage_events and isinstance(result, (Const, Count, Unknown)):
            self.inert[signature] = result
        return result

    # ----- expressions --------------------------------------------------------------------

    def _eval(self, node: cst.BaseExpression | None, frame: Frame) -> Value:
        if node is None:
            return UNKNOWN
        if isinstance(node, cst.Name):
            if node.value in ("True", "False", "None"):
                return Const({"True": True, "False": False, "None": None}[node.value])
            found = frame.lookup(node.value)
            if isinstance(found, ModuleRef) and node.value.isupper():
                return self._project_constant(found)
            return found if found is not None else ModuleRef(f"builtins.{node.value}")
        if isinstance(node, (cst.Integer, cst.Float, cst.SimpleString)):
            return _literal(node)
        if isinstance(node, cst.Attribute):
            return self._attribute(self._eval(node.value, frame), node.attr.value)
        if isinstance(node, cst.Call):
            return self._call(node, frame)
        if isinstance(node, cst.BinaryOperation):
            return self._binary(self._eval(node.left, frame), self._eval(node.right, frame), node.operator)
        if isinstance(node, cst.UnaryOperation):
            operand = self._eval(node.expression, frame)
            if isinstance(node.operator, cst.Minus):
                if isinstance(operand, Const) and isinstance(operand.value, (int, float)):
                    return Const(-operand.value)
                count = as_count(operand)
                return count.scale(Fraction(-1)) if count is not None else UNKNOWN
            return UNKNOWN
        if isinstance(node, (cst.Tuple, cst.List)):
            items: list[Value] = []
            for element in node.elements:
                value = self._eval(element.value, frame)
                if isinstance(element, cst.StarredElement):
                    items.extend(self.graph.items_of(value))
                else:
                    items.append(value)
            return ListValue(items, depth=len(self.graph.bodies))
        if isinstance(node, cst.Dict):
            elements = [element for element in node.elements if isinstance(element, cst.DictElement)]
            keys = [self._eval(element.key, frame) for element in elements]
            return DictValue([self._eval(element.value, frame) for element in elements],
                             [key.value if isinstance(key, Const) and isinstance(key.value, str) else None
                              for key in keys])
        if isinstance(node, cst.BooleanOperation):
            left, right = self._eval(node.left, frame), self._eval(node.right, frame)
            if isinstance(node.operator, cst.Or):
                return join(left, right) if not isinstance(left, Const) or not left.value else left
            return UNKNOWN
        if isinstance(node, cst.IfExp):
            self._eval(node.test, frame)
            return self._conditional(node, self._eval(node.body, frame), self._eval(node.orelse, frame))
        if isinstance(node, cst.Subscript):
            return self._subscript(node, frame)
        if isinstance(node, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
            inner = frame.branch()
            for clause in _comprehension_clauses(node.for_in):
                self._assign(clause.target, self._element_of(self._eval(clause.iter, inner)), inner)
            return ListValue([self._eval(node.elt, inner)], depth=len(self.graph.bodies))
        if isinstance(node, cst.Comparison):
            self._eval(node.left, frame)
            for target in node.comparisons:
                self._eval(target.comparator, frame)
            return UNKNOWN
        if isinstance(node, cst.NamedExpr):
            value = self._eval(node.value, frame)
            self._assign(node.target, value, frame)
            return value
        return UNKNOWN

    def _conditional(self, node: cst.IfExp, body: Value, orelse: Value) -> Value:
        """`x if test else y`; of two lists, one list whose items each side adds are
        optional (`[conv] + ([bn] if use_bn else [])`), like items appended under an `if`."""
        if not (isinstance(body, ListValue) and isinstance(orelse, ListValue)):
            return join(body, orelse)
        items: list[Value] = []
        optional: list[tuple[int, ...]] = []
        for side, holds in ((body, True), (orelse, False)):
            self.body_count += 1
            self.graph.conditions[self.body_count] = (node.test, holds)
            items += side.items
            optional += [(self.body_count, *group) for group in side.optional]
        return ListValue(items, optional, len(self.graph.bodies))

    def _subscript(self, node: cst.Subscript, frame: Frame) -> Value:
        base = self._eval(node.value, frame)
        if isinstance(base, Tensor):
            self.graph.consume(base, "index")
            return Tensor(Op("index"))
        if isinstance(base, ListValue) and len(node.slice) == 1:
            index = node.slice[0].slice
            if isinstance(index, cst.Index):
                position = self._eval(index.value, frame)
                if isinstance(position, Const) and isinstance(position.value, int):
                    try:
                        return base.items[position.value]
                    except IndexError:
                        return UNKNOWN
        return UNKNOWN

    def _attribute(self, base: Value, name: str) -> Value:
        if isinstance(base, ModuleRef):
            resolved = self._resolve_qualname(f"{base.qualname}.{name}")
            return self._project_constant(resolved) if name.isupper() else resolved
        if isinstance(base, Instance):
            if name in base.attributes:
                return base.attributes[name]
            member = self._class_member(base.cls, name)
            if isinstance(member, FunctionValue):
                return FunctionValue(member.node, member.scope, member.path, bound_self=base)
            if member is not None:
                return member
            return BoundMethod(base, name)
        if isinstance(base, ClassValue):
            member = self._class_member(base, name)
            return member if member is not None else UNKNOWN
        if isinstance(base, LayerRef) and name == "convert_sync_batchnorm":
            return ModuleRef("torch.nn.SyncBatchNorm.convert_sync_batchnorm")  # a class method: usage.external
        if isinstance(base, Layer):
            if name in base.spec.params:
                return base.arg(name)
            return BoundMethod(base, name)
        if isinstance(base, Param) and isinstance(base.default, (LayerRef, ModuleRef)):
            return self._attribute(base.default, name)
        if isinstance(base, ModelValue):
            return self.recorder.attribute(base, name)
        if isinstance(base, Settings):
            return base.fields.get(name, UNKNOWN)
        if isinstance(base, (Tensor, ListValue, LayerSequence, Super, DictValue)):
            return BoundMethod(base, name)
        return UNKNOWN

    def _binary(self, left: Value, right: Value, operator: cst.CSTNode) -> Value:
        if isinstance(left, Tensor) or isinstance(right, Tensor):
            for operand in (left, right):
                if isinstance(operand, Tensor):
                    self.graph.consume(operand, "arithmetic")
            rank = left.rank if isinstance(left, Tensor) else None
            return Tensor(Op("arithmetic"), rank=rank)
        if isinstance(left, ListValue) and isinstance(right, ListValue) and isinstance(operator, (cst.Add, cst.AddAssign)):
            return ListValue([*left.items, *right.items], [*left.optional, *right.optional], len(self.graph.bodies))
        left_count, right_count = as_count(left), as_count(right)
        if left_count is None or right_count is None:
            return _float_arith(left, right, operator)
        if isinstance(operator, (cst.Add, cst.AddAssign)):
            return left_count + right_count
        if isinstance(operator, (cst.Subtract, cst.SubtractAssign)):
            return left_count - right_count
        if isinstance(operator, (cst.Multiply, cst.MultiplyAssign)):
            if left_count.concrete is not None:
                return right_count.scale(left_count.concrete)
            if right_count.concrete is not None:
                return left_count.scale(right_count.concrete)
        floor_division = isinstance(operator, (cst.FloorDivide, cst.FloorDivideAssign))
        if floor_division and right_count.concrete and left_count.concrete is not None:
            return Count.number(int(left_count.concrete // right_count.concrete))
        return UNKNOWN

    # ----- calls --------------------------------------------------------------------------

    def _call(self, call: cst.Call, frame: Frame) -> Value:
        if isinstance(call.func, cst.Attribute):
            base = self._eval(call.func.value, frame)
            name = call.func.attr.value
            # Methods of models and of parameters that hold one (`model.eval()`) are resolved when called.
            usage_value = isinstance(base, (*USAGE_VALUES, Param))
            callee = BoundMethod(base, name) if usage_value else self._attribute(base, name)
        else:
            callee = self._eval(call.func, frame)
        args = [
            Arg(arg.keyword.value if arg.keyword else None, self._eval(arg.value, frame), arg, arg.star)
            for arg in call.args
        ]
        if isinstance(call.func, cst.Attribute):
            self.recorder.training_step(call.func, self._site(call, frame))
        if self.recorder.in_model_loop:
            # `self.norms[t](x)`: what the container holds (the index is rarely known).
            held = self._eval(call.func.value, frame) if isinstance(call.func, cst.Subscript) else callee
            self.recorder.module_call(self._site(call, frame), held)
        return self._apply(callee, args, call, frame)

    def _apply(self, callee: Value, args: list[Arg], call: cst.Call, frame: Frame) -> Value:
        if isinstance(callee, Param):
            if isinstance(callee.default, (LayerRef, FunctionValue, ClassValue)):
                return self._apply(callee.default, args, call, frame)
            model = self.recorder.called_parameter(callee, call)
            if model is not None:
                return self._use_model(model, args, call, frame)
            return self.graph.unknown_call(args, "call")
        if isinstance(callee, LayerRef):
            return self.graph.construct(callee, args, call, frame.path, frame.helper)
        if isinstance(callee, Layer):
            return self.graph.apply_layer(callee, first_positional(args))
        if isinstance(callee, LayerSequence):
            if not self.recorder.in_model_code:
                model = self.recorder.model_of(callee, as_model=True)
                assert model is not None
                self.recorder.call(self._site(call, frame), model, args)
            return self.graph.apply_sequence(callee, first_positional(args))
        if isinstance(callee, FunctionValue):
            self.recorder.arguments(args, frame.path, frame.helper)
            return self._invoke(callee, args, call, frame.depth)
        if isinstance(callee, ClassValue):
            return self._instantiate(callee, args, call, frame)
        if isinstance(callee, ModelValue):
            return self._use_model(callee, args, call, frame)
        if isinstance(callee, Instance):
            if callee.sequence is not None:
                return self.graph.apply_sequence(callee.sequence, first_positional(args))
            model = self.recorder.model_of(callee)
            if model is not None:
                return self._use_model(model, args, call, frame)
            return self.graph.unknown_call(args, "module")
        if isinstance(callee, BoundMethod):
            return self._method(callee, args, call, frame)
        if isinstance(callee, Super):
            return callee
        if isinstance(callee, ModuleRef):
            # Functions are worth following; of another file's classes, what models they build.
            # Factories (`net = resnet20()`) only where the code analysed calls them: inside
            # helpers and model code they add nothing a rule reads, and cost much.
            factories = frame.depth == 0 and not self.recorder.in_model_code
            resolved = self._project_value(callee, functions_only=True, factories=factories)
            if resolved is not None:
                return self._apply(resolved, args, call, frame)
            # Inside a model's own code, another file's class builds a submodule: no use to follow.
            definition = None if self.recorder.in_model_code else self._definition(callee)
            if isinstance(definition, ClassValue):
                return self._instantiate(definition, args, call, frame)
            used = self.recorder.external(callee.qualname, args, self._site(call, frame))
            if used is not None:
                return used
            result = self._known_function(callee.qualname, args, call, frame)
            if result is UNKNOWN and self.project is not None and self.recorder.in_model_code:
                return ForeignInstance(callee.qualname, lambda: self._reexported(callee), self._resolve_in)
            return result
        return self.graph.unknown_call(args, "call")

    def _instantiate(self, cls: ClassValue, args: list[Arg], call: cst.Call, frame: Frame) -> Value:
        """`Net()` builds a model whose content the presence index knows; an instance of
        any other class (a trainer) gets its `__init__` run, so that its methods see
        `self.facts`."""
        model = self.recorder.construct_class(cls, args, self._site(call, frame))
        if model is not None:
            self.graph.escape_args(args)
            return model
        instance = Instance(cls)
        init = self._class_member(cls, "__init__")
        if isinstance(init, FunctionValue):
            self._invoke(FunctionValue(init.node, init.scope, init.path, bound_self=instance), args, call, frame.depth)
        else:
            self.graph.escape_args(args)
        if id(cls.node) not in self.active and any(isinstance(value, ModelValue) for value in instance.attributes.values()):
            # A trainer, predictor or exporter holding the model it was given: its methods see that model.
            self.active.add(id(cls.node))
            try:
                with self.recorder.aside():
                    self._run_methods(cls, instance, [])
            finally:
                self.active.discard(id(cls.node))
        return instance

    def _use_model(self, model: ModelValue, args: list[Arg], call: cst.Call, frame: Frame) -> Value:
        """`model(x)`: a use of a whole model, outside its own code."""
        for arg in args:
            if isinstance(arg.value, Tensor):
                self.graph.consume(arg.value, "module")
        if self.recorder.in_model_code:
            return Tensor(Op("module"))
        return self.recorder.call(self._site(call, frame), model, args)

    def _site(self, node: cst.CSTNode, frame: Frame) -> Site:
        return Site(node, frame.path, frame.helper)

    def _context_of(self, decorator: Value) -> Value:
        """`@torch.no_grad` written without parentheses is the context itself."""
        if isinstance(decorator, ModuleRef):
            return self.recorder.grad_context(decorator.qualname, []) or decorator
        return decorator

    def _resolve_in(self, expression: cst.BaseExpression, definition: ClassValue | FunctionValue) -> Value:
        """A name or attribute chain evaluated where a definition was written."""
        return self._eval(expression, Frame(scopes=definition.scope, path=definition.path))

    def _definition(self, ref: ModuleRef) -> Value | None:
        """The project class an imported name is (a model class, a trainer)."""
        if self.project is None:
            return None
        if ref.qualname not in self.definitions:
            self.definitions[ref.qualname] = self.project.resolve(ref.qualname, classes_only=True)
        return self.definitions[ref.qualname]

    def _reexported(self, ref: ModuleRef) -> Value | None:
        """The project class an imported name is, through re-exports (`from .cells import
        Cell` in a package's `__init__.py`)."""
        value = self._definition(ref)
        for _ in range(MAX_INLINE_DEPTH):
            if not isinstance(value, ModuleRef):
                break
            value = self._definition(value)
        return value

    def _model_class(self, cls: Value) -> tuple[Callable[[], Presence], Framework] | None:
        """Whether a class builds models: their batch-norm presence (computed when asked)
        and framework."""
        if not isinstance(cls, ClassValue):
            return None
        framework = self.presence.framework(cls)
        return (lambda: self.presence.of_definition(cls), framework) if framework is not None else None

    def _project_constant(self, ref: Value) -> Value:
        """An imported UPPER_CASE name: its literal value when a project module defines one."""
        if not isinstance(ref, ModuleRef) or self.project is None:
            return ref
        value = self.project.resolve(ref.qualname, constant=True)
        return value if isinstance(value, (Const, Count)) else ref

    def _project_value(self, ref: Value, functions_only: bool = False, factories: bool = False) -> Value | None:
        """What an imported name is in another project file, looked up only when used."""
        if not isinstance(ref, ModuleRef) or self.project is None:
            return None
        key = (ref.qualname, functions_only, factories)
        if key not in self.project_values:
            self.project_values[key] = self.project.resolve(ref.qualname, functions_only=functions_only,
                                                            factories=factories)
        return self.project_values[key]


    # ----- layers -------------------------------------------------------------------------


    # ----- values -------------------------------------------------------------------------


    def _element_of(self, value: Value) -> Value:
        element = self.recorder.element(value)
        if element is not None:
            return element
        if isinstance(value, (ListValue, DictValue)):
            for item in value.items:
                self.graph.escape(item)
        return UNKNOWN

    def _resolve_qualname(self, qualname: str) -> Value:
        spec = catalogue.lookup(qualname)
        return LayerRef(spec) if spec is not None else ModuleRef(qualname)


def _nothing(frame: Frame) -> None:
    """The branch that runs no code (an if without else, a loop that runs zero times)."""


def _literal(node: cst.Integer | cst.Float | cst.SimpleString) -> Value:
    """A literal's value without `ast.literal_eval` (which costs a compile per literal)."""
    text = node.value.replace("_", "") if not isinstance(node, cst.SimpleString) else node.value
    try:
        if isinstance(node, cst.Integer):
            return Const(int(text, 0))
        if isinstance(node, cst.Float):
            return Const(float(text))
    except ValueError:
        return UNKNOWN if isinstance(node, cst.Integer) else Const(float(node.evaluated_value))
    prefix = node.prefix.lower()
    if "b" in prefix or "f" in prefix:
        return UNKNOWN
    body = text[len(prefix) + len(node.quote): -len(node.quote)]
    if "\\" in body and "r" not in prefix:
        return Const(node.evaluated_value)
    return Const(body)


def _comprehension_clauses(clause: cst.CompFor | None) -> Iterable[cst.CompFor]:
    while clause is not None:
        yield clause
        clause = clause.inner_for_in


def _float_arith(left: Value, right: Value, operator: cst.CSTNode) -> Value:
    if not (isinstance(left, Const) and isinstance(right, Const)):
        return UNKNOWN
    a, b = left.value, right.value
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)):
        return UNKNOWN
    operations: dict[type, Callable[[float, float], float]] = {
        cst.Add: lambda x, y: x + y,
        cst.Subtract: lambda x, y: x - y,
        cst.Multiply: lambda x, y: x * y,
        cst.Divide: lambda x, y: x / y if y else float("nan"),
    }
    operation = operations.get(type(operator))
    return Const(operation(a, b)) if operation else UNKNOWN
