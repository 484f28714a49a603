"""The project a run belongs to: its root, its files, and who imports whom.

Findings are reported for the files asked for but computed from the whole project, so that
a file's answer never depends on which other files happen to be in the run. A cheap import
scan (text only, no parse) gives the import graph; a file's result depends on the files it
imports (transitively, loaded on demand while it is analysed) and may be completed by the
files that import it (their calls into its helpers, bnlint.crossfile).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bnlint.errors import SourceError
from bnlint.files import SKIPPED_DIRECTORIES, VIRTUALENV_MARKER, read_bytes
from bnlint.semantics.names import imports_in_text, module_name_for
from bnlint.semantics.project.index import ProjectIndex

ROOT_MARKERS = ("pyproject.toml", "setup.cfg", "setup.py", ".git")


def project_root(path: Path) -> Path:
    """The nearest directory at or above `path` holding a pyproject.toml, setup.cfg,
    setup.py or .git; without one, the folder above the outermost package holding `path`
    (where `import pkg` would find it)."""
    start = path.absolute()
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    while (directory / "__init__.py").exists() and directory.parent != directory:
        directory = directory.parent
    return directory


def project_files(source_roots: Sequence[Path]) -> list[Path]:
    """Every .py file under the source roots, skipping only what is never project code
    (virtual environments, VCS and build folders): exclusions decide what is reported, not
    what may be read."""
    found: set[str] = set()
    for root in source_roots:
        for directory, subdirectories, names in os.walk(root):
            if directory != str(root) and VIRTUALENV_MARKER in names:
                subdirectories[:] = []
                continue
            subdirectories[:] = [name for name in subdirectories
                                 if name not in SKIPPED_DIRECTORIES and not name.endswith(".egg-info")]
            found.update(os.path.join(directory, name) for name in names if name.endswith(".py"))
    return [Path(path) for path in sorted(found)]


@dataclass
class ProjectFile:
    path: Path
    data: bytes
    digest: str


@dataclass
class Project:
    """The files of one project, their digests, and the import graph between them."""

    root: Path
    files: dict[Path, ProjectFile]
    index: ProjectIndex
    imports: dict[Path, frozenset[Path]] = field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path, source_roots: Sequence[Path], read: Mapping[Path, bytes],
             buffer: Path | None = None) -> Project:
        """Every project file, with `read` (the files asked for, already read) standing for
        what is on disk; `buffer`: the one of them that is an editor's or stdin's text, not
        the file's. A project file that cannot be read is left out (it is not reported)."""
        files: dict[Path, ProjectFile] = {}
        for path in sorted({*project_files(source_roots), *read}):
            data = read.get(path)
            if data is None:
                try:
                    data = read_bytes(path)
                except SourceError:
                    continue
            files[path] = ProjectFile(path, data, hashlib.sha256(data).hexdigest())
        texts = {path: file.data.decode("utf-8", "replace") for path, file in files.items() if path.suffix == ".py"}
        overrides = {buffer: texts[buffer]} if buffer in texts else {}
        project = cls(root, files, ProjectIndex(texts, overrides))
        project.imports = {path: frozenset(project._imported(path, text)) for path, text in texts.items()}
        return project

    @property
    def fingerprint(self) -> str:
        """Which files the project has: a file added or removed may change how imports resolve."""
        return hashlib.sha256("\0".join(map(str, self.files)).encode()).hexdigest()

    def replace(self, path: Path, file: ProjectFile) -> None:
        """An editor's buffer stands for a project file from now on."""
        text = file.data.decode("utf-8", "replace")
        self.files[path] = file
        self.index.set_text(path, text)
        self.imports[path] = frozenset(self._imported(path, text))

    def forget_buffer(self, path: Path) -> None:
        """The file on disk stands for itself again (its buffer was closed)."""
        self.index.set_text(path, None)
        try:
            data = read_bytes(path)
        except SourceError:
            self.files.pop(path, None)
            self.imports.pop(path, None)
            return
        self.files[path] = ProjectFile(path, data, hashlib.sha256(data).hexdigest())
        self.imports[path] = frozenset(self._imported(path, data.decode("utf-8", "replace")))

    def _imported(self, path: Path, text: str) -> Iterable[Path]:
        """The project files a text imports (a module, or a submodule named in `from M import name`)."""
        for module, names in imports_in_text(text, *module_name_for(path)):
            target = self.index.module_path(module)
            if target is not None:
                yield target
            for name, _ in names or ():
                submodule = self.index.module_path(f"{module}.{name}")
                if submodule is not None:
                    yield submodule

    def dependencies(self, path: Path) -> dict[str, str]:
        """The digests of every project file `path` imports, directly or not: what its own
        analysis may read."""
        seen = _closure([path], self.imports)
        seen.discard(path)
        return {str(other): self.files[other].digest for other in sorted(seen) if other in self.files}

    def analysed_with(self, requested: Iterable[Path]) -> list[Path]:
        """The requested files and every project file importing one of them, directly or
        not: a finding at a helper may be established by a caller in another file."""
        importers: dict[Path, set[Path]] = {}
        for importer, imported in self.imports.items():
            for target in imported:
                importers.setdefault(target, set()).add(importer)
        return sorted(_closure(requested, importers))


def _closure(start: Iterable[Path], edges: Mapping[Path, Iterable[Path]]) -> set[Path]:
    seen = set(start)
    stack = list(seen)
    while stack:
        for following in edges.get(stack.pop(), ()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen
