"""The abstract values bnlint's interpreter computes for expressions.

Channel counts are linear forms over symbols (`2*planes + 0`), so `Conv2d(c, c * 2)` then
`BatchNorm2d(c)` is a provable mismatch for every positive `c`, while `BatchNorm2d(width)`
after `Conv2d(x, width)` is provably fine without knowing `width`. Layers, containers and
tensors carry the data-flow facts rules read: who feeds whom, through which ops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

import libcst as cst

if TYPE_CHECKING:
    from bnlint.semantics.catalogue.layers import LayerSpec


class Value:
    """Base of every abstract value."""


@dataclass(frozen=True)
class Unknown(Value):
    pass


UNKNOWN = Unknown()


@dataclass(frozen=True)
class Const(Value):
    value: object


@dataclass(frozen=True)
class Count(Value):
    """A linear form `sum(coef * symbol) + const` over positive integer symbols, with the
    default value of each symbol that has one (a parameter's default argument)."""

    terms: tuple[tuple[str, Fraction], ...]
    const: Fraction = Fraction(0)
    defaults: frozenset[tuple[str, Fraction]] = frozenset()

    @staticmethod
    def symbol(name: str, default: int | None = None) -> Count:
        defaults = frozenset({(name, Fraction(default))}) if default is not None else frozenset()
        return Count(((name, Fraction(1)),), Fraction(0), defaults)

    @staticmethod
    def number(number: int | float) -> Count:
        return Count((), Fraction(number))

    def _combine(self, other: Count, sign: int) -> Count:
        merged = dict(self.terms)
        for name, coef in other.terms:
            merged[name] = merged.get(name, Fraction(0)) + sign * coef
        terms = tuple(sorted((name, coef) for name, coef in merged.items() if coef))
        return Count(terms, self.const + sign * other.const, self.defaults | other.defaults)

    def __add__(self, other: Count) -> Count:
        return self._combine(other, 1)

    def __sub__(self, other: Count) -> Count:
        return self._combine(other, -1)

    def scale(self, factor: Fraction) -> Count:
        terms = tuple((name, coef * factor) for name, coef in self.terms if coef * factor)
        return Count(terms, self.const * factor, self.defaults)

    @property
    def concrete(self) -> Fraction | None:
        return None if self.terms else self.const

    def __str__(self) -> str:
        """Readable for messages: `2*expand + 1`."""
        parts = []
        for name, coef in self.terms:
            symbol = name.split(":", 1)[-1]
            parts.append(symbol if coef == 1 else f"{coef}*{symbol}")
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts).replace("+ -", "- ")

    def with_defaults(self) -> Fraction | None:
        """The value when every symbol takes its default (None if one has none)."""
        defaults = dict(self.defaults)
        if any(name not in defaults for name, _ in self.terms):
            return None
        return self.const + sum((coef * defaults[name] for name, coef in self.terms), Fraction(0))

    def disagrees_under_defaults(self, other: Count) -> tuple[int, int] | None:
        """Both values with default arguments, when those are known and differ."""
        mine, theirs = self.with_defaults(), other.with_defaults()
        if mine is None or theirs is None or mine == theirs:
            return None
        return int(mine), int(theirs)

    def differs_from(self, other: Count) -> bool:
        """True when the two counts differ for every assignment of positive symbols."""
        diff = self - other
        signs = {coef > 0 for _, coef in diff.terms}
        if diff.const:
            signs.add(diff.const > 0)
        return len(signs) == 1  # all contributions push the same way, and at least one is non-zero


@dataclass(frozen=True)
class Param(Value):
    """A function parameter: unknown at the definition, with its default if it has one."""

    name: str
    default: Value | None


@dataclass(frozen=True)
class ModuleRef(Value):
    """A qualified name bnlint knows nothing more about (`torch.cat`, `timm.create_model`)."""

    qualname: str


@dataclass
class Arg:
    """An argument of a call as evaluated: `keyword=value`, or `*value` / `**value` (star)."""

    keyword: str | None
    value: Value
    node: cst.Arg
    star: str


@dataclass
class ArgInfo:
    value: Value
    node: cst.Arg | None  # the argument as written, None for a default


@dataclass(eq=False)
class LayerRef(Value):
    """A layer class, or `functools.partial` of one with some arguments bound."""

    spec: LayerSpec
    bound: dict[str, ArgInfo] = field(default_factory=dict)
    node: cst.Call | None = None  # the partial() call


@dataclass(frozen=True)
class Narrowed(Value):
    """A value known only by an `isinstance` test: `if isinstance(m, nn.BatchNorm2d):`."""

    spec: LayerSpec


@dataclass(frozen=True)
class AttributeWrite:
    """`m.momentum = 0.9` on a value narrowed to a layer class."""

    spec: LayerSpec
    attribute: str
    value: Value
    node: cst.BaseExpression  # the assigned expression


@dataclass(frozen=True)
class Op(Value):
    """A non-layer operation that produced or consumed a tensor (`add`, `relu`, `call`)."""

    name: str


@dataclass
class Use:
    """One place a layer's output was consumed: by `consumer`, after shape-only `via` ops.

    In a container built under conditions (`if normalize: layers.append(bn)`), `present`
    holds the alternative bodies that added the consumer, and `absent` the body whose
    items the output skipped when that body did not run."""

    consumer: Layer | Op
    via: tuple[str, ...]
    present: tuple[int, ...] = ()
    absent: int | None = None


@dataclass(eq=False)
class Layer(Value):
    """One constructed layer instance (a constructor call, evaluated in one context)."""

    spec: LayerSpec
    args: dict[str, ArgInfo]
    node: cst.Call
    path: str  # the file holding `node`
    # The module-level function whose body holds `node`, if any: other files can call it,
    # so what they see of this layer matters too (see bnlint.semantics.crossfile).
    helper: cst.FunctionDef | None = None
    inputs: list[Tensor] = field(default_factory=list)
    uses: list[Use] = field(default_factory=list)
    escaped: bool = False  # handed to code bnlint cannot follow

    def arg(self, name: str | None) -> Value:
        if name is None:
            return UNKNOWN
        info = self.args.get(name)
        if info is not None:
            return info.value
        default = self.spec.defaults.get(name, UNKNOWN)
        return default if isinstance(default, Value) else Const(default)


@dataclass(eq=False)
class Tensor(Value):
    """A tensor flowing through forward/call: the last layer that produced it (or None /
    an Op), the shape-only ops applied since, its rank when known, and its channel count
    when an op (not a layer) fixed it (`torch.cat` along the channels)."""

    producer: Layer | Op | None = None
    via: tuple[str, ...] = ()
    rank: int | None = None
    channels: Count | None = None
    batch: int | None = None  # the batch size of a literal input (`torch.randn(1, 3, 224, 224)`)


@dataclass(eq=False)
class LayerSequence(Value):
    """nn.Sequential / keras.Sequential: items run one after another."""

    items: list[Value]
    entry: list[Layer] = field(default_factory=list)  # layers that receive the container's input
    output: Tensor = field(default_factory=Tensor)
    depth: int = 0  # how many if/loop bodies deep it was created (see ListValue)


@dataclass(eq=False)
class ListValue(Value):
    """A Python list or tuple literal being built, or nn.ModuleList.

    Items appended inside an if or loop body the list was created outside of may be absent:
    `optional` holds, per item, the bodies (outermost first) that added it, () when always
    there, so that the layer after `if use_bn: layers.append(bn)` is known to be fed by the
    one before as well."""

    items: list[Value]
    optional: list[tuple[int, ...]] = field(default_factory=list)
    depth: int = 0

    def __post_init__(self) -> None:
        if len(self.optional) != len(self.items):
            self.optional = [()] * len(self.items)

    def grouped(self) -> list[tuple[Value, tuple[int, ...]]]:
        return list(zip(self.items, self.optional, strict=True))


@dataclass(eq=False)
class DictValue(Value):
    """An OrderedDict / dict: its values in order (for Sequential(OrderedDict(...))) and,
    where they are string literals, its keys (for `Conv2d(..., **kwargs)`)."""

    items: list[Value]
    keys: list[str | None] = field(default_factory=list)


@dataclass(eq=False)
class FunctionValue(Value):
    node: cst.FunctionDef
    scope: tuple[dict[str, Value], ...]  # the enclosing scopes' bindings, innermost first
    path: str
    bound_self: Value | None = None

    @property
    def module_level(self) -> bool:
        """A plain function defined at the top of its module (importable from elsewhere)."""
        return self.bound_self is None and len(self.scope) == 1


@dataclass(eq=False)
class ClassValue(Value):
    node: cst.ClassDef
    scope: tuple[dict[str, Value], ...]
    path: str
    bases: list[Value]
    attributes: dict[str, Value] = field(default_factory=dict)  # class-body bindings


@dataclass(eq=False)
class Settings(Value):
    """A configuration object received as an annotated parameter (`config: EfficientNetConfig`):
    the float defaults its class gives its fields. Only floats (momenta, eps): channel
    counts in a configuration are set per checkpoint, so their defaults prove nothing."""

    fields: dict[str, Value]


@dataclass(eq=False)
class Instance(Value):
    """`self` inside a class's methods, or an instance of a project class."""

    cls: ClassValue
    attributes: dict[str, Value] = field(default_factory=dict)
    sequence: LayerSequence | None = None  # for nn.Sequential subclasses


# Evaluates a name or attribute chain where a class or function was written.
Resolver = Callable[[cst.BaseExpression, "ClassValue | FunctionValue"], "Value"]


@dataclass(frozen=True, eq=False)
class ForeignInstance(Unknown):
    """An instance of another project file's class built in model code (`self.cell =
    BNCell(n)`): unknown to every analysis, its class looked up only when asked (BN301)."""

    qualname: str
    definition: Callable[[], Value | None]
    resolve: Resolver


def join(left: Value, right: Value) -> Value:
    """The value after an if/else whose branches bound `left` and `right`.

    A None (or a parameter defaulting to None) on one side yields the other: the common
    `if norm_layer is None: norm_layer = nn.BatchNorm2d` leaves a BN class.
    """
    if left is right or left == right:
        return left
    if _is_none(left):
        return right
    if _is_none(right):
        return left
    return UNKNOWN


def _is_none(value: Value) -> bool:
    if isinstance(value, Const):
        return value.value is None
    return isinstance(value, Param) and (value.default is None or _is_none(value.default))


def as_count(value: Value) -> Count | None:
    """A channel count, when the value is an integer-like quantity."""
    if isinstance(value, Count):
        return value
    if isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool):
        return Count.number(value.value)
    if isinstance(value, Param):
        default = value.default
        number = default.value if isinstance(default, Const) else None
        usable = isinstance(number, int) and not isinstance(number, bool)
        return Count.symbol(f"param:{value.name}", number if usable else None)
    return None


def as_number(value: Value) -> float | None:
    """A literal number, following a parameter to its default."""
    if isinstance(value, Param) and value.default is not None:
        value = value.default
    if isinstance(value, Const) and isinstance(value.value, (int, float)) and not isinstance(value.value, bool):
        return float(value.value)
    if isinstance(value, Count) and value.concrete is not None:
        return float(value.concrete)
    return None
