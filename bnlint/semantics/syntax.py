"""Fast walks over LibCST trees: a node's children read from its fields, and a parent map.
LibCST's own `children` property rebuilds the node's field list through a visitor each
time, which costs more than the analyses that walk with it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import fields
from functools import lru_cache
from typing import TypeVar

import libcst as cst

_Node = TypeVar("_Node", bound=cst.CSTNode)


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


class Parents:
    """Each node's parent in one tree (LibCST nodes do not know theirs), mapped once."""

    def __init__(self, root: cst.CSTNode) -> None:
        self.root = root  # keeps the nodes alive: the map is keyed by identity
        self._parent: dict[int, cst.CSTNode] = {}
        stack = [root]
        while stack:
            node = stack.pop()
            for child in children(node):
                self._parent[id(child)] = node
                stack.append(child)

    def path_to(self, node: cst.CSTNode) -> list[cst.CSTNode] | None:
        """The nodes from the root down to `node`, both included; None when it is not in the tree."""
        path = [node]
        while path[-1] is not self.root:
            parent = self._parent.get(id(path[-1]))
            if parent is None:
                return None
            path.append(parent)
        return path[::-1]

    def enclosing(self, node: cst.CSTNode, kind: type[_Node] | tuple[type[_Node], ...]) -> _Node | None:
        """The innermost node of `kind` that holds `node` (not `node` itself)."""
        current = self._parent.get(id(node))
        while current is not None:
            if isinstance(current, kind):
                return current
            current = self._parent.get(id(current))
        return None


@lru_cache(maxsize=4)
def parents(root: cst.CSTNode) -> Parents:
    """The parent map of a tree, kept for the few trees in use (rules ask several times)."""
    return Parents(root)
