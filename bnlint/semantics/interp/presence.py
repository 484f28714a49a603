"""Which classes and factories build a model that holds batch norm.

A model class holds batch norm when its definition (methods, base classes) refers to a
batch-norm layer, directly or through an alias, a `partial`, a default argument, another
project class or factory (in any file), or a known constructor (`torchvision.models.
resnet50`). It certainly holds none when every layer and callable it refers to is known
and none is batch norm. Anything it calls that bnlint cannot see (a parameter, a class
of a third-party library) makes its content unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import libcst as cst

from bnlint.semantics.catalogue.constructors import Presence, constructor_presence
from bnlint.semantics.catalogue.layers import FRAMEWORK_ROOTS, KERAS_ROOTS, Framework, Kind
from bnlint.semantics.interp.values import ClassValue, Const, FunctionValue, LayerRef, ModuleRef, Param, Value
from bnlint.semantics.syntax import children

# Base classes that make a class a model (or a layer, which is called like one).
_MODEL_BASES = {
    "torch.nn.Module": Framework.TORCH,
    "torch.nn.modules.module.Module": Framework.TORCH,
    "pytorch_lightning.LightningModule": Framework.TORCH,
    "lightning.LightningModule": Framework.TORCH,
    "lightning.pytorch.LightningModule": Framework.TORCH,
    "pytorch_lightning.core.LightningModule": Framework.TORCH,
}
_KERAS_MODEL_NAMES = frozenset({"Model", "Layer", "Functional"})
# Modules whose callables never build a model part bnlint could miss.
_INERT_ROOTS = frozenset({
    "builtins", "math", "numpy", "functools", "collections", "typing", "copy", "itertools", "warnings", "logging",
    "einops", "os", "re", "dataclasses", "enum", "abc", "operator", "inspect", "json", "pathlib",
})


def model_framework(base: Value) -> Framework | None:
    """The framework of a base class that makes its subclasses models."""
    if isinstance(base, LayerRef):
        return base.spec.framework
    if not isinstance(base, ModuleRef):
        return None
    qualname = base.qualname
    if qualname in _MODEL_BASES:
        return _MODEL_BASES[qualname]
    parts = qualname.split(".")
    if parts[0] in KERAS_ROOTS and parts[-1] in _KERAS_MODEL_NAMES and ("keras" in parts or parts[0] == "keras"):
        return Framework.KERAS
    return None


class PresenceIndex:
    """Presence of batch norm per class / factory definition, computed on demand and memoized.

    `resolve(expression, definition)` evaluates a name or attribute chain in the scope of
    a definition; `definition(ref)` finds what an imported name is in a project file."""

    def __init__(self, resolve: Callable[[cst.BaseExpression, ClassValue | FunctionValue], Value],
                 definition: Callable[[ModuleRef], Value | None], bases: Callable[[ClassValue], list[Value]]) -> None:
        self.resolve = resolve
        self.definition = definition
        self.bases = bases
        self.memo: dict[int, Presence] = {}
        self.frameworks: dict[int, Framework | None] = {}

    def framework(self, cls: ClassValue, seen: frozenset[int] = frozenset()) -> Framework | None:
        """The framework when `cls` is a model (or layer) class, else None."""
        key = id(cls.node)
        if key in self.frameworks:
            return self.frameworks[key]
        self.frameworks[key] = None  # a cycle of bases makes no model
        found = None
        for base in self.bases(cls):
            if isinstance(base, ModuleRef):
                base = self.definition(base) or base
            if isinstance(base, ClassValue) and id(base.node) not in seen:
                found = self.framework(base, seen | {key})
            else:
                found = model_framework(base)
            if found is not None:
                break
        self.frameworks[key] = found
        return found

    def of_definition(self, definition: ClassValue | FunctionValue) -> Presence:
        key = id(definition.node)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = Presence.NO  # a recursive reference adds nothing
        found = Presence.NO
        for expression, called in _references(definition.node):
            presence = self._of_reference(self.resolve(expression, definition), called)
            if presence is Presence.YES:
                found = presence
                break
            if presence is Presence.UNKNOWN:
                found = presence
        if isinstance(definition, ClassValue) and found is not Presence.YES:
            for base in self.bases(definition):
                presence = self._of_reference(base, called=False)
                if presence is Presence.YES:
                    found = presence
                    break
        self.memo[key] = found
        return found

    def _of_reference(self, value: Value, called: bool) -> Presence:
        if isinstance(value, Param):
            if value.default is not None and not _is_none(value.default):
                return self._of_reference(value.default, called)
            return Presence.UNKNOWN if called else Presence.NO
        if isinstance(value, LayerRef):
            return Presence.YES if value.spec.kind is Kind.BATCH_NORM else Presence.NO
        if isinstance(value, (ClassValue, FunctionValue)):
            return self.of_definition(value)
        if isinstance(value, ModuleRef):
            known = constructor_presence(value.qualname)
            if known is not None:
                return known
            resolved = self.definition(value)
            if isinstance(resolved, (ClassValue, FunctionValue, LayerRef)):
                return self._of_reference(resolved, called)
            root = value.qualname.split(".")[0]
            if called and root not in _INERT_ROOTS and root not in FRAMEWORK_ROOTS:
                return Presence.UNKNOWN
        return Presence.NO


def _is_none(value: Value) -> bool:
    return isinstance(value, Const) and value.value is None


def _references(node: cst.CSTNode) -> Iterator[tuple[cst.BaseExpression, bool]]:
    """Every maximal name or attribute chain in a definition, and whether it is called."""
    stack: list[cst.CSTNode] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, cst.Call) and isinstance(current.func, (cst.Name, cst.Attribute)):
            yield current.func, True
            stack.extend(arg for arg in current.args)
            if isinstance(current.func, cst.Attribute):
                stack.append(current.func.value)
            continue
        if isinstance(current, (cst.Name, cst.Attribute)):
            yield current, False
            if isinstance(current, cst.Attribute):
                stack.append(current.value)
            continue
        stack.extend(children(current))
