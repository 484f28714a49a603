"""Fast walks over LibCST trees: a node's children read from its fields. LibCST's own
`children` property rebuilds the node's field list through a visitor each time, which
costs more than the analyses that walk with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import fields
from functools import lru_cache

import libcst as cst


def walk(node: cst.CSTNode, into_scopes: bool = False) -> Iterator[cst.CSTNode]:
    """The descendants of a node in source order, without the bodies of nested functions
    and classes unless `into_scopes`."""
    stack = children(node)[::-1]
    while stack:
        child = stack.pop()
        yield child
        if into_scopes or not isinstance(child, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            stack += children(child)[::-1]


_FIELDS: dict[type, tuple[str, ...]] = {}
# Fields that hold only whitespace and punctuation.
_SKIPPED = re.compile(r".*whitespace.*|lpar|rpar|comma|semicolon|colon|equal|dot|operator|l?r?(bracket|brace)|"
                      r"leading_lines|lines_after_decorators|header|footer|newline|indent")


def children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """A node's children, read from its fields (LibCST's `children` rebuilds the node)."""
    names = _FIELDS.get(type(node))
    if names is None:
        names = _FIELDS[type(node)] = tuple(field.name for field in fields(node) if not _SKIPPED.fullmatch(field.name))
    found: list[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        if type(value) in _SEQUENCES:
            found += [item for item in value if _is_node(type(item))]
        elif _is_node(type(value)):
            found.append(value)
    return found


_SEQUENCES = (list, tuple)


@lru_cache(maxsize=None)
def _is_node(kind: type) -> bool:
    return issubclass(kind, cst.CSTNode)
