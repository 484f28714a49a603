"""The layer graph: layers constructed with their bound arguments, what each one feeds
(through which shape-only ops), and what reaches code no one can follow.

The interpreter tells it what runs (construct, feed, consume, escape); it keeps the
containers' items and which alternative bodies may have left them out.
"""

from __future__ import annotations

import libcst as cst

from bnlint.semantics.catalogue.layers import Kind, LayerSpec
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.values import (
    UNKNOWN, Arg, ArgInfo, Const, Count, DictValue, Instance, Layer, LayerRef, LayerSequence, ListValue, Op, Tensor,
    Use, Value, join,
)
from bnlint.semantics.questions.channels import tensor_channels


class LayerGraph:
    def __init__(self, facts: FileFacts) -> None:
        self.facts = facts
        self.events = 0  # layers built, fed or escaped: tells whether a call touched the graph
        # The alternative (if/loop/except) bodies running now, outermost first, each with
        # an id of its own: items appended to a list inside them may be absent.
        self.bodies: list[int] = []
        self.conditions = facts.conditions
        self._feeding: tuple[int, ...] = ()  # the bodies of the container item being fed

    def join(self, left: Value, right: Value) -> Value:
        """Like `join`, but two different tensors meeting after a branch are each used by
        code we cannot attribute: `x = conv(x); if use_bn: x = bn(x)` needs conv's bias."""
        if isinstance(left, Tensor) and isinstance(right, Tensor) and left is not right:
            self.consume(left, "branch")
            self.consume(right, "branch")
            return Tensor(Op("branch"), rank=left.rank if left.rank == right.rank else None)
        return join(left, right)

    def bind(self, spec: LayerSpec, args: list[Arg]) -> dict[str, ArgInfo]:
        bound: dict[str, ArgInfo] = {}
        position = 0
        for arg in args:
            if arg.star == "**" and _known_keys(arg.value):
                # `**dd` with dd = {"device": ..., "dtype": ...}: bound by name, with no node
                # of their own to anchor a finding or a fix on.
                assert isinstance(arg.value, DictValue)
                for key, value in zip(arg.value.keys, arg.value.items, strict=True):
                    bound[str(key)] = ArgInfo(value, None)
                continue
            if arg.star:
                bound["*"] = ArgInfo(UNKNOWN, arg.node)  # unknown arguments: nothing is certain
                continue
            if arg.keyword is not None:
                bound[arg.keyword] = ArgInfo(arg.value, arg.node)
            else:
                if position < len(spec.params):
                    bound[spec.params[position]] = ArgInfo(arg.value, arg.node)
                position += 1
        return bound

    def construct(self, ref: LayerRef, args: list[Arg], call: cst.Call, path: str,
                  helper: cst.FunctionDef | None) -> Value:
        spec = ref.spec
        if spec.kind is Kind.CONTAINER:
            sequence = LayerSequence([], depth=len(self.bodies))
            self.extend_sequence(sequence, self.sequence_items(args))
            return sequence
        self.events += 1
        layer = Layer(spec, {**ref.bound, **self.bind(spec, args)}, call, path, helper)
        if spec.functional:
            if path == self.facts.path:
                self.facts.functional_bn.append(layer)
            tensor = first_positional(args)
            if isinstance(tensor, Tensor):
                self.consume(tensor, spec.name)
            return Tensor(Op(spec.name))
        self.facts.layers.append(layer)
        return layer

    def sequence_items(self, args: list[Arg]) -> list[tuple[Value, tuple[int, ...]]]:
        """A container's items, each with the bodies that may have left it out."""
        items: list[tuple[Value, tuple[int, ...]]] = []
        for arg in args:
            if arg.keyword not in (None, "layers"):
                continue
            if isinstance(arg.value, ListValue):
                items.extend(arg.value.grouped())
            elif arg.star or isinstance(arg.value, DictValue):
                items.extend((item, ()) for item in self.items_of(arg.value))
            else:
                items.append((arg.value, ()))
        return items

    def optional_group(self, depth: int) -> tuple[int, ...]:
        """The bodies entered since a container was made at `depth`: () when none."""
        return tuple(self.bodies[depth:])

    def add_to_list(self, target: ListValue, items: list[Value], position: int | None = None) -> None:
        group = self.optional_group(target.depth)
        if position is None:
            target.items.extend(items)
            target.optional.extend([group] * len(items))
            return
        target.items[position:position] = items
        target.optional[position:position] = [group] * len(items)

    def extend_list(self, target: ListValue, value: Value) -> None:
        """`layers += block(...)` / `layers.extend(block(...))`: the items a list brings keep
        the bodies that may have left them out (`if normalize: layers.append(bn)` in `block`)."""
        if not isinstance(value, ListValue):
            self.add_to_list(target, self.items_of(value))
            return
        group = self.optional_group(target.depth)
        target.items.extend(value.items)
        target.optional.extend((*group, *bodies) for bodies in value.optional)

    def extend_sequence(self, sequence: LayerSequence, items: list[tuple[Value, tuple[int, ...]]]) -> None:
        """Feed items one after another. When an optional group of items ends (the body of
        an if or loop that added them), what came before the group may flow on directly
        too, so both are joined."""
        open_groups: list[tuple[int, Tensor]] = []  # (body, what flowed in before it)
        for item, bodies in items:
            shared = 0
            while shared < min(len(open_groups), len(bodies)) and open_groups[shared][0] == bodies[shared]:
                shared += 1
            while len(open_groups) > shared:
                sequence.output = self._skip(sequence.output, *open_groups.pop())
            open_groups += [(body, sequence.output) for body in bodies[shared:]]
            first = not sequence.items
            sequence.items.append(item)
            self._feeding = bodies
            try:
                sequence.output = self.feed(item, sequence.output)
            finally:
                self._feeding = ()
            if first:
                sequence.entry = self.entry_layers(item)
        while open_groups:
            sequence.output = self._skip(sequence.output, *open_groups.pop())

    def _skip(self, output: Tensor, body: int, skipped: Tensor) -> Tensor:
        """The end of an optional group of items: what flowed in before it goes on directly
        when the body did not run (`layers = [conv]; if use_bn: layers.append(bn)`)."""
        if output is skipped:
            return output
        if isinstance(skipped.producer, Layer):
            skipped.producer.uses.append(Use(Op("branch"), skipped.via, absent=body))
        self.consume(output, "branch")
        return Tensor(Op("branch"), rank=output.rank if output.rank == skipped.rank else None)

    def entry_layers(self, item: Value) -> list[Layer]:
        if isinstance(item, Layer):
            return [item]
        if isinstance(item, LayerSequence):
            return list(item.entry)
        if isinstance(item, Instance) and item.sequence is not None:
            return list(item.sequence.entry)
        return []

    def feed(self, item: Value, tensor: Tensor) -> Tensor:
        if isinstance(item, Layer):
            return self.apply_layer(item, tensor)
        if isinstance(item, LayerSequence):
            return self.apply_sequence(item, tensor)
        if isinstance(item, Instance) and item.sequence is not None:
            return self.apply_sequence(item.sequence, tensor)
        self.escape(item)
        self.consume(tensor, "module")
        return Tensor(Op("module"))

    def apply_layer(self, layer: Layer, value: Value) -> Tensor:
        self.events += 1
        tensor = value if isinstance(value, Tensor) else Tensor()
        kind = layer.spec.kind
        if kind is Kind.IDENTITY:
            return tensor
        if kind is Kind.RESHAPE:
            rank = 2 if layer.spec.name == "Flatten" and not layer.args else None
            return Tensor(tensor.producer, (*tensor.via, layer.spec.name), rank)
        layer.inputs.append(tensor)
        if isinstance(tensor.producer, Layer):
            tensor.producer.uses.append(Use(layer, tensor.via, self._feeding))
        return Tensor(layer, rank=_output_rank(layer, tensor))

    def apply_sequence(self, sequence: LayerSequence, value: Value) -> Tensor:
        tensor = value if isinstance(value, Tensor) else Tensor()
        for layer in sequence.entry:
            layer.inputs.append(tensor)
            if isinstance(tensor.producer, Layer):
                tensor.producer.uses.append(Use(layer, tensor.via, self._feeding))
        return Tensor(sequence.output.producer, sequence.output.via, sequence.output.rank)

    def consume(self, tensor: Tensor, name: str) -> None:
        self.events += 1
        if isinstance(tensor.producer, Layer):
            tensor.producer.uses.append(Use(Op(name), tensor.via))

    def consume_nested(self, value: Value, name: str) -> None:
        """Tensors handed on inside tuples, lists and dicts (`return out, {"emb": emb}`) are
        used by code we cannot see; the layers there are not (a helper returns its layers)."""
        if isinstance(value, Tensor):
            self.consume(value, name)
        elif isinstance(value, (ListValue, DictValue)):
            for item in value.items:
                self.consume_nested(item, name)

    def escape(self, value: Value) -> None:
        """The value reaches code we cannot follow: its consumers become unknowable."""
        if isinstance(value, (Layer, LayerSequence, ListValue, DictValue, Tensor)):
            self.events += 1
        if isinstance(value, Layer):
            value.escaped = True
        elif isinstance(value, LayerSequence):
            self.consume(value.output, "escape")
        elif isinstance(value, (ListValue, DictValue)):
            for item in value.items:
                self.escape(item)
        elif isinstance(value, Tensor):
            self.consume(value, "escape")

    def escape_args(self, args: list[Arg]) -> None:
        for arg in args:
            self.escape(arg.value)

    def unknown_call(self, args: list[Arg], name: str) -> Value:
        for arg in args:
            if isinstance(arg.value, Tensor):
                self.consume(arg.value, name)
            else:
                self.escape(arg.value)
        return UNKNOWN

    def items_of(self, value: Value) -> list[Value]:
        if isinstance(value, (ListValue, DictValue)):
            return list(value.items)
        if isinstance(value, LayerSequence):
            return [value]
        self.escape(value)
        return [UNKNOWN]

    def concatenate(self, parts: list[Value], options: list[Arg]) -> Tensor:
        """`torch.cat(tensors, dim)`: along dim 1 the channels add up."""
        tensors = [part for part in parts if isinstance(part, Tensor)]
        for part in parts:
            if isinstance(part, Tensor):
                self.consume(part, "cat")
            else:
                self.escape(part)
        ranks = {tensor.rank for tensor in tensors}
        rank = ranks.pop() if len(ranks) == 1 else None
        dim = next((option.value for option in options if option.keyword in (None, "dim", "axis")), Const(0))
        channels = None
        along_channels = isinstance(dim, Const) and (dim.value == 1 or (rank is not None and dim.value == 1 - rank))
        if along_channels and len(tensors) == len(parts):
            traced = [tensor_channels(tensor) for tensor in tensors]
            if all(found is not None for found in traced):
                channels = sum((found[0] for found in traced if found is not None), Count.number(0))
        return Tensor(Op("torch.cat"), rank=rank, channels=channels)


def _known_keys(value: Value) -> bool:
    return isinstance(value, DictValue) and len(value.keys) == len(value.items) and None not in value.keys


def first_positional(args: list[Arg]) -> Value:
    for arg in args:
        if arg.keyword is None and not arg.star:
            return arg.value
    return UNKNOWN


def _output_rank(layer: Layer, tensor: Tensor) -> int | None:
    spec = layer.spec
    if spec.kind is Kind.CONV:
        return spec.rank
    if spec.kind is Kind.LINEAR:
        return tensor.rank or spec.rank
    if spec.kind is Kind.GLOBAL_POOL:
        return 2
    if spec.keeps_rank or spec.kind is Kind.BATCH_NORM:
        return tensor.rank
    return None
