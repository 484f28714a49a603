"""The project-wide index: which module lives in which file, and what a module binds.

Built once per run from the discovered paths (no parsing). A module is parsed and its body
interpreted only when another file imports something from it, once per process.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import libcst as cst

from bnlint.compiling import too_complex
from bnlint.semantics.flow import FileModel, Interpreter
from bnlint.semantics.names import imports_in_text, module_name_for
from bnlint.semantics.values import Value


BN_TEXT = re.compile(r"batch_?norm", re.I)
# A definition that constructs a layer the rules look at: `nn.Conv2d(`, `layers.Dense(`...
_LAYER_TEXT = re.compile(r"\b(?:\w*Conv\w*|\w*Linear|Dense|\w*Dropout\w*|\w*BatchNorm\w*|batch_norm\w*)\s*\(")
# Code that uses a model the usage rules look at: mode switches, inference and training
# contexts, data loaders, optimizers, multi-device wrappers, model-zoo constructors.
# A model the usage rules care about comes from a model zoo or a saved file (a project
# model with batch norm makes its importers worth analysing through `bn_names`), or a mode
# switch is written without its call.
USAGE_TEXT = re.compile(
    r"torchvision\.models|from[ \t]+torchvision[ \t]+import[^\n]*\bmodels\b"
    r"|applications(?:\.\w+)*\.[A-Z]\w*\(|applications(?:\.\w+)*[ \t]+import|create_model\(|hub\.load\("
    r"|load_model\(|^[ \t]*[\w.\[\]()]+\.(?:eval|train)[ \t]*(?:#[^\n]*)?$",
    re.M,
)
# Definitions that use a model: followed into other files (`evaluate(model, loader)`).
_MODEL_USE_TEXT = re.compile(
    r"\.(?:eval|train)\(|no_grad|inference_mode|GradientTape|DataLoader|DataParallel|weight_decay"
    r"|requires_grad|\.fit\(|\.batch\(|\.backward\(|training=True"
)
_FOLLOWED_TEXT = re.compile(f"{_LAYER_TEXT.pattern}|{_MODEL_USE_TEXT.pattern}|{USAGE_TEXT.pattern}", re.M)
_DOCS_AND_COMMENTS = re.compile(r"(\"\"\"|\'\'\')[\s\S]*?\1|#[^\n]*")
# Frameworks whose names also appear as folders inside projects (keras/src/backend/torch/):
# `import torch.nn` never means such a folder.
_EXTERNAL_ROOTS = frozenset({"torch", "tensorflow", "keras", "tf_keras", "jax", "flax", "numpy"})
# A top-level definition: what a module exports, and where its source text starts.
_TOP_LEVEL_CLASS = re.compile(r"^class[ \t]+(\w+)", re.M)
_TOP_LEVEL = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)|^(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)


class ProjectIndex:
    def __init__(self, paths: Iterable[Path]) -> None:
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
        self._names: dict[tuple[Path, re.Pattern[str], bool], frozenset[str]] = {}
        self.loaded_files: set[Path] = set()  # what the current file's analysis depended on
        self._classes: dict[Path, frozenset[str]] = {}

    def bn_names(self, path: Path) -> frozenset[str]:
        """The top-level names of a module whose definition uses batch norm, directly or
        through another such name (`class Net` whose backbone is a BN `ResNet`), or that it
        re-exports from such a module: importing one makes a file worth analysing."""
        return self._names_using(path, BN_TEXT, transitive=True)

    def followed_names(self, path: Path, functions_only: bool = False) -> frozenset[str]:
        """The top-level names whose definition builds a layer the rules look at (batch
        norm, or what feeds one) or uses a model (`evaluate(model, loader)`): those worth
        following into another file."""
        return self._names_using(path, _FOLLOWED_TEXT, functions_only)

    def _names_using(self, path: Path, pattern: re.Pattern[str], functions_only: bool = False,
                     transitive: bool = False) -> frozenset[str]:
        """Read from the text alone (no parse), once per process; docstrings and comments
        do not count (keras' `Layer` docstring naming BatchNorm is no use of it).
        `transitive`: a definition that names one of the names found counts too."""
        key = (path, pattern, functions_only)
        if key in self._names:
            return self._names[key]
        self._names[key] = frozenset()  # an import cycle sees nothing more
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return frozenset()
        names: set[str] = set()
        module_name, is_package = module_name_for(path)
        for module, imported in imports_in_text(text, module_name, is_package):
            source = self.module_path(module)
            if source is not None and imported is not None:
                exported = self._names_using(source, pattern, functions_only, transitive)
                names.update(alias for name, alias in imported if name in exported)
        if pattern.search(text) or (transitive and names):
            code = _DOCS_AND_COMMENTS.sub("", text)
            definitions = _definitions(code, functions_only)
            names.update(name for name, start, end in definitions if pattern.search(code, start, end))
            while transitive and names:
                mentioned = re.compile(rf"\b(?:{'|'.join(map(re.escape, names))})\b")
                found = {name for name, start, end in definitions
                         if name not in names and mentioned.search(code, start, end)}
                if not found:
                    break
                names |= found
        self._names[key] = frozenset(names)
        return self._names[key]

    def imports_batch_norm(self, text: str, path: Path | None) -> bool:
        """Whether a text imports a project name (or module) that involves batch norm."""
        module_name, is_package = module_name_for(path) if path is not None else ("", False)
        for module, imported in imports_in_text(text, module_name, is_package):
            source = self.module_path(module)
            if imported is None:
                if source is not None and self.bn_names(source):
                    return True
                continue
            for name, _ in imported:
                if source is not None and name in self.bn_names(source):
                    return True
                submodule = self.module_path(f"{module}.{name}")
                if submodule is not None and self.bn_names(submodule):
                    return True
        return False

    def module_path(self, module: str) -> Path | None:
        if module in self.by_module:
            return self.by_module[module]
        if module.split(".")[0] in _EXTERNAL_ROOTS:
            return None
        candidates = self.by_suffix.get(module, [])
        return self.by_module[candidates[0]] if len(candidates) == 1 else None

    def class_names(self, path: Path) -> frozenset[str]:
        """The classes a module defines at its top level or re-exports, read from its text."""
        if path in self._classes:
            return self._classes[path]
        self._classes[path] = frozenset()  # an import cycle sees nothing more
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return frozenset()
        names = set(_TOP_LEVEL_CLASS.findall(text))
        module_name, is_package = module_name_for(path)
        for module, imported in imports_in_text(text, module_name, is_package):
            source = self.module_path(module)
            if source is not None and imported is not None:
                exported = self.class_names(source)
                names.update(alias for name, alias in imported if name in exported)
        self._classes[path] = frozenset(names)
        return self._classes[path]

    def resolve(self, qualname: str, *, constant: bool = False, functions_only: bool = False,
                classes_only: bool = False) -> Value | None:
        """The value a qualified name has in a project file: a function (or class) whose
        definition builds a layer or uses a model the rules look at, or (`constant`) any
        binding of the module (`from .config import BN_MOMENTUM`). `classes_only`: a class
        (followed, or reaching batch norm through other names)."""
        parts = qualname.split(".")
        for split in range(len(parts) - 1, 0, -1):
            module = ".".join(parts[:split])
            path = self.module_path(module)
            if path is None:
                continue
            name = parts[split]
            followed = name in self.followed_names(path, functions_only)
            if classes_only:
                followed = name in self.class_names(path) and (followed or name in self.bn_names(path))
            if not constant and not followed:
                return None  # a definition that builds no relevant layer cannot contribute BN facts
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


def _definitions(code: str, functions_only: bool) -> list[tuple[str, int, int]]:
    """Each top-level definition of a module's code (docstrings and comments removed):
    its name and the span of its text."""
    starts = list(_TOP_LEVEL.finditer(code))
    found = []
    for index, match in enumerate(starts):
        if functions_only and not match.group(0).startswith(("def", "async")):
            continue
        end = starts[index + 1].start() if index + 1 < len(starts) else len(code)
        found.append((match.group(1) or match.group(2), match.start(), end))
    return found


_MAX_PARSED = 128
_PARSED: OrderedDict[tuple[str, int], cst.Module | None] = OrderedDict()
_BINDINGS: dict[tuple[str, int], dict[str, Value]] = {}
_LOADED: dict[str, cst.Module] = {}  # the module each loaded file's bindings refer into


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


def _load_bindings(path: Path, project: ProjectIndex) -> dict[str, Value] | None:
    """Interpret a module's top level once per process and keep what it binds."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    key = (str(path), hash(text))
    if key in _BINDINGS:
        return _BINDINGS[key]
    try:
        module = parse(path, text)
    except RecursionError:
        module = None
    if module is None:
        return None
    name, is_package = module_name_for(path)
    interpreter = Interpreter(FileModel(str(path), module), name, is_package, project)
    try:
        bindings = interpreter.load_module()
    except RecursionError:
        bindings = {}
    _BINDINGS[key] = bindings
    _LOADED[str(path)] = module
    return bindings


def loaded_module(path: str) -> cst.Module | None:
    """The syntax tree whose nodes a loaded file's functions and classes are made of."""
    return _LOADED.get(path)
