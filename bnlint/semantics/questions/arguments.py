"""Where a batch norm's hyper-parameters are written: constructor and `partial()`
arguments, and `m.<name> = v` on a value narrowed to a batch-norm class (BN306, BN307)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import libcst as cst

from bnlint.semantics.catalogue.layers import Kind, LayerSpec
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.values import ArgInfo, Value


@dataclass(frozen=True)
class ArgumentSite:
    """One place a batch-norm argument is set."""

    spec: LayerSpec
    value: Value
    anchor: cst.CSTNode  # the argument, or the assigned expression
    expression: cst.BaseExpression  # the value as written
    call: cst.Call | None = None  # the constructor or partial() call; None for `m.eps = v`
    arguments: Mapping[str, ArgInfo] = field(default_factory=dict)  # all that call binds


def batch_norm_arguments(facts: FileFacts, names: tuple[str, ...]) -> Iterator[ArgumentSite]:
    """Every batch norm argument of this file called one of `names` (`eps` in torch is
    `epsilon` in Keras), as written in this file."""
    bound: list[tuple[LayerSpec, dict[str, ArgInfo], cst.Call | None]] = [
        (layer.spec, layer.args, layer.node) for layer in [*facts.own_layers(), *facts.functional_bn]]
    bound += [(ref.spec, ref.bound, ref.node) for ref in facts.partials]
    seen: set[cst.Arg] = set()
    for spec, arguments, call in bound:
        if spec.kind is not Kind.BATCH_NORM:
            continue
        for name in names:
            info = arguments.get(name)
            if info is not None and info.node is not None and info.node not in seen:
                seen.add(info.node)  # a constructor run in several contexts is one place
                yield ArgumentSite(spec, info.value, info.node, info.node.value, call, arguments)
    for write in facts.attribute_writes:
        if write.attribute in names and write.spec.kind is Kind.BATCH_NORM:
            yield ArgumentSite(write.spec, write.value, write.node, write.node)


def complement(value: float) -> str:
    """`1 - value`, written as a literal: a momentum in the other framework's convention."""
    return repr(round(1 - value, 10))
