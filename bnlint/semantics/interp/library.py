"""What the interpreter knows of library code it cannot see: `functools.partial`,
`OrderedDict`, `super()`, `nn.ModuleList`, framework functions on tensors, and the methods
of tensors, lists, containers and `super()`.
"""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from bnlint.semantics.catalogue import layers as catalogue
from bnlint.semantics.catalogue.layers import FRAMEWORK_ROOTS, KERAS_ROOTS
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.frame import Frame
from bnlint.semantics.interp.graph import LayerGraph
from bnlint.semantics.interp.recorder import UsageRecorder
from bnlint.semantics.interp.usage import USAGE_VALUES
from bnlint.semantics.interp.values import (
    UNKNOWN, Arg, ClassValue, Const, DictValue, FunctionValue, Instance, LayerRef, LayerSequence, ListValue, Op, Param,
    Tensor, Value, as_count, as_number,
)

# Tensor methods that return the same tensor (device/dtype moves) or metadata, not data.
_TENSOR_PASSTHROUGH = frozenset({"to", "cuda", "cpu", "float", "half", "double", "bfloat16", "type_as", "detach"})
_TENSOR_METADATA = frozenset({"size", "dim", "numel", "shape", "dtype", "device", "get_shape", "item", "tolist"})
_CONTAINER_METHODS = frozenset({"append", "add", "add_module", "extend", "insert"})
_MODULE_LISTS = frozenset({"torch.nn.ModuleList", "torch.nn.ModuleDict", "torch.nn.ParameterList"})
_CONCATENATIONS = frozenset({"torch.cat", "torch.concat", "torch.concatenate"})


@dataclass(eq=False)
class Super(Value):
    """`super()` inside a method of `instance`."""

    instance: Instance


@dataclass(eq=False)
class BoundMethod(Value):
    """A method of a known value (`layers.append`), resolved when called."""

    receiver: Value
    name: str


class Library:
    """Calls of library functions and methods, mixed into the Interpreter: it inlines the
    calls that reach project code (`super().__init__`) with the interpreter's frames."""

    facts: FileFacts
    graph: LayerGraph
    recorder: UsageRecorder

    def _known_function(self, qualname: str, args: list[Arg], call: cst.Call, frame: Frame) -> Value:
        short = qualname.rsplit(".", 1)[-1]
        if qualname == "functools.partial" and args and isinstance(args[0].value, LayerRef):
            base = args[0].value
            ref = LayerRef(base.spec, {**base.bound, **self.graph.bind(base.spec, args[1:])}, call)
            if frame.path == self.facts.path:
                self.facts.partials.append(ref)
            return ref
        if qualname in ("collections.OrderedDict", "builtins.dict"):
            pairs = [pair for pair in (self.graph.items_of(args[0].value) if args and args[0].keyword is None else [])
                     if isinstance(pair, ListValue) and len(pair.items) == 2]
            keywords = [arg for arg in args if arg.keyword is not None]
            keys = [pair.items[0] for pair in pairs]
            return DictValue(
                [pair.items[1] for pair in pairs] + [arg.value for arg in keywords],
                [key.value if isinstance(key, Const) and isinstance(key.value, str) else None for key in keys]
                + [arg.keyword for arg in keywords],
            )
        if qualname == "builtins.super" and frame.self_value is not None:
            return Super(frame.self_value)
        if qualname in ("builtins.int", "builtins.round", "math.floor", "math.ceil") and args:
            count = as_count(args[0].value)
            return count if count is not None else UNKNOWN
        if qualname in _MODULE_LISTS:
            items = self.graph.items_of(args[0].value) if args else []
            for item in items:
                self.graph.escape(item)
            return ListValue(list(items), depth=len(self.graph.bodies))
        if qualname in _CONCATENATIONS and args and isinstance(args[0].value, ListValue):
            return self.graph.concatenate(args[0].value.items, args[1:])
        tensor_args = [arg.value for arg in args if isinstance(arg.value, Tensor)]
        if short in ("Input",) and qualname.split(".")[0] in KERAS_ROOTS:
            return Tensor(rank=self._input_rank(args))
        if tensor_args and qualname.split(".")[0] in FRAMEWORK_ROOTS:
            if short in catalogue.SHAPE_OPS:
                first = tensor_args[0]
                return Tensor(first.producer, (*first.via, short), _flatten_rank(short, args))
            name = short
            if short in catalogue.DROPOUT_OPS:
                name = "identity" if _drops_nothing(args) else "dropout"
            for tensor in tensor_args:
                self.graph.consume(tensor, name)
            return Tensor(Op(name), rank=tensor_args[0].rank if short in catalogue.CHANNEL_OPS else None)
        return self.graph.unknown_call(args, "call")

    def _method(self, method: BoundMethod, args: list[Arg], call: cst.Call, frame: Frame) -> Value:
        receiver, name = method.receiver, method.name
        # A method kept in a variable (`switch = model.eval; switch()`) is left alone.
        if isinstance(receiver, (*USAGE_VALUES, Param, Instance, LayerSequence)) and isinstance(call.func, cst.Attribute):
            used = self.recorder.method(receiver, name, args, self._site(call, frame), call.func)
            if used is not None:
                for arg in args:
                    if isinstance(arg.value, Tensor):
                        self.graph.consume(arg.value, name)
                return used
            if not isinstance(receiver, (Instance, LayerSequence)):
                return self.graph.unknown_call(args, name)
        if isinstance(receiver, Tensor):
            if name in catalogue.SHAPE_OPS:
                return Tensor(receiver.producer, (*receiver.via, name), _flatten_rank(name, args, method=True))
            if name in _TENSOR_PASSTHROUGH:
                return receiver
            if name in _TENSOR_METADATA:
                return UNKNOWN
            self.graph.consume(receiver, name)
            for arg in args:
                if isinstance(arg.value, Tensor):
                    self.graph.consume(arg.value, name)
            return Tensor(Op(name), rank=receiver.rank if name in catalogue.CHANNEL_OPS else None)
        if isinstance(receiver, ListValue) and name in _CONTAINER_METHODS and args:
            if name == "extend":
                self.graph.extend_list(receiver, args[0].value)
            elif name == "insert" and len(args) == 2:
                index = args[0].value
                position = index.value if isinstance(index, Const) and isinstance(index.value, int) else None
                self.graph.add_to_list(receiver, [args[1].value], position)
            else:
                self.graph.add_to_list(receiver, [args[-1].value])
            return Const(None)
        if isinstance(receiver, LayerSequence) and name in _CONTAINER_METHODS and args:
            self.graph.extend_sequence(receiver, [(args[-1].value, self.graph.optional_group(receiver.depth))])
            return Const(None)
        if isinstance(receiver, Instance) and name in ("add_module", "register_module") and len(args) == 2:
            key, layer = args[0].value, args[1].value
            if isinstance(key, Const) and isinstance(key.value, str):
                receiver.attributes[key.value] = layer
            if receiver.sequence is not None:
                self.graph.extend_sequence(receiver.sequence, [(layer, self.graph.optional_group(receiver.sequence.depth))])
            return Const(None)
        if isinstance(receiver, Super) and name == "__init__":
            instance = receiver.instance
            if instance.sequence is not None:
                items = self.graph.sequence_items(args)
                self.graph.extend_sequence(instance.sequence, items)
                return Const(None)
            for base in self._bases(instance.cls):
                init = self._class_member(base, "__init__") if isinstance(base, ClassValue) else None
                if isinstance(init, FunctionValue):
                    bound = FunctionValue(init.node, init.scope, init.path, bound_self=instance)
                    return self._invoke(bound, args, call, frame.depth)
            self.graph.escape_args(args)
            return Const(None)
        return self.graph.unknown_call(args, name)

    def _input_rank(self, args: list[Arg]) -> int | None:
        for arg in args:
            if arg.keyword in (None, "shape") and isinstance(arg.value, ListValue):
                return len(arg.value.items) + 1
        return None


def _drops_nothing(args: list[Arg]) -> bool:
    """`F.dropout(x, p=0.0)` / `F.dropout(x, 0)`: no variance shift."""
    positional = [arg.value for arg in args if arg.keyword is None and not arg.star]
    rate = next((arg.value for arg in args if arg.keyword in ("p", "rate")), None)
    if rate is None and len(positional) > 1:
        rate = positional[1]
    return rate is not None and as_number(rate) == 0


def _flatten_rank(name: str, args: list[Arg], method: bool = False) -> int | None:
    """`x.flatten(1)` / `torch.flatten(x, 1)` leave a rank-2 tensor; other shape ops: unknown."""
    if name != "flatten":
        return None
    values = [arg.value for arg in args if arg.keyword in (None, "start_dim")]
    start = values[0 if method else 1] if len(values) > (0 if method else 1) else Const(0)
    return 2 if isinstance(start, Const) and start.value == 1 and len(values) <= (1 if method else 2) else None
