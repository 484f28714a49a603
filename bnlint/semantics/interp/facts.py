"""What the interpreter learned about one file: the facts rules read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any, TypeVar

import libcst as cst

from bnlint.semantics.interp.usage import UsageFacts
from bnlint.semantics.interp.values import AttributeWrite, ClassValue, Layer, LayerRef

_Answer = TypeVar("_Answer")


@dataclass
class FileFacts:
    """What the interpreter learned about one file: the input rules read."""

    path: str
    module: cst.Module
    source: str = ""  # the text parsed, for cheap text tests before a walk of the tree
    module_name: str = ""  # the dotted name imports resolve against (`from . import x`)
    is_package: bool = False  # an `__init__.py`
    layers: list[Layer] = field(default_factory=list)
    partials: list[LayerRef] = field(default_factory=list)
    functional_bn: list[Layer] = field(default_factory=list)
    attribute_writes: list[AttributeWrite] = field(default_factory=list)
    classes: list[ClassValue] = field(default_factory=list)  # the classes defined here, as evaluated
    # The condition of each `if` body (and `x if test else y` side) by body id
    # (bnlint.semantics.interp.values.Use): its test, and whether the body runs when it holds.
    conditions: dict[int, tuple[cst.BaseExpression, bool]] = field(default_factory=dict)
    usage: UsageFacts = field(default_factory=UsageFacts)  # how models are used (bnlint.semantics.interp.usage)
    complete: bool = True  # False when the step budget cut the analysis short
    derived: dict[Callable[..., Any], Any] = field(default_factory=dict, repr=False)  # see per_file

    def own_layers(self) -> Iterable[Layer]:
        """Layers whose constructor call is in this file (inlined helpers may add others)."""
        return (layer for layer in self.layers if layer.path == self.path)


def per_file(question: Callable[[FileFacts], _Answer]) -> Callable[[FileFacts], _Answer]:
    """A question about one file's facts that several rules ask: answered once per file."""

    @wraps(question)
    def answered(facts: FileFacts) -> _Answer:
        if question not in facts.derived:
            facts.derived[question] = question(facts)
        answer: _Answer = facts.derived[question]
        return answer

    return answered
