"""Loading other project files on demand: a module is parsed and its top level interpreted
only when a file being analysed uses something it binds.

This module owns the process-wide state: the syntax trees parsed (whether linted or
loaded), the bindings each loaded module makes, and the tree those bindings' nodes are in.
What it keeps depends only on file contents, never on which files were analysed before in
the process: a module loaded inside an import cycle (whose bindings depend on where the
cycle was entered) is not kept, and every analysis gets the same recursion budget wherever
on the stack it starts.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import libcst as cst

from bnlint.compiling import too_complex
from bnlint.semantics.interp.facts import FileFacts
from bnlint.semantics.interp.interpreter import Interpreter
from bnlint.semantics.interp.values import Value
from bnlint.semantics.names import module_name_for
from bnlint.semantics.project.index import ProjectIndex

_MAX_PARSED = 128
_PARSED: OrderedDict[tuple[str, int], cst.Module | None] = OrderedDict()
_BINDINGS: dict[tuple[str, int], dict[str, Value]] = {}
_LOADED: dict[str, cst.Module] = {}  # the module each loaded file's bindings refer into
_RECURSION_BUDGET = 1000  # frames an analysis may use above where it starts
_RECURSION_CEILING = 6000  # Python frames also use the C stack: never above this


class ProjectModules:
    """What other project files bind, for the interpreter (its `ProjectValues`)."""

    def __init__(self, index: ProjectIndex) -> None:
        self.index = index
        self._loading: list[Path] = []  # outermost first
        self._in_cycle: set[Path] = set()  # modules on the stack whose bindings saw a cycle cut

    def resolve(self, qualname: str, *, constant: bool = False, functions_only: bool = False,
                classes_only: bool = False, factories: bool = False) -> Value | None:
        """The value a qualified name has in a project file: a function (or class) whose
        definition builds a layer or uses a model the rules look at, or (`constant`) any
        binding of the module (`from .config import BN_MOMENTUM`). `classes_only`: a class
        (followed, or reaching batch norm through other names). `factories`: also a function
        reaching batch norm through other names (`def resnet20(): return ResNet(3)`)."""
        index = self.index
        parts = qualname.split(".")
        for split in range(len(parts) - 1, 0, -1):
            path = index.module_path(".".join(parts[:split]))
            if path is None:
                continue
            name = parts[split]
            followed = name in index.followed_names(path, functions_only)
            if factories and not followed:
                followed = name in index.bn_names(path)  # a factory: `def resnet20(): return ResNet(3)`
            if classes_only:
                followed = name in index.class_names(path) and (followed or name in index.bn_names(path))
            if not constant and not followed:
                return None  # a definition that builds no relevant layer cannot contribute BN facts
            bindings = self._bindings(path)
            value = bindings.get(name) if bindings else None
            if value is None or split + 1 != len(parts):
                return None
            return value
        return None

    def _bindings(self, path: Path) -> dict[str, Value] | None:
        """Interpret a module's top level once per process and keep what it binds."""
        if path in self._loading:  # an import cycle: the half-loaded module has no bindings yet
            self._in_cycle.update(self._loading)
            return None
        self.index.loaded_files.add(path)
        text = self.index.text(path)
        if text is None:
            return None
        key = (str(path), hash(text))
        if key in _BINDINGS:
            return _BINDINGS[key]
        self._loading.append(path)
        try:
            bindings = self._interpret(path, text)
        finally:
            self._loading.pop()
        if path in self._in_cycle:
            self._in_cycle.discard(path)
        elif bindings is not None:
            _BINDINGS[key] = bindings
        return bindings

    def _interpret(self, path: Path, text: str) -> dict[str, Value] | None:
        try:
            module = parse(path, text)
        except RecursionError:
            module = None
        if module is None:
            return None
        name, is_package = module_name_for(path)
        interpreter = Interpreter(FileFacts(str(path), module, module_name=name, is_package=is_package), self)
        try:
            with recursion_budget():
                bindings = interpreter.load_module()
        except RecursionError:
            bindings = {}
        _LOADED[str(path)] = module
        return bindings


@contextmanager
def recursion_budget() -> Iterator[None]:
    """The same number of frames for an analysis wherever on the stack it starts (a worker
    process, the main one, inside another module's load), so that whether it runs out
    never depends on what was analysed before."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(min(depth + _RECURSION_BUDGET, _RECURSION_CEILING))
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def parse(path: Path, text: str) -> cst.Module | None:
    """Parse a file's text once per process, whether it is linted or imported by a file
    being linted (then it is usually both). Keyed by content, so an edited file is reparsed.
    None when LibCST cannot parse it, or should not be given it (bnlint.compiling)."""
    key = (str(path), hash(text))
    if key in _PARSED:
        _PARSED.move_to_end(key)
        return _PARSED[key]
    try:
        module: cst.Module | None = None if too_complex(text) else cst.parse_module(text)
    except cst.ParserSyntaxError:
        module = None
    _PARSED[key] = module
    if len(_PARSED) > _MAX_PARSED:
        _PARSED.popitem(last=False)
    return module


def loaded_module(path: str) -> cst.Module | None:
    """The syntax tree whose nodes a loaded file's functions and classes are made of."""
    return _LOADED.get(path)
