"""A frame: one run of a function body, as the interpreter walks it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import libcst as cst

from bnlint.semantics.interp.values import UNKNOWN, Instance, Value


@dataclass
class Frame:
    """One run of a function body (or the module's): local bindings, the enclosing
    scopes, and what `return` produced."""

    scopes: tuple[dict[str, Value], ...]
    path: str  # the file whose code runs in this frame
    locals: dict[str, Value] = field(default_factory=dict)
    returns: list[Value] = field(default_factory=list)
    self_value: Instance | None = None
    depth: int = 0
    helper: cst.FunctionDef | None = None  # the module-level function running here, if any

    def lookup(self, name: str) -> Value | None:
        if name in self.locals:
            return self.locals[name]
        for scope in self.scopes:
            if name in scope:
                return scope[name]
        return None

    def branch(self) -> Frame:
        return Frame(self.scopes, self.path, dict(self.locals), self.returns, self.self_value, self.depth, self.helper)

    def merge(self, *branches: Frame, joiner: Callable[[Value, Value], Value]) -> None:
        """Join the locals of branches that may each have run (if/else, loop body or not)."""
        names = {
            name
            for branch in branches
            for name, value in branch.locals.items()
            if self.locals.get(name) is not value
        }
        names.update(name for name in self.locals if any(name not in branch.locals for branch in branches))
        for name in names:
            values = [branch.locals.get(name, UNKNOWN) for branch in branches]
            merged = values[0]
            for value in values[1:]:
                merged = joiner(merged, value)
            self.locals[name] = merged
