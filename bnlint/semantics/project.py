"""The project-wide index: which module lives in which file, and what a module binds.

Built once per run from the discovered paths (no parsing). A module is parsed and its body
interpreted only when another file imports something from it, once per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import libcst as cst

from bnlint.semantics.flow import FileModel, Interpreter
from bnlint.semantics.names import module_name_for
from bnlint.semantics.values import Value


class ProjectIndex:
    def __init__(self, paths: Iterable[Path], bn_modules: set[Path] | None = None) -> None:
        # Files whose text names batch norm: importing one makes a file worth analysing.
        self.bn_modules = bn_modules or set()
        self.by_module: dict[str, Path] = {}
        for path in paths:
            if path.suffix != ".py":
                continue
            name, _ = module_name_for(path)
            self.by_module.setdefault(name, path)
        # `from models.common import X` in a repo run as scripts: match on module-name suffixes.
        self.by_suffix: dict[str, list[str]] = {}
        for name in self.by_module:
            parts = name.split(".")
            for start in range(1, len(parts)):
                self.by_suffix.setdefault(".".join(parts[start:]), []).append(name)
        self._loading: set[str] = set()
        self.loaded_files: set[Path] = set()  # what the current file's analysis depended on

    def module_path(self, module: str) -> Path | None:
        if module in self.by_module:
            return self.by_module[module]
        candidates = self.by_suffix.get(module, [])
        return self.by_module[candidates[0]] if len(candidates) == 1 else None

    def resolve(self, qualname: str) -> Value | None:
        """The value a qualified name has in a project file (a function, class, constant)."""
        parts = qualname.split(".")
        for split in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:split])
            path = self.module_path(module)
            if path is None:
                continue
            if path not in self.bn_modules:
                return None  # a module that never names batch norm cannot contribute BN facts
            bindings = self._bindings(path)
            value = bindings.get(parts[split]) if bindings else None
            if value is None or split + 1 != len(parts):
                return None
            return value
        return None

    def _bindings(self, path: Path) -> dict[str, Value] | None:
        key = str(path)
        if key in self._loading:  # an import cycle: the half-loaded module has no bindings yet
            return None
        self._loading.add(key)
        try:
            self.loaded_files.add(path)
            return _load_bindings(path, self)
        finally:
            self._loading.discard(key)


def _file_key(path: Path) -> tuple[str, int, int]:
    """Memo key that changes when the file does (a long-running process sees edits)."""
    try:
        stat = path.stat()
    except OSError:
        return (str(path), 0, 0)
    return (str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _parse_file(path: Path, key: tuple[str, int, int]) -> cst.Module | None:
    try:
        return cst.parse_module(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, cst.ParserSyntaxError):
        return None


_BINDINGS: dict[tuple[str, int, int], dict[str, Value]] = {}


def _load_bindings(path: Path, project: ProjectIndex) -> dict[str, Value] | None:
    """Interpret a module's top level once per process and keep what it binds."""
    key = _file_key(path)
    if key in _BINDINGS:
        return _BINDINGS[key]
    module = _parse_file(path, key)
    if module is None:
        return None
    name, is_package = module_name_for(path)
    interpreter = Interpreter(FileModel(str(path), module), name, is_package, project)
    try:
        bindings = interpreter.load_module()
    except RecursionError:
        bindings = {}
    _BINDINGS[key] = bindings
    return bindings
