"""The project-wide index: which module lives in which file, and which names a module
defines or re-exports, read from its text alone.

Built once per run from the discovered paths (no parsing). Parsing and interpreting another
file is bnlint.semantics.project.loading's work.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from bnlint.semantics.catalogue.layers import FRAMEWORK_ROOTS
from bnlint.semantics.names import imports_in_text, module_name_for


_MAX_TEXTS = 256
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
_EXTERNAL_ROOTS = frozenset({*FRAMEWORK_ROOTS, "jax", "flax", "numpy"})
# A top-level definition: what a module exports, and where its source text starts.
_TOP_LEVEL_CLASS = re.compile(r"^class[ \t]+(\w+)", re.M)
_TOP_LEVEL = re.compile(r"^(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)|^(\w+)[ \t]*(?::[^=\n]*)?=(?!=)", re.M)


class ProjectIndex:
    def __init__(self, paths: Iterable[Path], overrides: Mapping[Path, str] | None = None) -> None:
        self.overrides = dict(overrides or {})  # texts standing for files (an editor's buffer, stdin)
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
        self._names: dict[tuple[Path, tuple[object, ...]], frozenset[str]] = {}
        self._texts: OrderedDict[Path, tuple[tuple[int, int], str]] = OrderedDict()
        self.loaded_files: set[Path] = set()  # what the current file's analysis depended on

    def text(self, path: Path) -> str | None:
        """A project file's text, read once while the file is unchanged; None when it
        cannot be read as UTF-8."""
        if path in self.overrides:
            return self.overrides[path]
        try:
            stat = path.stat()
        except OSError:
            return None
        signature = (stat.st_mtime_ns, stat.st_size)
        cached = self._texts.get(path)
        if cached is not None and cached[0] == signature:
            self._texts.move_to_end(path)
            return cached[1]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        self._texts[path] = (signature, text)
        if len(self._texts) > _MAX_TEXTS:
            self._texts.popitem(last=False)
        return text

    def set_text(self, path: Path, text: str | None) -> None:
        """A buffer's text stands for the file (None: the file's own again); what was read
        from the texts is read again."""
        if text is None:
            self.overrides.pop(path, None)
        else:
            self.overrides[path] = text
        self._names.clear()

    def bn_names(self, path: Path) -> frozenset[str]:
        """The top-level names of a module whose definition uses batch norm, directly or
        through another such name (`class Net` whose backbone is a BN `ResNet`), or that it
        re-exports from such a module: importing one makes a file worth analysing."""
        return self._exported(path, ("bn",), lambda text, names: _names_using(text, BN_TEXT, names, transitive=True))

    def followed_names(self, path: Path, functions_only: bool = False) -> frozenset[str]:
        """The top-level names whose definition builds a layer the rules look at (batch
        norm, or what feeds one) or uses a model (`evaluate(model, loader)`): those worth
        following into another file."""
        return self._exported(path, ("followed", functions_only),
                              lambda text, names: _names_using(text, _FOLLOWED_TEXT, names, functions_only))

    def class_names(self, path: Path) -> frozenset[str]:
        """The classes a module defines at its top level or re-exports, read from its text."""
        return self._exported(path, ("classes",), lambda text, names: set(_TOP_LEVEL_CLASS.findall(text)))

    def _exported(self, path: Path, kind: tuple[object, ...],
                  defined: Callable[[str, set[str]], Iterable[str]]) -> frozenset[str]:
        """The names of one kind a module defines (`defined(text, re-exported names)`) or
        re-exports from the project modules defining them: read from the text alone (no
        parse), once per process. The modules it re-exports from, directly or not, are
        solved together (a least fixed point), so that an import cycle gives the same answer
        whichever of its modules is asked first."""
        known = self._names.get((path, kind))
        if known is not None:
            return known
        sources = self._reexport_sources(path, kind)
        names: dict[Path, frozenset[str]] = {module: frozenset() for module in sources}
        changed = True
        while changed:
            changed = False
            for module, (text, imported) in sources.items():
                found: set[str] = set()
                for source, pairs in imported:
                    exported = names[source] if source in names else self._names[(source, kind)]
                    found.update(alias for name, alias in pairs if name in exported)
                found.update(defined(text, found))
                if found != names[module]:
                    names[module], changed = frozenset(found), True
        for module, exported in names.items():
            self._names[(module, kind)] = exported
        return names[path]

    def _reexport_sources(self, path: Path, kind: tuple[object, ...]
                          ) -> dict[Path, tuple[str, list[tuple[Path, list[tuple[str, str]]]]]]:
        """The modules whose exports of `kind` are not known yet that `path`'s depend on, with
        their text and what each imports from which project module."""
        found: dict[Path, tuple[str, list[tuple[Path, list[tuple[str, str]]]]]] = {}
        stack = [path]
        while stack:
            module = stack.pop()
            if module in found:
                continue
            text = self.text(module) or ""
            imported = []
            for name, pairs in imports_in_text(text, *module_name_for(module)):
                source = self.module_path(name)
                if source is not None and pairs is not None:
                    imported.append((source, pairs))
                    if source not in found and (source, kind) not in self._names:
                        stack.append(source)
            found[module] = (text, imported)
        return found

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


def _names_using(text: str, pattern: re.Pattern[str], names: set[str], functions_only: bool = False,
                 transitive: bool = False) -> set[str]:
    """The top-level definitions whose code matches `pattern`; docstrings and comments do
    not count (keras' `Layer` docstring naming BatchNorm is no use of it). `transitive`: a
    definition that names one of `names` (or of those found) counts too."""
    if not (pattern.search(text) or (transitive and names)):
        return set()
    found = set(names)
    code = _DOCS_AND_COMMENTS.sub("", text)
    definitions = _definitions(code, functions_only)
    found.update(name for name, start, end in definitions if pattern.search(code, start, end))
    while transitive and found:
        mentioned = re.compile(rf"\b(?:{'|'.join(map(re.escape, found))})\b")
        more = {name for name, start, end in definitions if name not in found and mentioned.search(code, start, end)}
        if not more:
            break
        found |= more
    return found
